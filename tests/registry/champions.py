"""Champions that misbehave in one way each, logged as MLflow pyfuncs for the registry tests.

`Champion` has the servable's interface (`score(records, source)` returning scored and
rejected rows, and a `threshold`); its honest probability is a fixed function of tenure.
`Foreign` is a pyfunc another project could have logged: it predicts, nothing more.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd


@dataclass
class Batch:
    scored: pd.DataFrame
    rejected: pd.DataFrame


class Champion(mlflow.pyfunc.PythonModel):
    threshold = 0.5  # not the candidate's (0.35): the comparison must use the champion's own

    def __init__(self, fault: str):
        self.fault = fault

    def predict(self, context, model_input, params=None):
        return self.score(model_input).scored

    @staticmethod
    def probability(records: pd.DataFrame) -> np.ndarray:
        return 1.0 / (1.0 + records["tenure"].astype(float).to_numpy() / 12.0)

    def score(self, records: pd.DataFrame, source: str = "input") -> Batch:
        ids = records["customerID"].to_numpy()
        proba = self.probability(records)
        scored = pd.DataFrame({"customerID": ids, "churn_probability": proba})
        rejected = pd.DataFrame({"customerID": [], "rejection_reasons": []})
        if self.fault == "nan":
            scored.loc[scored.index[::7], "churn_probability"] = np.nan
        elif self.fault == "too_few":
            scored = scored.iloc[:-3]
        elif self.fault == "duplicated":
            scored = pd.concat([scored.iloc[:-1], scored.iloc[:1]], ignore_index=True)
        elif self.fault == "reordered":
            scored = scored.iloc[::-1].reset_index(drop=True)
        elif self.fault == "refuses_rows":
            reasons = [f"tenure: below the minimum 0 (in {source})", "gender: unknown value 'X'"]
            rejected = pd.DataFrame({"customerID": ids[:2], "rejection_reasons": reasons})
            scored = scored.iloc[2:]
        elif self.fault == "raises":
            raise RuntimeError("scorer crashed")
        return Batch(scored, rejected)


class Foreign(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return np.zeros(len(model_input))


# honest: a working champion; deleted: its stored files are gone, so it cannot be loaded.
FAULTS = ("honest", "nan", "too_few", "duplicated", "reordered", "refuses_rows", "raises", "foreign", "deleted")


def log_champions(name: str) -> dict[str, str]:
    """Register one version of `name` per fault in the current store; fault -> version."""
    numbers = {}
    client = mlflow.MlflowClient()
    with mlflow.start_run(run_name="fake champions"):
        for fault in FAULTS:
            model = Foreign() if fault == "foreign" else Champion(fault)
            info = mlflow.pyfunc.log_model(name=fault, python_model=model, pip_requirements=[])
            number = str(mlflow.register_model(info.model_uri, name).version)
            if fault == "deleted":
                # These files belong to this store's own run: no other test reads them.
                where = client.get_model_version_download_uri(name, number)
                shutil.rmtree(Path(where.removeprefix("file://")))
            numbers[fault] = number
    return numbers
