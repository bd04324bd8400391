"""The validate stage: score the validation set, apply the gates, write the verdict.

A rejection is written as data and the stage succeeds, so evaluation and reporting still
run; `churn gate` turns the verdict into an exit code for CI.
"""

from __future__ import annotations

from churn import progress
from churn.config import Params
from churn.core.metrics import classification_metrics
from churn.core.verdict import verdict_params_md5
from churn.io import md5_file, write_json
from churn.core.model_file import load_model
from churn.core.splits import read_split
from churn.validation.gates import data_checks, model_checks, verdict


def run(params: Params) -> dict:
    paths, dataset = params.paths, params.dataset
    with progress.phase("reading the model, train and validation sets") as step:
        model = load_model(paths.model)
        train, validation = read_split(paths.train_set, dataset), read_split(paths.validation_set, dataset)
        step.done(f"{len(train):,} + {len(validation):,} rows")
    with progress.task("scoring validation", total=len(validation), unit="rows") as scoring:
        proba = model.predict_proba(validation[dataset.feature_columns])[:, 1]
        scoring.advance(len(validation))
    metrics = classification_metrics(validation[dataset.label_column], proba, params.train.decision_threshold)
    checks = model_checks(metrics, params.validation.gates) + data_checks(
        train, validation, dataset, params.validation.data_checks
    )
    result = {
        **verdict(checks),
        "model_md5": md5_file(paths.model),
        "params_md5": verdict_params_md5(params),
        "decision_threshold": params.train.decision_threshold,
        "validation_metrics": metrics,
    }
    write_json(paths.verdict, result)
    progress.did(f"gate {result['verdict']} ({sum(c.passed for c in checks)} of {len(checks)} checks passed)")
    return result
