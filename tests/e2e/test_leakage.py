"""A table with a planted leak, swapped in by configuration, ends with a rejected verdict
naming the leaking column; an identifier among the features is refused at prep."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from threadpoolctl import threadpool_limits

from churn.config import load_params
from churn.core.verdict import read_verdict
from churn.errors import ChurnError
from churn.prep import stage as prep_stage
from churn.training import stage as train_stage
from churn.validation import stage as validate_stage
from tests.e2e.test_other_dataset import bank_params, bank_table

pytestmark = pytest.mark.e2e

ROWS = 3000


@pytest.fixture(autouse=True)
def one_native_thread():
    # As `churn` runs stages (runtime.threads): OpenMP threads spin and collapse on a busy
    # 2-core machine, and this process loaded OpenMP before any variable could say so.
    with threadpool_limits(limits=1):
        yield


def _project(tmp_path, monkeypatch, extra_column: str, values, spec: dict):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    raw = bank_params(tmp_path, "churned", "stayed")
    raw["dataset"]["numeric"][extra_column] = spec
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params(params_file)
    table, _ = bank_table(ROWS, seed=5, positive="churned", negative="stayed")
    table[extra_column] = values(table)
    params.paths.raw.parent.mkdir(parents=True)
    table.to_csv(params.paths.raw, index=False)
    return params


def test_planted_leak_is_rejected_by_name(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)

    def exit_score(table):
        # Another model's score for the same outcome, as in the public bank-churn table.
        churned = (table["exited"] == "churned").to_numpy()
        return np.round(np.clip(np.where(churned, 0.85, 0.15) + rng.normal(0, 0.05, len(table)), 0, 1), 4)

    params = _project(tmp_path, monkeypatch, "exit_score", exit_score, {"min": 0, "max": 1})
    prep_stage.run(params)
    train_stage.run(params)
    result = validate_stage.run(params)

    verdict = json.loads(params.paths.verdict.read_text())
    assert verdict["verdict"] == result.verdict == "rejected"
    reasons = "\n".join(verdict["reasons"])
    assert "leakage check single_feature_auc.exit_score" in reasons
    assert "top permutation-importance feature: exit_score" in reasons
    # Only the planted column is flagged among the features.
    flagged = [c["name"] for c in verdict["checks"] if c["kind"] == "leakage" and not c["passed"]]
    assert set(flagged) == {"single_feature_auc.exit_score", "validation_roc_auc_ceiling"}
    assert verdict["leakage"]["single_feature_auc"]["exit_score"] > 0.99
    passed, gate_reasons = read_verdict(params.paths.verdict, params.paths.model, params)
    assert not passed and any("exit_score" in r for r in gate_reasons)


def test_identifier_among_the_features_is_refused_at_prep(tmp_path, monkeypatch):
    params = _project(
        tmp_path, monkeypatch, "account_number", lambda t: np.arange(len(t)) + 10_000_000, {"min": 0, "integer": True}
    )
    with pytest.raises(ChurnError, match=r"\['account_number'\] are identifier-like"):
        prep_stage.run(params)
    assert not params.paths.train_set.exists()  # nothing half-written
