"""The validate stage: score the validation set, apply the gates, write the verdict.

A rejection is written as data and the stage succeeds, so evaluation and reporting still
run; `churn gate` turns the verdict into an exit code for CI.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from churn import progress
from churn.config import Params
from churn.core.metrics import classification_metrics
from churn.core.model_file import load_model
from churn.core.predict import positive_proba
from churn.core.side_process import SideJob
from churn.core.splits import read_split
from churn.core.verdict import verdict_params_md5
from churn.io import md5_file, write_json
from churn.validation import baseline, fairness, leakage, slices
from churn.validation.gates import data_checks, model_checks, verdict


@dataclass(frozen=True)
class ValidationResult:
    """The verdict record, written to paths.verdict; `core.verdict.read_verdict` reads it
    back (and fails closed on a stale or foreign one)."""

    verdict: str  # "passed" or "rejected"
    reasons: list[str]
    checks: list[dict[str, Any]]
    model_md5: str
    params_md5: str
    decision_threshold: float
    validation_metrics: dict[str, float]
    leakage: dict[str, Any]
    baseline: dict[str, Any]
    slices: list[dict[str, Any]]
    fairness: list[dict[str, Any]]

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def run(params: Params) -> ValidationResult:
    # The baseline models read their sample of the sets and fit in a process of their own,
    # beside the scoring and the other checks.
    with SideJob(baseline.fit_baselines_from_files, params, what="the baseline models") as fitting:
        return _validate(params, fitting)


def _validate(params: Params, fitting: SideJob[baseline.BaselineResult]) -> ValidationResult:
    paths, dataset, settings = params.paths, params.dataset, params.validation
    threshold, seed = params.train.decision_threshold, params.train.seed
    with progress.phase("reading the model, train and validation sets") as step:
        model = load_model(paths.model)
        train, validation = read_split(paths.train_set, dataset), read_split(paths.validation_set, dataset)
        step.done(f"{len(train):,} + {len(validation):,} rows")
    with progress.task("scoring validation", total=len(validation), unit="rows") as scoring:
        proba = positive_proba(model, validation[dataset.feature_columns])
        scoring.advance(len(validation))
    y = validation[dataset.label_column]
    metrics = classification_metrics(y, proba, threshold)
    checks = model_checks(metrics, settings.gates) + data_checks(train, validation, dataset, settings.data_checks)

    # The evidence a reviewer needs beside the gates: each family adds its own checks.
    with progress.phase("leakage, baseline, slice and fairness checks") as step:
        leak_checks, feature_aucs = leakage.leakage_checks(
            model, train, validation, dataset, settings.leakage, metrics["roc_auc"], seed
        )
        by_slice = slices.slice_metrics(validation, y, proba, threshold, settings.slices)
        fair = fairness.fairness_results(validation, y, proba, threshold, settings.fairness, settings.slices)
        baselines = fitting.result()
        evidence = (
            leak_checks
            + baseline.baseline_checks(metrics["roc_auc"], baselines, settings.baseline)
            + slices.slice_checks(by_slice, metrics["roc_auc"], settings.slices)
            + fairness.fairness_checks(fair, settings.fairness)
        )
        step.done(f"{len(evidence)} checks")
    checks += evidence
    decision = verdict(checks)
    result = ValidationResult(
        verdict=decision.verdict,
        reasons=decision.reasons,
        checks=decision.checks,
        model_md5=md5_file(paths.model),
        params_md5=verdict_params_md5(params),
        decision_threshold=threshold,
        validation_metrics=metrics,
        leakage={"single_feature_auc": feature_aucs},
        baseline={"candidate_roc_auc": metrics["roc_auc"], "roc_auc": baselines.roc_auc, "skipped": baselines.skipped},
        slices=[s.as_dict() for s in by_slice],
        fairness=[r.as_dict() for r in fair],
    )
    write_json(paths.verdict, result.as_dict())
    progress.did(f"gate {result.verdict} ({sum(c.passed for c in checks)} of {len(checks)} checks passed)")
    return result
