"""churn.monitoring.trigger: k of the last n windows and the latest, or it could not be checked."""

from __future__ import annotations

import pandas as pd
import pytest

from churn.config import MonitorRetrain
from churn.monitoring.tables import TABLE
from churn.monitoring.trigger import FIRED, QUIET, CheckImpossible, evaluate

RULE = MonitorRetrain(last_n=4, min_violations=2, max_drifted_share=0.3, max_estimated_roc_auc_drop=0.05,
                      max_roc_auc_drop=0.05, max_positive_rate_shift=0.1)
FEATURES = ["a", "b", "c", "d"]


def frames(drifted_per_window: list[int], estimated=None, counts=None):
    starts = pd.date_range("2026-11-02", periods=len(drifted_per_window), freq="D", tz="UTC")
    estimated = estimated or [0.84] * len(starts)
    counts = counts or [500] * len(starts)
    profile = pd.DataFrame({
        "window_start": starts, "granularity": "1 day", "model_version": "1", "slice_key": None,
        "column_name": TABLE, "count": counts, "status": ["ok" if c >= 100 else "insufficient data" for c in counts],
        "estimated_roc_auc": estimated, "roc_auc": None, "label_count": 0, "predicted_positive_rate": 0.3,
    })
    drift = pd.DataFrame([
        {"window_start": s, "granularity": "1 day", "model_version": "1", "slice_key": None, "drift_type": "BASELINE",
         "column_name": column, "drifted": i < n, "status": "drift" if i < n else "no drift"}
        for s, n in zip(starts, drifted_per_window, strict=True) for i, column in enumerate(FEATURES)
    ])
    return profile, drift


def check(profile, drift, problem=None):
    return evaluate(profile, drift, RULE, min_rows=100, feature_columns=FEATURES, baseline_roc_auc=0.84,
                    baseline_positive_rate=0.3, baseline_problem=problem)


def test_fires_when_k_of_n_and_the_latest_violate():
    verdict = check(*frames([0, 0, 2, 0, 3]))
    assert verdict.status == FIRED and verdict.fired
    assert verdict.metrics["drifted_share"]["violations"] == 2
    assert "drifted_share above 0.3 in 2 of the last 4" in verdict.reasons[0]


def test_quiet_when_the_latest_window_is_fine():
    verdict = check(*frames([0, 3, 3, 3, 0]))
    assert verdict.status == QUIET and not verdict.fired


def test_quiet_when_only_the_latest_violates():
    assert check(*frames([0, 0, 0, 0, 4])).status == QUIET


def test_estimated_auc_drop_fires_without_labels():
    verdict = check(*frames([0] * 5, estimated=[0.84, 0.84, 0.84, 0.75, 0.74]))
    assert verdict.fired and verdict.metrics["estimated_roc_auc_drop"]["fired"]
    assert verdict.metrics["roc_auc_drop"]["values"] == [None] * 4  # no labels: no violation


def test_small_windows_are_skipped_not_counted():
    verdict = check(*frames([0, 3, 3, 0, 3], counts=[500, 500, 500, 500, 20]))
    assert verdict.status == QUIET  # the latest usable window (day 4) does not violate
    assert verdict.windows[-1].startswith("2026-11-05")


def test_no_baseline_cannot_be_checked():
    with pytest.raises(CheckImpossible, match="could not be made: no baseline"):
        check(*frames([4, 4, 4]), problem="baseline file x not found")


def test_no_window_with_enough_rows_cannot_be_checked():
    with pytest.raises(CheckImpossible, match="no '1 day' window has at least 100 rows"):
        check(*frames([4, 4], counts=[10, 20]))
