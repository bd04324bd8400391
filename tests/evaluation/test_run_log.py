"""churn.evaluation.run_log: test metrics onto the training run, never failing the stage."""

from __future__ import annotations

import logging

import mlflow

from churn.core import tracking
from churn.evaluation.run_log import log_test_metrics


def test_logs_to_the_run_of_the_model(tmp_path, monkeypatch, params):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    tracking.connect(params)
    with mlflow.start_run(tags={tracking.TAG_MODEL_MD5: "abc"}) as run:
        mlflow.log_metric("validation_roc_auc", 0.86)
    assert log_test_metrics(params, "abc", {"test_roc_auc": 0.85, "test_slice_min_roc_auc": None}) == run.info.run_id
    logged = mlflow.get_run(run.info.run_id).data.metrics
    assert logged == {"validation_roc_auc": 0.86, "test_roc_auc": 0.85}


def test_no_run_or_no_server_is_logged_not_raised(tmp_path, monkeypatch, params, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with caplog.at_level(logging.WARNING):
        assert log_test_metrics(params, "no-such-md5", {"test_roc_auc": 0.85}) is None
    assert "no MLflow run for model no-such-md5" in caplog.text
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on port 9
    with caplog.at_level(logging.WARNING):
        assert log_test_metrics(params, "abc", {"test_roc_auc": 0.85}) is None
    assert "unreachable" in caplog.text
