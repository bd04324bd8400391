"""churn.monitoring.run: the tables, incremental runs, and bad input."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from churn.config import DriftScenario
from churn.errors import ChurnError
from churn.io import write_parquet
from churn.monitoring import run as run_module
from churn.monitoring.run import run
from churn.monitoring.tables import KEYS, TABLE

from .conftest import DAY0, NOW, world_params

PROFILE_KEY = [*KEYS, "column_name"]
DRIFT_KEY = [*KEYS, "column_name", "drift_type"]


def tables(world):
    paths = world.params.monitor.paths
    return pd.read_parquet(paths.profile), pd.read_parquet(paths.drift)


def whole(profile, granularity="1 day"):
    rows = profile[(profile.column_name == TABLE) & profile.slice_key.isna() & (profile.granularity == granularity)]
    return rows.sort_values("window_start").reset_index(drop=True)


def test_tables_have_one_row_per_key_and_the_documented_columns(world):
    world.params = world_params(world.params, world.root, world.params.monitor.baseline.file,
                                slices=['Contract == "Month-to-month"', "tenure < 6"])
    raws = [world.log_day(day, 400) for day in range(3)]
    world.label(raws[0])
    result = run(world.params, now=NOW)
    profile, drift = tables(world)
    assert not profile.duplicated(PROFILE_KEY).any() and not drift.duplicated(DRIFT_KEY).any()
    assert set(profile.granularity) == {"1 day", "1 week"}
    daily = whole(profile)
    assert daily["count"].tolist() == [400, 400, 400]
    assert daily["roc_auc"].notna().tolist() == [True, False, False]  # labels only for day 0
    assert daily["labelled_share"].tolist() == [1.0, 0.0, 0.0]
    assert daily["estimated_roc_auc"].notna().all() and daily["estimated_f1"].notna().all()
    columns = set(profile.column_name)
    assert {"tenure", "Contract", "churn_probability", "churn_prediction", TABLE} <= columns
    # A slice's rows are exactly the rows its expression selects.
    month = profile[(profile.slice_key == 'Contract == "Month-to-month"') & (profile.column_name == "Contract")
                    & (profile.granularity == "1 day")]
    assert (month.slice_value == "true").all()
    assert all(json_top.startswith('[["Month-to-month"') for json_top in month.top_values)
    assert set(drift.drift_type) == {"BASELINE", "CONSECUTIVE"}
    assert {"js_distance", "wasserstein_distance", "psi", "p_value", "method", "threshold", "drifted"} <= set(drift.columns)
    assert "churn_probability" in set(drift.column_name)
    # From the training distribution: hardly any column drifts.
    baseline = drift[(drift.drift_type == "BASELINE") & drift.slice_key.isna()]
    assert baseline.drifted.mean() < 0.1
    assert result.rows_read == 1200 and not result.up_to_date


def test_second_run_changes_nothing(world):
    for day in (0, 2):  # and a gap: its row is kept too
        world.log_day(day, 300)
    run(world.params, now=NOW)
    paths = world.params.monitor.paths
    before = {p: p.read_bytes() for p in (paths.profile, paths.drift, paths.state_dir / "state.json")}
    again = run(world.params, now=NOW)
    assert again.up_to_date and again.recomputed == 0
    assert {p: p.read_bytes() for p in before} == before
    pd.testing.assert_frame_equal(again.profile, pd.read_parquet(paths.profile))


def test_a_new_day_recomputes_only_its_windows_and_matches_a_full_run(world):
    for day in range(3):
        world.log_day(day, 300)
    run(world.params, now=NOW)
    world.log_day(3, 300)
    incremental = run(world.params, now=NOW)
    assert incremental.recomputed == 2  # the new day and its week
    profile, drift = tables(world)
    (world.params.monitor.paths.state_dir / "state.json").unlink()
    full = run(world.params, now=NOW)
    assert full.recomputed == 5
    profile_full, drift_full = tables(world)
    pd.testing.assert_frame_equal(profile, profile_full)
    pd.testing.assert_frame_equal(drift, drift_full)


def test_late_labels_recompute_the_windows_they_touch(world):
    raws = [world.log_day(day, 300) for day in range(3)]
    run(world.params, now=NOW)
    world.label(raws[1])
    result = run(world.params, now=NOW)
    assert result.recomputed == 2  # day 1 and its week
    daily = whole(tables(world)[0])
    assert daily["label_count"].tolist() == [0, 300, 0]
    assert daily.loc[1, "roc_auc"] > 0.6


def test_small_window_is_insufficient_data_never_drift(world):
    world.log_day(0, 300)
    world.log_day(1, 40, drift=DriftScenario(price_increase=0.5))
    run(world.params, now=NOW)
    profile, drift = tables(world)
    daily = whole(profile)
    assert daily["status"].tolist() == ["ok", "insufficient data"]
    small = drift[(drift.window_start == daily.loc[1, "window_start"]) & (drift.granularity == "1 day")]
    assert len(small) and (small.status == "insufficient data").all() and small.drifted.isna().all()


def test_missing_partition_is_a_window_without_rows(world):
    for day in (0, 1, 3):
        world.log_day(day, 200)
    run(world.params, now=NOW)
    daily = whole(tables(world)[0])
    assert daily["count"].tolist() == [200, 200, 0, 200]
    gap = daily.loc[2]
    assert gap["status"] == "insufficient data" and gap["model_version"] is None and "missing" in gap["note"]


def test_empty_log_is_a_short_error(world):
    with pytest.raises(ChurnError, match="holds no scored rows"):
        run(world.params, now=NOW)


def test_log_from_an_older_model_with_other_columns(world):
    world.log_day(0, 200)
    old = pd.read_parquet(next((world.root / "log").rglob("part-*.parquet"))).drop(columns=["tenure"])
    write_parquet(world.root / "log" / "date=2026-11-03" / "part-20261103T000000000000Z-old.parquet", old)
    with pytest.raises(ChurnError, match=r"date=2026-11-03 .*tenure.*another log root"):
        run(world.params, now=NOW)


def test_unknown_and_duplicate_labels_are_counted_and_the_latest_wins(world):
    raw = world.log_day(0, 300)
    ids = world.dataset.id_column
    label = world.dataset.label_column
    first = raw[[ids, label]].copy()
    first[label] = "No"
    world.label(first, at_day=20)
    world.label(raw, at_day=30)  # the true labels, later: they win
    unknown = pd.DataFrame({ids: ["nobody-1", "nobody-2"], label: ["Yes", "No"]})
    world.label(unknown, at_day=31)
    result = run(world.params, now=NOW)
    assert result.duplicate_labels == 300 and result.unknown_label_ids == 2
    assert any("2 attached labels match no logged prediction" in w for w in result.warnings)
    daily = whole(tables(world)[0])
    assert daily.loc[0, "label_rate"] == pytest.approx((raw[label] == "Yes").mean(), abs=1e-6)


def test_rows_stamped_in_the_future_are_left_out_and_counted(world):
    world.log_day(0, 200)
    world.log_day(1, 150)
    now = DAY0 + timedelta(days=1, hours=6)  # day 1's rows are stamped at noon
    result = run(world.params, now=now)
    assert result.future_rows == 150
    assert any("150 logged rows are stamped in the future" in w for w in result.warnings)
    assert whole(result.profile)["count"].tolist() == [200]
    # Once the time has come they count, and the run is not mistaken for up to date.
    later = run(world.params, now=NOW)
    assert not later.up_to_date and whole(later.profile)["count"].tolist() == [200, 150]


def test_without_a_baseline_there_is_no_drift_and_no_estimate_and_it_says_why(world, tmp_path):
    world.params = world_params(world.params, world.root, tmp_path / "nowhere.parquet")
    world.log_day(0, 200)
    result = run(world.params, now=NOW)
    assert result.baseline.problem and "nowhere.parquet not found" in result.baseline.problem
    assert len(result.drift) == 0
    assert any("no baseline" in w for w in result.warnings)
    daily = whole(result.profile)
    assert daily["estimated_roc_auc"].isna().all() and "not found" in daily.loc[0, "note"]


def test_drifted_period_is_drift(world):
    for day in range(2):
        world.log_day(day, 1500)
    for day in range(2, 4):
        world.log_day(day, 1500, drift=DriftScenario(price_increase=0.3, fiber_shift=0.3, month_to_month_shift=0.3))
    run(world.params, now=NOW)
    drift = tables(world)[1]
    daily = drift[(drift.granularity == "1 day") & (drift.drift_type == "BASELINE") & drift.slice_key.isna()]
    share = daily.groupby("window_start").drifted.mean().tolist()
    assert share[0] < 0.1 and share[1] < 0.1 and share[2] > 0.1 and share[3] > 0.1
    charges = daily[daily.column_name == "MonthlyCharges"].sort_values("window_start")
    assert charges.drifted.tolist() == [False, False, True, True]


def test_a_failed_write_leaves_the_state_and_the_next_run_recovers(world, monkeypatch):
    for day in range(2):
        world.log_day(day, 200)
    run(world.params, now=NOW)
    world.log_day(2, 200)
    real = run_module.write_parquet

    def fail_on_drift(path, frame):
        if path == world.params.monitor.paths.drift:
            raise OSError("disk full")
        real(path, frame)

    monkeypatch.setattr(run_module, "write_parquet", fail_on_drift)
    with pytest.raises(OSError):
        run(world.params, now=NOW)
    monkeypatch.setattr(run_module, "write_parquet", real)
    recovered = run(world.params, now=NOW)
    assert recovered.recomputed == 2
    assert whole(recovered.profile)["count"].tolist() == [200, 200, 200]
    assert not np.any(tables(world)[0].duplicated(PROFILE_KEY))
