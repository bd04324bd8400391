"""Another binary churn table, with different columns, works by configuration alone.

A synthetic bank-churn table (no Telco column anywhere) is described in the `dataset:`
section of a params.yaml written to a temporary directory; prep -> train -> validate ->
evaluate then run through the stage functions, logging to a temporary SQLite MLflow store.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from churn.config import load_params
from churn.core import tracking
from churn.core.verdict import read_verdict
from churn.evaluation import stage as evaluate_stage
from churn.io import md5_file
from churn.prep import stage as prep_stage
from churn.training import stage as train_stage
from churn.validation import stage as validate_stage
from tests.conftest import PARAMS_FILE

pytestmark = pytest.mark.e2e

ROWS = 3000
REGIONS = ["North", "South", "East", "West"]
PLANS = ["basic", "plus", "premium"]
FEATURES = ["age", "balance", "products", "region", "plan", "active_member"]
METRIC_NAMES = {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier"}


def bank_table(rows: int, seed: int, positive: str, negative: str) -> tuple[pd.DataFrame, float]:
    """Accounts whose churn depends on age, activity, products, plan and region."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, rows)
    balance = np.round(rng.gamma(2.0, 20000.0, rows), 2)
    products = rng.integers(1, 5, rows)
    region = rng.choice(REGIONS, rows)
    plan = rng.choice(PLANS, rows, p=[0.5, 0.3, 0.2])
    active = rng.random(rows) < 0.55
    logit = (
        -1.6
        + 0.05 * (age - 45)
        + 1.4 * ~active
        + 0.9 * (products >= 3)
        - 0.8 * (plan == "premium")
        + 0.6 * (region == "West")
    )
    exited = rng.random(rows) < 1 / (1 + np.exp(-logit))
    balance_text = np.array([f"{b:.2f}" for b in balance], dtype=object)
    balance_text[rng.random(rows) < 0.02] = " "  # unknown balances, blank like Telco's TotalCharges
    frame = pd.DataFrame(
        {
            "account_id": [f"AC-{i:06d}" for i in rng.permutation(rows)],
            "region": region,
            "plan": plan,
            "age": age,
            "balance": balance_text,
            "products": products,
            "active_member": np.where(active, "yes", "no"),
            "exited": np.where(exited, positive, negative),
            # Not in the configuration: the contract and the model must ignore it.
            "surname": rng.choice(["Smith", "Okafor", "Nguyen", "Garcia"], rows),
        }
    )
    return frame, float(exited.mean())


def bank_params(root, positive, negative) -> dict:
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["paths"] = {name: str(root / path.replace("telco_churn", "bank_churn")) for name, path in raw["paths"].items()}
    raw["dataset"] = {
        "name": "bank_churn",
        "description": "Bank accounts, one row per account, churned or stayed.",
        "id_column": "account_id",
        "label_column": "exited",
        "positive_label": positive,
        "negative_label": negative,
        "timestamp_column": None,
        "numeric": {
            "age": {"min": 18, "max": 120, "integer": True},
            "balance": {"min": 0, "blank_as_missing": True},
            "products": {"min": 1, "max": 4, "integer": True},
        },
        "categorical": {
            "region": REGIONS,
            "plan": PLANS,
            "active_member": ["yes", "no"],
        },
        "structural_levels": {},
    }
    # Slices and protected attributes name the dataset's own columns.
    raw["validate"]["slices"].update(columns=["region", "plan"], bins={"age": [30, 50, 70]})
    raw["validate"]["fairness"]["protected"] = ["region"]
    raw["prep"]["feature_table_name"] = "account_features"
    raw["tracking"]["experiment"] = "bank-churn"
    return raw


@pytest.mark.parametrize(
    "positive, negative",
    [("churned", "stayed"), (1, 0)],
    ids=["text-labels", "numeric-labels"],
)
def test_bank_churn_table_runs_end_to_end(tmp_path, monkeypatch, positive, negative):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(bank_params(tmp_path, positive, negative), sort_keys=False))
    params = load_params(params_file)
    assert params.dataset.feature_columns == FEATURES

    table, churn_rate = bank_table(ROWS, seed=3, positive=str(positive), negative=str(negative))
    params.paths.raw.parent.mkdir(parents=True)
    table.to_csv(params.paths.raw, index=False)

    report = prep_stage.run(params)
    assert report.raw_rows == report.training_rows == ROWS
    assert report.positive_rate == pytest.approx(churn_rate, abs=1e-6)
    assert sum(report.split_rows.values()) == ROWS
    train_set = pd.read_parquet(params.paths.train_set)
    assert set(train_set.columns) == {"account_id", "exited", *FEATURES}  # no "surname"
    assert set(train_set["exited"].unique()) == {0, 1}
    # Blank balances became missing values (imputed by the model), not zeros or failures.
    assert 0 < train_set["balance"].isna().mean() < 0.05

    trained = train_stage.run(params)
    assert params.paths.model.is_file()
    assert md5_file(params.paths.model) == trained.model_md5

    validated = validate_stage.run(params)
    verdict = json.loads(params.paths.verdict.read_text())
    assert verdict["verdict"] in {"passed", "rejected"}
    assert verdict["verdict"] == validated.verdict
    assert verdict["model_md5"] == trained.model_md5
    missing_checks = {c["name"] for c in verdict["checks"] if c["name"].startswith("missing_share.")}
    assert missing_checks == {f"missing_share.{column}" for column in FEATURES}
    passed, _reasons = read_verdict(params.paths.verdict, params.paths.model)
    assert passed == (verdict["verdict"] == "passed")

    evaluate_stage.run(params)
    metrics = json.loads(params.paths.test_metrics.read_text())
    assert set(metrics) == METRIC_NAMES
    assert metrics["roc_auc"] > 0.6, metrics
    assert 0 < metrics["log_loss"] < 0.69
    drift = json.loads(params.paths.drift_metrics.read_text())
    assert drift["columns_total"] == len(FEATURES)
    by_column = pd.read_csv(params.paths.plots_dir / "drift_by_column.csv")
    assert set(by_column["column"]) == set(FEATURES)
    importance = pd.read_csv(params.paths.plots_dir / "feature_importance.csv")
    assert sorted(importance["feature"]) == sorted(FEATURES)
    # The label really drives the model: the strongest driver beats the weakest.
    by_feature = importance.set_index("feature")["importance"]
    assert by_feature["active_member"] > by_feature["balance"]
    assert params.paths.drift_report_html.stat().st_size > 0

    run = tracking.find_run_for_model(params, trained.model_md5)
    assert run is not None and run.info.run_id == trained.run_id
    assert run.data.params["dataset"] == "bank_churn"
    assert run.data.params["n_features"] == str(len(FEATURES))
    assert run.data.tags["dvc.raw_md5"] == md5_file(params.paths.raw)
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"train", "validation"}
