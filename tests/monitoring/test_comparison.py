"""churn.monitoring.comparison: the baseline both monitor engines compare with, drift and warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.monitoring import comparison, tables
from churn.monitoring.aggregate import sketch
from churn.monitoring.slices import mask
from churn.servable.scoring import PREDICTION, PROBABILITY

from .conftest import world_params, write_baseline


def test_a_file_baseline_gives_bins_spreads_and_a_calibrated_summary(params, fitted, tmp_path):
    path = write_baseline(fitted[0], params, tmp_path / "baseline.parquet", rows=1500)
    params = world_params(params, tmp_path, path, slices=['Contract == "Month-to-month"'])
    against = comparison.load(params)
    frame = pd.read_parquet(path)
    assert against.baseline is not None and len(against.baseline.frame) == len(frame)
    summary = against.summary
    assert summary.problem is None and str(path) in summary.source
    assert summary.positive_rate == round(float(frame[PREDICTION].mean()), 6)
    assert 0.5 < summary.roc_auc <= 1 and summary.roc_auc == against.calibration.reference_roc_auc
    assert set(against.spec.edges) == {*params.dataset.numeric, PROBABILITY}
    assert len(against.spec.edges["MonthlyCharges"]) == params.monitor.drift.numeric_bins - 1
    assert against.spread["tenure"] == float(frame["tenure"].std())

    # Drift of a window that is the baseline itself: nothing drifts, per slice too.
    window = frame.assign(model_version="1", window_start=pd.Timestamp("2026-11-02", tz="UTC"),
                          window_end=pd.Timestamp("2026-11-03", tz="UTC"), granularity="1 day")
    parts = []
    for slice_key in [None, *params.monitor.slices]:
        rows = window if slice_key is None else window.loc[mask(window, slice_key)]
        part = sketch(rows, ["model_version", "window_start", "window_end", "granularity"], against.spec)
        parts.append(part.assign(slice_key=slice_key, slice_value=None if slice_key is None else "true"))
    drift = comparison.drift(params, against, tables.concat(parts))
    baseline_rows = drift[drift["drift_type"] == tables.BASELINE]
    assert set(baseline_rows["slice_key"].fillna("")) == {"", 'Contract == "Month-to-month"'}
    assert len(baseline_rows) and not baseline_rows["drifted"].astype(bool).any()
    assert np.allclose(baseline_rows["js_distance"].dropna(), 0, atol=1e-9)


def test_no_baseline_is_a_summary_with_the_reason_and_nothing_to_bin(params, tmp_path):
    params = world_params(params, tmp_path, tmp_path / "gone.parquet")
    against = comparison.load(params)
    assert against.baseline is None and against.spec.edges == {} and against.spread == {}
    assert "gone.parquet" in against.summary.problem and against.summary.roc_auc is None
    assert comparison.warnings(against.summary, future_rows=0, unknown_label_ids=0, duplicate_labels=0) == [
        f"no baseline, so no drift and no estimate: {against.summary.problem}"
    ]


def test_warnings_name_each_count():
    summary = comparison.BaselineSummary("file x", None, 0.8, 0.3, "too few labels")
    assert comparison.warnings(summary, future_rows=3, unknown_label_ids=2, duplicate_labels=1) == [
        "no label-free estimate: too few labels",
        "3 logged rows are stamped in the future and were left out: check the clock or --as-of",
        "2 attached labels match no logged prediction (unknown ids)",
        "1 labels were superseded by a later label for the same id (the latest wins)",
    ]
    quiet = comparison.BaselineSummary("file x", None, 0.8, 0.3, None)
    assert comparison.warnings(quiet, future_rows=0, unknown_label_ids=0, duplicate_labels=0) == []
