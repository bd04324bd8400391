"""The evaluate stage: test-set metrics, plot data and the train-vs-test drift summary."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from churn import progress
from churn.config import Params
from churn.core import tracking
from churn.core.metrics import classification_metrics
from churn.core.model_file import load_model
from churn.core.predict import positive_proba
from churn.core.side_process import SideJob
from churn.core.splits import read_split
from churn.evaluation import drift_report, plots
from churn.evaluation.run_log import log_test_metrics
from churn.io import md5_file, write_csv, write_json
from churn.validation import fairness, slices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    metrics: dict[str, float]  # test-set metrics (paths.test_metrics)
    slices: dict[str, Any]  # slice and fairness summary (paths.slice_metrics)
    drift: dict[str, Any]  # train-vs-test drift summary with per-column detail

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def run(params: Params) -> EvaluationResult:
    # evidently's drift summary reads the two sets itself, in a process of its own: slow to
    # import and to compute, on this process's core it held up the scoring.
    with SideJob(drift_report.summarise, params, what="the drift summary") as drifting:
        return _evaluate(params, drifting)


def _evaluate(params: Params, drifting: SideJob[dict[str, Any]]) -> EvaluationResult:
    paths, dataset, settings = params.paths, params.dataset, params.evaluate
    # MLflow for the run log, imported on a thread while this computes.
    tracking.preload(params)
    # The train set only enters the drift summary, which reads its own sample of it.
    with progress.phase("reading the model and the test set") as step:
        model = load_model(paths.model)
        test = read_split(paths.test_set, dataset)
        step.done(f"{len(test):,} rows")
    features, label = dataset.feature_columns, dataset.label_column
    y_true = test[label].to_numpy()
    with progress.task("scoring test", total=len(test), unit="rows") as scoring:
        proba = positive_proba(model, test[features])
        scoring.advance(len(test))
    threshold = params.train.decision_threshold

    metrics = classification_metrics(y_true, proba, threshold)
    tables = {
        "roc": plots.roc_table(y_true, proba),
        "precision_recall": plots.precision_recall_table(y_true, proba),
        "confusion": plots.confusion_table(y_true, proba, threshold),
        "calibration": plots.calibration_table(y_true, proba, settings.calibration_bins),
        "feature_importance": plots.importance_table(
            model,
            test[features],
            y_true,
            n_repeats=settings.importance.n_repeats,
            sample_size=settings.importance.sample_size,
            seed=params.train.seed,
        ),
    }
    # The same slices and protected attributes the verdict gates on validation, on test.
    slice_settings, fairness_settings = params.validation.slices, params.validation.fairness
    with progress.phase("slice and fairness metrics"):
        by_slice = slices.slice_metrics(test, y_true, proba, threshold, slice_settings)
        tables["slices"] = pd.DataFrame([s.as_dict() for s in by_slice], columns=SLICE_COLUMNS)
        fair = fairness.fairness_results(test, y_true, proba, threshold, fairness_settings, slice_settings)
        slice_summary = {**slices.summary(by_slice, metrics["roc_auc"]), **fairness.summary(fair)}
    with progress.phase("drift summary (evidently), and its HTML report"):
        drift = drifting.result()

    write_json(paths.test_metrics, metrics)
    write_json(paths.slice_metrics, slice_summary)
    for name, table in tables.items():
        write_csv(paths.plots_dir / plots.PLOT_FILES[name], table)
    # Metrics hold the few numbers people compare across experiments (`dvc exp show` stays
    # narrow); the per-column detail is a plot.
    write_json(paths.drift_metrics, {key: value for key, value in drift.items() if key != "columns"})
    write_csv(paths.plots_dir / plots.PLOT_FILES["drift_by_column"], plots.drift_table(drift["columns"]))
    # Outside the DVC outputs, after them: a failure here only reaches the stage log.
    log_test_metrics(
        params, md5_file(paths.model),
        {**{f"test_{k}": v for k, v in metrics.items()}, **{f"test_{k}": v for k, v in slice_summary.items()}},
    )
    drifted = f"; {drift['columns_drifted']} of {drift['columns_total']} columns drifted" if "columns_total" in drift else ""
    progress.did(f"test roc_auc {metrics['roc_auc']:.4f} on {len(test):,} rows{drifted}")
    return EvaluationResult(metrics, slice_summary, drift)


SLICE_COLUMNS = ["slice", "column", "value", "rows", "positives", "positive_rate", "predicted_positive_rate",
                 "roc_auc", "recall", "precision", "scored", "note"]
