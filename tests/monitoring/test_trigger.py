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


# ------------------------------------------------ every part of the rule, one at a time (issue 14)

from churn.monitoring.trigger import IMPOSSIBLE, impossible  # noqa: E402


def test_a_firing_verdict_says_which_metric_how_often_and_the_latest_value():
    verdict = check(*frames([0, 0, 2, 0, 3]))
    assert verdict.model_version == "1"
    assert verdict.windows == [f"2026-11-0{day}T00:00:00+00:00" for day in (3, 4, 5, 6)]
    assert verdict.reasons == [
        "drifted_share above 0.3 in 2 of the last 4 '1 day' windows, the latest (2026-11-06T00:00:00+00:00) "
        "included: 0.7500"
    ]
    assert verdict.metrics["drifted_share"] == {"threshold": 0.3, "values": [0.0, 0.5, 0.0, 0.75], "violations": 2,
                                                "fired": True}
    assert verdict.metrics["estimated_roc_auc_drop"] == {"threshold": 0.05, "values": [0.0] * 4, "violations": 0,
                                                         "fired": False}
    assert verdict.metrics["positive_rate_shift"]["values"] == [0.0] * 4
    assert verdict.metrics["rule"] == {"settings": RULE.model_dump(), "baseline_roc_auc": 0.84,
                                       "baseline_positive_rate": 0.3}
    assert verdict.to_json()["status"] == FIRED and verdict.to_json()["reasons"] == verdict.reasons


def test_a_quiet_verdict_says_what_was_checked():
    verdict = check(*frames([0, 0, 0, 0, 0]))
    assert verdict.status == QUIET
    assert verdict.reasons == [
        "no metric exceeded its threshold in at least 2 of the last 4 '1 day' windows and in the latest "
        "(2026-11-06T00:00:00+00:00)"
    ]
    assert not any(m.get("fired") for m in verdict.metrics.values())


def test_a_value_at_the_threshold_is_no_violation():
    # 1 of 4 features drifted is a share of 0.25; a threshold of exactly 0.25 is not exceeded.
    rule = RULE.model_copy(update={"max_drifted_share": 0.25})
    profile, drift = frames([1, 1, 1, 1])
    verdict = evaluate(profile, drift, rule, min_rows=100, feature_columns=FEATURES, baseline_roc_auc=0.84,
                       baseline_positive_rate=0.3, baseline_problem=None)
    assert verdict.metrics["drifted_share"]["violations"] == 0 and verdict.status == QUIET


def test_min_violations_is_inclusive():
    assert check(*frames([0, 0, 0, 2, 2])).status == FIRED  # exactly 2 of 4
    rule = RULE.model_copy(update={"min_violations": 3})
    verdict = evaluate(*frames([0, 0, 0, 2, 2]), rule, min_rows=100, feature_columns=FEATURES, baseline_roc_auc=0.84,
                       baseline_positive_rate=0.3, baseline_problem=None)
    assert verdict.status == QUIET and verdict.metrics["drifted_share"]["violations"] == 2


def test_a_metric_without_a_threshold_never_fires():
    rule = RULE.model_copy(update={"max_drifted_share": None})
    verdict = evaluate(*frames([4, 4, 4, 4]), rule, min_rows=100, feature_columns=FEATURES, baseline_roc_auc=0.84,
                       baseline_positive_rate=0.3, baseline_problem=None)
    assert verdict.status == QUIET
    assert verdict.metrics["drifted_share"] == {"threshold": None, "values": [1.0] * 4, "violations": 0, "fired": False}


def test_other_rows_of_the_tables_do_not_count():
    profile, drift = frames([0, 0, 0, 0, 0])
    latest = profile["window_start"].max() + pd.Timedelta(days=1)
    noise = [
        {"granularity": "1 week"},                      # another granularity
        {"slice_key": "Contract"},                      # a slice, not the whole table
        {"column_name": "tenure"},                      # a column's row, not the table's
        {"model_version": None},                        # rows no model version served
    ]
    extra = pd.DataFrame([{**profile.iloc[-1].to_dict(), "window_start": latest, "estimated_roc_auc": 0.5,
                           "predicted_positive_rate": 0.9, **change} for change in noise])
    loud_drift = pd.concat([drift.assign(**change) for change in (
        {"drift_type": "PREVIOUS"}, {"granularity": "1 week"}, {"slice_key": "Contract"}, {"model_version": "2"},
        {"column_name": "customerID"}, {"status": "insufficient data"},
    )]).assign(drifted=True)
    verdict = check(pd.concat([profile, extra], ignore_index=True), pd.concat([drift, loud_drift], ignore_index=True))
    assert verdict.status == QUIET
    assert verdict.windows[-1] == "2026-11-06T00:00:00+00:00"
    assert verdict.metrics["drifted_share"]["values"] == [0.0] * 4
    assert verdict.metrics["estimated_roc_auc_drop"]["values"] == [0.0] * 4


def test_the_rule_follows_the_version_that_served_most_of_the_latest_window():
    profile, drift = frames([3, 3, 3, 3])
    # Version 2 took over on the last day and served most of it: its one window is all there is.
    last = profile.iloc[-1].to_dict()
    profile = pd.concat([profile, pd.DataFrame([{**last, "model_version": "2", "count": 900}])], ignore_index=True)
    quiet_drift = drift[drift["window_start"] == last["window_start"]].assign(model_version="2", drifted=False,
                                                                                status="no drift")
    verdict = check(profile, pd.concat([drift, quiet_drift], ignore_index=True))
    assert verdict.model_version == "2"
    assert verdict.windows == ["2026-11-05T00:00:00+00:00"]
    assert verdict.metrics["drifted_share"]["values"] == [0.0]
    # The same window with version 2 serving fewer rows than version 1: version 1's windows count.
    profile.loc[profile.index[-1], "count"] = 100
    assert check(profile, pd.concat([drift, quiet_drift], ignore_index=True)).model_version == "1"


def test_realised_auc_counts_only_windows_with_enough_labels_and_the_rate_shift_is_absolute():
    profile, drift = frames([0, 0, 0, 0])
    profile["roc_auc"] = [0.70, 0.70, 0.70, 0.70]
    profile["label_count"] = [100, None, 99, 150]
    profile["predicted_positive_rate"] = [0.15, 0.3, 0.15, 0.1]  # below the baseline's 0.3
    verdict = check(profile, drift)
    assert verdict.metrics["roc_auc_drop"]["values"] == [0.14, None, None, 0.14]
    assert verdict.metrics["positive_rate_shift"]["values"] == [0.15, 0.0, 0.15, 0.2]
    assert verdict.metrics["roc_auc_drop"]["fired"] and verdict.metrics["positive_rate_shift"]["fired"]
    assert [reason.split(" above ")[0] for reason in verdict.reasons] == ["roc_auc_drop", "positive_rate_shift"]


def test_without_baseline_figures_the_drops_and_shift_are_null_not_violations():
    profile, drift = frames([0, 0, 0, 0], estimated=[0.5] * 4)
    profile["roc_auc"], profile["label_count"], profile["predicted_positive_rate"] = 0.5, 500, 0.9
    verdict = evaluate(profile, drift, RULE, min_rows=100, feature_columns=FEATURES, baseline_roc_auc=None,
                       baseline_positive_rate=None, baseline_problem=None)
    assert verdict.status == QUIET
    for name in ("estimated_roc_auc_drop", "roc_auc_drop", "positive_rate_shift"):
        assert verdict.metrics[name]["values"] == [None] * 4


def test_a_verdict_that_could_not_be_made_says_why():
    verdict = impossible("no baseline", RULE)
    assert verdict.to_json() == {"status": IMPOSSIBLE, "reasons": ["no baseline"], "model_version": None,
                                 "windows": [], "metrics": {"rule": {"settings": RULE.model_dump()}}}
    assert not verdict.fired


def test_a_baseline_auc_that_is_nan_gives_null_drops_and_values_are_rounded_to_six_places():
    profile, drift = frames([0, 0, 0, 0])
    profile["roc_auc"], profile["label_count"] = 0.5, 500
    profile["predicted_positive_rate"] = 0.31234567
    verdict = evaluate(profile, drift, RULE, min_rows=100, feature_columns=FEATURES, baseline_roc_auc=float("nan"),
                       baseline_positive_rate=0.3, baseline_problem=None)
    assert verdict.metrics["estimated_roc_auc_drop"]["values"] == [None] * 4
    assert verdict.metrics["roc_auc_drop"]["values"] == [None] * 4
    assert verdict.metrics["positive_rate_shift"]["values"] == [0.012346] * 4


def test_a_window_with_an_unknown_label_count_has_no_realised_auc():
    profile, drift = frames([0, 0, 0, 0])
    profile["roc_auc"], profile["label_count"] = 0.5, None
    verdict = evaluate(profile, drift, RULE, min_rows=1, feature_columns=FEATURES, baseline_roc_auc=0.84,
                       baseline_positive_rate=0.3, baseline_problem=None)
    assert verdict.metrics["roc_auc_drop"]["values"] == [None] * 4
