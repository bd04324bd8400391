"""The evaluate stage: test-set metrics, plot data and the train-vs-test drift summary."""

from __future__ import annotations

from churn.config import Params
from churn.evaluation import plots
from churn.evaluation.metrics import classification_metrics
from churn.io import write_csv, write_json
from churn.monitoring.drift import drift_summary, write_drift_html
from churn.training.model_io import load_model
from churn.training.stage import read_split


def run(params: Params) -> dict:
    paths, dataset, settings = params.paths, params.dataset, params.evaluate
    model = load_model(paths.model)
    train = read_split(paths.train_set, dataset)
    test = read_split(paths.test_set, dataset)
    features, label = dataset.feature_columns, dataset.label_column
    y_true = test[label].to_numpy()
    proba = model.predict_proba(test[features])[:, 1]
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
    drift = drift_summary(train, test, drift_share=settings.drift.drift_share, **_drift_args(params))

    write_json(paths.test_metrics, metrics)
    for name, table in tables.items():
        write_csv(paths.plots_dir / plots.PLOT_FILES[name], table)
    write_json(paths.drift_metrics, drift)
    write_drift_html(train, test, path=paths.drift_report_html, **_drift_args(params))
    return {"metrics": metrics, "drift": drift}


def _drift_args(params: Params) -> dict:
    return dict(
        numeric=list(params.dataset.numeric),
        categorical=list(params.dataset.categorical),
        sample_size=params.evaluate.drift.sample_size,
        seed=params.evaluate.drift.seed,
    )


def write_report(params: Params) -> None:
    """The HTML drift report alone. It is not byte-deterministic, so it is not a DVC output
    and a checkout whose evaluate stage was up to date has none until this writes it."""
    paths, dataset = params.paths, params.dataset
    train = read_split(paths.train_set, dataset)
    test = read_split(paths.test_set, dataset)
    write_drift_html(train, test, path=paths.drift_report_html, **_drift_args(params))
