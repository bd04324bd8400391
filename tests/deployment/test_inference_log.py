"""churn.deployment.inference_log: append-only, date-partitioned Parquet with late labels."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn.core.clean import clean_features, encode_labels
from churn.core.contract import validate_raw
from churn.data.simulate import simulate
from churn.deployment import inference_log
from churn.deployment.inference_log import append, attach_labels, read_labels, read_log
from churn.errors import ChurnError
from churn.servable.scoring import PREDICTION, PROBABILITY, score_records
from churn.training.pipeline import build_pipeline

T0 = datetime(2026, 11, 26, 10, 15, 2, 123456, tzinfo=UTC)
URI = "models:/churn-classifier@champion"
PART = re.compile(r"^part-\d{8}T\d{12}Z-[0-9a-f]{32}\.parquet$")


@pytest.fixture(scope="module")
def model(params):
    """A small fitted pipeline: the log stores what it scored, so any real model will do."""
    dataset = params.dataset
    typed = validate_raw(simulate(500, seed=3), dataset)
    features = clean_features(typed, dataset)[dataset.feature_columns]
    labels = encode_labels(typed, dataset)[dataset.label_column]
    train = params.train.model_copy(update={"hyperparameters": {"hist_gradient_boosting": {"max_iter": 10}}})
    return build_pipeline(dataset, train).fit(features, labels)


@pytest.fixture(scope="module")
def customers():
    """Raw records as a client sends them, label included."""
    return simulate(120, seed=8)


def scored(model, dataset, raw: pd.DataFrame, with_label: bool = True) -> pd.DataFrame:
    if not with_label:
        raw = raw.drop(columns=dataset.label_column)
    batch = score_records(model, dataset, 0.35, raw)
    assert len(batch.rejected) == 0
    return batch.scored


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def log_it(root, frame, dataset, at=T0, version="3"):
    return append(root, frame, dataset=dataset, model_version=version, model_uri=URI, scored_at=at)


# --- append ---------------------------------------------------------------------------------

def test_append_writes_one_new_file_in_the_date_partition(tmp_path, model, dataset, customers):
    frame = scored(model, dataset, customers.head(10))
    path = log_it(tmp_path / "log", frame, dataset)
    assert path.parent == tmp_path / "log" / "date=2026-11-26"
    assert PART.match(path.name), path.name
    assert path.name.startswith("part-20261126T101502123456Z-")
    assert files(tmp_path / "log") == [path]  # no temporary file left behind
    written = pd.read_parquet(path)
    assert list(written.columns) == inference_log.log_columns(dataset)
    assert written[dataset.id_column].tolist() == frame[dataset.id_column].tolist()
    assert written[PROBABILITY].tolist() == frame[PROBABILITY].tolist()
    assert (written["model_version"] == "3").all() and (written["model_uri"] == URI).all()
    assert (written["scored_at"] == pd.Timestamp(T0)).all()
    assert written[dataset.label_column].tolist() == customers.head(10)[dataset.label_column].tolist()


def test_partition_is_the_utc_date(tmp_path, model, dataset, customers):
    late_evening_in_new_york = datetime(2026, 11, 26, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    path = log_it(tmp_path, scored(model, dataset, customers.head(3)), dataset, at=late_evening_in_new_york)
    assert path.parent.name == "date=2026-11-27"
    assert read_log(tmp_path)["scored_at"].iloc[0] == pd.Timestamp("2026-11-27 04:30", tz="UTC")


def test_two_appends_give_two_files_and_leave_the_first_untouched(tmp_path, model, dataset, customers):
    first = log_it(tmp_path, scored(model, dataset, customers.head(10)), dataset)
    first_bytes, first_stat = first.read_bytes(), first.stat()
    second = log_it(tmp_path, scored(model, dataset, customers.iloc[10:30]), dataset)  # same instant
    assert second != first and second.parent == first.parent
    assert files(tmp_path) == sorted([first, second])
    assert first.read_bytes() == first_bytes
    assert first.stat().st_mtime_ns == first_stat.st_mtime_ns and first.stat().st_ino == first_stat.st_ino
    assert len(read_log(tmp_path)) == 30


def test_empty_batch_writes_nothing(tmp_path, model, dataset, customers):
    empty = scored(model, dataset, customers.head(5)).iloc[0:0]
    assert log_it(tmp_path / "log", empty, dataset) is None
    assert not (tmp_path / "log").exists()


def test_append_refuses_naive_times_and_incomplete_frames(tmp_path, model, dataset, customers):
    frame = scored(model, dataset, customers.head(5))
    with pytest.raises(ChurnError, match="timezone-aware"):
        log_it(tmp_path, frame, dataset, at=datetime(2026, 11, 26, 10, 0))
    with pytest.raises(ChurnError, match="churn_probability"):
        log_it(tmp_path, frame.drop(columns=PROBABILITY), dataset)
    assert files(tmp_path) == []


# --- read_log -------------------------------------------------------------------------------

def test_read_log_returns_every_row_with_stable_dtypes(tmp_path, model, dataset, customers):
    with_label = scored(model, dataset, customers.head(8))
    without_label = scored(model, dataset, customers.iloc[8:20], with_label=False)
    log_it(tmp_path, with_label, dataset, version="3")
    log_it(tmp_path, without_label, dataset, at=T0 + timedelta(days=1), version="4")
    log = read_log(tmp_path, dataset=dataset)

    assert list(log.columns) == [*inference_log.log_columns(dataset), "date"]
    assert len(log) == 20
    assert log[dataset.id_column].tolist() == customers.head(20)[dataset.id_column].tolist()
    for column in dataset.numeric:
        assert log[column].dtype == np.float64, column
    for column in [dataset.id_column, *dataset.categorical, "model_version", "model_uri", dataset.label_column]:
        assert log[column].dtype == object, column
    assert log[PROBABILITY].dtype == np.float64 and log[PREDICTION].dtype == np.int64
    assert str(log["scored_at"].dtype) == "datetime64[ns, UTC]"
    assert log["date"].tolist() == [date(2026, 11, 26)] * 8 + [date(2026, 11, 27)] * 12
    assert log["model_version"].tolist() == ["3"] * 8 + ["4"] * 12
    # the label is there when the request carried it, null otherwise
    assert log[dataset.label_column].head(8).tolist() == customers.head(8)[dataset.label_column].tolist()
    assert log[dataset.label_column].iloc[8:].isna().all()
    # the features are the cleaned ones that were scored
    pd.testing.assert_frame_equal(
        log[dataset.feature_columns].head(8).reset_index(drop=True),
        with_label[dataset.feature_columns].reset_index(drop=True),
    )
    np.testing.assert_array_equal(log[PROBABILITY].iloc[8:], without_label[PROBABILITY])


def test_date_filter_is_inclusive(tmp_path, model, dataset, customers):
    for day in range(3):
        log_it(tmp_path, scored(model, dataset, customers.iloc[day * 10:(day + 1) * 10]), dataset,
               at=T0 + timedelta(days=day))
    d26, d27, d28 = date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 28)
    assert len(read_log(tmp_path)) == 30
    assert set(read_log(tmp_path, start=d27)["date"]) == {d27, d28}
    assert set(read_log(tmp_path, end=d27)["date"]) == {d26, d27}
    only = read_log(tmp_path, start=d27, end=d27, dataset=dataset)
    assert set(only["date"]) == {d27}
    assert only[dataset.id_column].tolist() == customers.iloc[10:20][dataset.id_column].tolist()
    assert read_log(tmp_path, start=date(2027, 1, 1)).empty
    with pytest.raises(ChurnError, match="empty"):
        read_log(tmp_path, start=d28, end=d26)


@pytest.mark.parametrize("create_root", [False, True])
def test_empty_log_reads_as_an_empty_frame_with_the_columns(tmp_path, dataset, create_root):
    root = tmp_path / "log"
    if create_root:
        root.mkdir()
    log = read_log(root, dataset=dataset)
    assert log.empty
    assert list(log.columns) == [*inference_log.log_columns(dataset), "date"]
    assert log[PROBABILITY].dtype == np.float64 and log[PREDICTION].dtype == np.int64
    assert str(log["scored_at"].dtype) == "datetime64[ns, UTC]"
    bare = read_log(root)
    assert bare.empty and {PROBABILITY, PREDICTION, "model_version", "scored_at", "date"} <= set(bare.columns)
    assert read_log(root, dataset=dataset, with_labels=True).empty


def test_a_foreign_directory_in_the_log_is_reported(tmp_path, model, dataset, customers):
    log_it(tmp_path, scored(model, dataset, customers.head(3)), dataset)
    (tmp_path / "date=yesterday").mkdir()
    with pytest.raises(ChurnError, match="date=yesterday"):
        read_log(tmp_path)


def test_the_log_never_loses_rows(tmp_path, model, dataset, customers):
    """Overlapping batches, a failed append and an empty one: every scored row stays."""
    batches = [customers.iloc[0:40], customers.iloc[30:70], customers.iloc[60:120], customers.iloc[0:5]]
    expected = []
    for n, raw in enumerate(batches):
        frame = scored(model, dataset, raw)
        log_it(tmp_path, frame, dataset, at=T0 + timedelta(hours=7 * n))
        expected += frame[dataset.id_column].tolist()
        with pytest.raises(ChurnError):
            log_it(tmp_path, frame.drop(columns=dataset.id_column), dataset)
        assert log_it(tmp_path, frame.iloc[0:0], dataset) is None
    log = read_log(tmp_path, dataset=dataset)
    assert len(log) == len(expected) == 145
    assert sorted(log[dataset.id_column]) == sorted(expected)  # re-scored ids appear once per scoring
    assert len(list(tmp_path.rglob("*.parquet"))) == 4
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


# --- labels ---------------------------------------------------------------------------------

def test_labels_attached_later_join_by_id_latest_wins(tmp_path, model, dataset, customers):
    ids = customers[dataset.id_column]
    log_it(tmp_path, scored(model, dataset, customers.head(6), with_label=False), dataset)
    log_it(tmp_path, scored(model, dataset, customers.iloc[6:9]), dataset)  # carries its labels
    log_files = {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")}

    label, pos, neg = dataset.label_column, dataset.positive_label, dataset.negative_label
    first = pd.DataFrame({dataset.id_column: ids.iloc[0:4], label: [pos, neg, pos, neg]})
    assert attach_labels(tmp_path, first, dataset=dataset, labelled_at=T0 + timedelta(days=30)) == 4
    # a correction for id 0, and a label for id 7 that contradicts the one its request carried
    flipped = pos if customers[label].iloc[7] == neg else neg
    correction = pd.DataFrame({dataset.id_column: [ids.iloc[0], ids.iloc[7]], label: [neg, flipped]})
    assert attach_labels(tmp_path, correction, dataset=dataset, labelled_at=T0 + timedelta(days=31)) == 2
    # an older label for id 1 that arrives last (in an earlier date partition) must not win
    stale = pd.DataFrame({dataset.id_column: [ids.iloc[1]], label: [pos]})
    assert attach_labels(tmp_path, stale, dataset=dataset, labelled_at=T0 + timedelta(days=2)) == 1

    assert {p: p.read_bytes() for p in log_files} == log_files  # the log itself was not rewritten
    assert len(list((tmp_path / "labels").rglob("*.parquet"))) == 3
    assert len(read_labels(tmp_path, dataset=dataset, latest=False)) == 7

    plain = read_log(tmp_path, dataset=dataset).set_index(dataset.id_column)
    assert "labelled_at" not in plain.columns
    assert plain.loc[ids.iloc[0:6], label].isna().all()  # both batches were logged at T0: order by id
    assert plain.loc[ids.iloc[6:9], label].tolist() == customers[label].iloc[6:9].tolist()

    joined = read_log(tmp_path, dataset=dataset, with_labels=True).set_index(dataset.id_column)
    assert len(joined) == 9
    got = joined[label]
    assert got[ids.iloc[0]] == neg  # corrected
    assert got[ids.iloc[1]] == neg  # the stale label did not win
    assert got[ids.iloc[2]] == pos and got[ids.iloc[3]] == neg
    assert got[ids.iloc[4]] is None and got[ids.iloc[5]] is None  # no label yet
    assert got[ids.iloc[6]] == customers[label].iloc[6]  # the label that came with the request
    assert got[ids.iloc[7]] == flipped  # an attached label overrides the request's
    assert joined.loc[ids.iloc[0], "labelled_at"] == pd.Timestamp(T0 + timedelta(days=31))
    assert pd.isna(joined.loc[ids.iloc[4], "labelled_at"])
    assert str(joined["labelled_at"].dtype) == "datetime64[ns, UTC]"


def test_bad_labels_are_refused_and_nothing_is_written(tmp_path, dataset):
    label, id_column = dataset.label_column, dataset.id_column
    with pytest.raises(ChurnError, match="'Maybe'"):
        attach_labels(tmp_path, pd.DataFrame({id_column: ["a", "b"], label: ["Yes", "Maybe"]}), dataset=dataset)
    with pytest.raises(ChurnError, match=label):
        attach_labels(tmp_path, pd.DataFrame({id_column: ["a"]}), dataset=dataset)
    with pytest.raises(ChurnError, match="timezone-aware"):
        attach_labels(tmp_path, pd.DataFrame({id_column: ["a"], label: ["No"]}), dataset=dataset,
                      labelled_at=datetime(2026, 1, 1))
    assert files(tmp_path) == []
    assert attach_labels(tmp_path, pd.DataFrame({id_column: [], label: []}), dataset=dataset) == 0
    assert files(tmp_path) == []
    with pytest.raises(ChurnError, match="dataset"):
        read_log(tmp_path, with_labels=True)
