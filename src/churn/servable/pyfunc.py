"""The servable model: an MLflow pyfunc that takes raw Telco-schema records.

It carries the skops pipeline, the dataset contract and the decision threshold, and
scores through `score_records`, so `mlflow models serve`, `churn predict` and training
all validate and clean a record the same way.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import pandas as pd
from mlflow.pyfunc.model import PythonModel

import churn
from churn.config import Dataset
from churn.servable.scoring import PREDICTION, PROBABILITY, RecordScorer, ScoredBatch, score_records

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

MODEL_ARTIFACT = "model"
SERVING_ARTIFACT = "serving_config"
# A load-time setting (MLflow's `model_config`, overridable by `pyfunc.load_model`):
# true leaves the pipeline in its archive, for worker processes to load (`scoring.fitted`).
# Serving and Spark load with the logged default, so a broken archive fails at start-up.
DEFER_PIPELINE = "defer_pipeline"


class ChurnModel(PythonModel):
    def load_context(self, context: Any) -> None:
        archive = context.artifacts[MODEL_ARTIFACT]
        if (context.model_config or {}).get(DEFER_PIPELINE):
            self.model: Any = archive
        else:
            from churn.core.model_file import load_model

            self.model = load_model(archive)
        config = json.loads(Path(context.artifacts[SERVING_ARTIFACT]).read_text())
        self.dataset = Dataset.model_validate(config["dataset"])
        self.threshold = float(config["decision_threshold"])

    def score(self, records: pd.DataFrame, source: str = "input") -> ScoredBatch:
        return score_records(self.model, self.dataset, self.threshold, records, source=source)

    def record_scorer(self) -> RecordScorer:
        """The same scoring as `score`, picklable without MLflow (for worker processes)."""
        return RecordScorer(self.model, self.dataset, self.threshold)

    # The pd.DataFrame hint tells MLflow to pass records through untouched: the data
    # contract, not MLflow's type inference, validates them.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from churn.errors import ChurnError

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        try:
            batch = self.score(frame, source="request")
        except ChurnError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        if len(batch.rejected):
            # Serving answers for every row or for none: a silently shorter answer would
            # misalign with the request.
            details = "; ".join(
                f"{row[self.dataset.id_column]}: {row['rejection_reasons']}"
                for _, row in batch.rejected.head(10).iterrows()
            )
            raise MlflowException(
                f"{len(batch.rejected)} of {len(frame)} records break the data contract: {details}",
                error_code=INVALID_PARAMETER_VALUE,
            )
        return batch.scored[[self.dataset.id_column, PROBABILITY, PREDICTION]].reset_index(drop=True)


def input_schema(dataset: Dataset, ColSpec: Any, AnyType: Any, Schema: Any) -> Any:
    """Named columns of any type: MLflow's own type check would refuse a blank-free batch
    (TotalCharges then reads as numbers) before the contract could answer row by row."""
    columns = [ColSpec(AnyType(), name) for name in [*dataset.key_columns, *dataset.feature_columns]]
    columns.append(ColSpec(AnyType(), dataset.label_column, required=False))
    return Schema(columns)


def log_churn_model(
    *,
    model_bytes: bytes,
    dataset: Dataset,
    threshold: float,
    input_example: pd.DataFrame,
    pip_requirements: list[str],
    name: str = "model",
) -> ModelInfo:
    """Log the servable model into the active run; returns MLflow's ModelInfo."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from churn.core.model_file import load_model

    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.skops"
        model_path.write_bytes(model_bytes)
        config_path = Path(tmp) / "serving_config.json"
        config_path.write_text(
            json.dumps({"dataset": dataset.model_dump(mode="json"), "decision_threshold": threshold}, indent=2)
        )
        wrapper = ChurnModel()
        wrapper.model, wrapper.dataset, wrapper.threshold = load_model(model_bytes), dataset, threshold
        output_example = wrapper.predict(None, input_example)
        info: ModelInfo = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(Path(__file__).with_name("model_code.py")),
            artifacts={MODEL_ARTIFACT: str(model_path), SERVING_ARTIFACT: str(config_path)},
            code_paths=[str(Path(churn.__file__).parent)],
            signature=ModelSignature(
                inputs=input_schema(dataset, ColSpec, AnyType, Schema),
                outputs=infer_signature(input_example, output_example).outputs,
            ),
            input_example=input_example,
            pip_requirements=pip_requirements,
            model_config={DEFER_PIPELINE: False},
        )
        return info
