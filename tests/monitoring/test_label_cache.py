"""churn.monitoring.label_cache: hashed latest labels kept between runs, read only when new.

The reference every answer is checked against is `inference_log.read_labels(latest=True)`,
the log's own reader; the monitor-level test checks that tables made with a warm cache
equal those of a fresh run.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from churn.deployment import inference_log
from churn.monitoring import label_cache
from churn.monitoring.baseline import encode
from churn.monitoring.run import run
from churn.monitoring.source import id_keys

from .conftest import NOW

T0 = datetime(2026, 11, 10, tzinfo=UTC)


def attach(root, dataset, ids, labels, at, at_column=None):
    frame = pd.DataFrame({dataset.id_column: ids, dataset.label_column: labels})
    if at_column is not None:
        frame[inference_log.LABELLED_AT] = at_column
    return inference_log.write_labels(root, frame, dataset=dataset, labelled_at=at)[1]


def expected(root, dataset) -> pd.Series:
    """id hash -> label (1.0/0.0) by the log's own reader."""
    latest = inference_log.read_labels(root, dataset=dataset, latest=True)
    return pd.Series(encode(latest[dataset.label_column], dataset), index=id_keys(latest[dataset.id_column]))


def as_series(labels) -> pd.Series:
    return pd.Series(labels.values, index=np.asarray(labels.keys))


def same(labels, root, dataset) -> None:
    want = expected(root, dataset).sort_index()
    got = as_series(labels).sort_index()
    assert got.index.equals(want.index)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


@pytest.fixture
def counted(monkeypatch):
    """The label files read, by name."""
    seen: list[str] = []
    real = label_cache._read_file

    def spy(root, entry, index, dataset):
        seen.append(entry[1])
        return real(root, entry, index, dataset)

    monkeypatch.setattr(label_cache, "_read_file", spy)
    return seen


def test_latest_label_wins_as_the_log_reader_says_ties_by_file_order(tmp_path, dataset):
    root, state = tmp_path / "log", tmp_path / "state"
    attach(root, dataset, ["a", "b", "c"], ["Yes", "No", "Yes"], T0)
    attach(root, dataset, ["a", "b"], ["No", "Yes"], T0)  # same time, later file: wins
    # Within one file, per-row times: c's later label is in an earlier-dated row.
    attach(root, dataset, ["c", "d"], ["No", "No"], T0 - timedelta(days=3),
           at_column=[T0 - timedelta(days=1), T0 + timedelta(days=1)])
    labels = label_cache.load(root, dataset, state)
    same(labels, root, dataset)
    assert labels.duplicates == 3  # a, b and c were each labelled twice
    assert (state / label_cache.CACHE_FILE).is_file()


def test_a_new_label_file_is_the_only_one_read_and_the_answer_equals_a_fresh_read(tmp_path, dataset, counted):
    root, state = tmp_path / "log", tmp_path / "state"
    attach(root, dataset, ["a", "b", "c"], ["Yes", "No", "Yes"], T0)
    attach(root, dataset, ["b"], ["Yes"], T0 + timedelta(days=2))
    first = label_cache.load(root, dataset, state)
    assert len(counted) == 2
    # A later label for a, and one stamped before every cached file: its partition sorts
    # first, yet it must not beat the later labels already in the cache.
    new_late = attach(root, dataset, ["a", "e"], ["No", "Yes"], T0 + timedelta(days=5))
    new_early = attach(root, dataset, ["b", "f"], ["No", "No"], T0 - timedelta(days=5))
    counted.clear()
    warm = label_cache.load(root, dataset, state)
    assert sorted(counted) == sorted([new_late.name, new_early.name])
    fresh = label_cache.load(root, dataset, None)
    same(warm, root, dataset)
    pd.testing.assert_series_equal(as_series(warm).sort_index(), as_series(fresh).sort_index())
    assert warm.duplicates == fresh.duplicates == 3 and warm.fingerprint == fresh.fingerprint != first.fingerprint
    counted.clear()
    assert as_series(label_cache.load(root, dataset, state)).equals(as_series(warm)) and counted == []


def test_a_changed_or_removed_label_file_makes_the_cache_stale(tmp_path, dataset, counted):
    root, state = tmp_path / "log", tmp_path / "state"
    keep = attach(root, dataset, ["a", "b"], ["Yes", "Yes"], T0)
    changed = attach(root, dataset, ["c"], ["Yes"], T0 + timedelta(days=1))
    label_cache.load(root, dataset, state)
    # Rewritten in place (same name): another label for c, and a new id.
    rewritten = pd.DataFrame({dataset.id_column: ["c", "g"], dataset.label_column: ["No", "Yes"],
                              inference_log.LABELLED_AT: [T0 + timedelta(days=1)] * 2})
    rewritten.to_parquet(changed)
    os.utime(changed, ns=(1, 1))  # a different modification time whatever the size
    counted.clear()
    labels = label_cache.load(root, dataset, state)
    assert sorted(counted) == sorted([keep.name, changed.name])  # everything read again
    same(labels, root, dataset)
    changed.unlink()
    counted.clear()
    labels = label_cache.load(root, dataset, state)
    assert counted == [keep.name]
    same(labels, root, dataset)
    assert labels.duplicates == 0


def test_a_damaged_cache_or_another_label_encoding_is_read_again(tmp_path, dataset, counted):
    root, state = tmp_path / "log", tmp_path / "state"
    attach(root, dataset, ["a", "b"], ["Yes", "No"], T0)
    label_cache.load(root, dataset, state)
    (state / label_cache.CACHE_FILE).write_bytes(b"not parquet")
    counted.clear()
    same(label_cache.load(root, dataset, state), root, dataset)
    assert len(counted) == 1
    swapped = dataset.model_copy(update={"positive_label": "No", "negative_label": "Yes"})
    counted.clear()
    labels = label_cache.load(root, swapped, state)
    assert len(counted) == 1
    assert sorted(labels.values.tolist()) == [0.0, 1.0] and as_series(labels)[id_keys(["b"])[0]] == 1.0


def test_no_label_files_no_labels(tmp_path, dataset):
    labels = label_cache.load(tmp_path / "log", dataset, tmp_path / "state")
    assert len(labels) == 0 and labels.duplicates == 0


def test_monitor_tables_with_a_warm_label_cache_equal_a_fresh_run(world, counted):
    raws = [world.log_day(day, 150) for day in range(2)]
    world.label(raws[0], at_day=30)
    run(world.params, now=NOW)
    world.label(raws[1], at_day=31)
    counted.clear()
    warm = run(world.params, now=NOW)
    assert len(counted) == 1  # only the new label file
    state = world.params.monitor.paths.state_dir
    for leftover in state.iterdir():  # a fresh run: no state, no label cache
        leftover.unlink()
    counted.clear()
    fresh = run(world.params, now=NOW)
    assert len(counted) == 2
    pd.testing.assert_frame_equal(warm.profile, fresh.profile)
    pd.testing.assert_frame_equal(warm.drift, fresh.drift)
    assert warm.duplicate_labels == fresh.duplicate_labels and warm.unknown_label_ids == fresh.unknown_label_ids
