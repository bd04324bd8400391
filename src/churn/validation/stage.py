"""The validate stage: score the validation set, apply the gates, write the verdict.

A rejection is written as data and the stage succeeds, so evaluation and reporting still
run; `churn gate` turns the verdict into an exit code for CI.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from churn import progress
from churn.config import Params
from churn.evaluation.metrics import classification_metrics
from churn.io import md5_file, write_json
from churn.training.model_io import load_model
from churn.training.stage import read_split
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


def verdict_params_md5(params: Params) -> str:
    """The params a verdict depends on (what dvc.yaml lists for validate)."""
    relevant = {
        "dataset": params.dataset.model_dump(mode="json"),
        "validate": params.validation.model_dump(mode="json"),
        "decision_threshold": params.train.decision_threshold,
    }
    return hashlib.md5(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def read_verdict(path: Path, model_path: Path, params: Params | None = None) -> tuple[bool, list[str]]:
    """(passed, reasons). Anything that prevents checking is a rejection: fail closed.

    With `params`, a verdict made under other gates, threshold or contract is stale too.
    """
    try:
        data = json.loads(Path(path).read_text())
        outcome, reasons = data["verdict"], list(data["reasons"])
    except FileNotFoundError:
        return False, [f"no verdict at {path}: run `dvc repro validate`"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, [f"verdict {path} is unreadable ({exc.__class__.__name__}): rerun `dvc repro validate`"]
    try:
        current_md5 = md5_file(model_path)
    except OSError:
        return False, [f"model {model_path} is missing, so the verdict cannot apply to it: run `dvc repro`"]
    if data.get("model_md5") != current_md5:
        return False, [f"verdict {path} was made for another model than {model_path}: rerun `dvc repro validate`"]
    if params is not None and data.get("params_md5") != verdict_params_md5(params):
        return False, [f"verdict {path} was made under other params (gates, threshold or dataset): rerun `dvc repro`"]
    if outcome == "passed" and not reasons:
        return True, []
    if outcome == "rejected":
        return False, reasons or ["rejected without a recorded reason"]
    return False, [f"verdict {path} says {outcome!r}, which is neither passed nor rejected"]
