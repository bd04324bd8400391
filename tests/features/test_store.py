"""churn.features.store: keyed feature tables, round trips and point-in-time lookups."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churn.core.clean import clean_features, encode_labels
from churn.core.contract import validate_raw
from churn.errors import ChurnError
from churn.features.store import (
    FeatureLookup,
    build_feature_table,
    create_training_set,
    write_feature_table,
)


@pytest.fixture
def typed(raw_frame, dataset):
    return validate_raw(raw_frame, dataset)


@pytest.fixture
def features(typed, dataset):
    return clean_features(typed, dataset)


@pytest.fixture
def labels(typed, dataset):
    return encode_labels(typed, dataset)


@pytest.fixture
def table(features, dataset):
    return build_feature_table(features, name="customer_features",
                               primary_keys=[dataset.id_column], description="one row per customer")


# --- tables ---------------------------------------------------------------------------

def test_build_metadata(table, features, dataset):
    meta = table.metadata
    assert meta.name == "customer_features"
    assert meta.primary_keys == [dataset.id_column]
    assert meta.timestamp_key is None
    assert meta.rows == len(features)
    assert list(meta.schema) == list(features.columns)
    assert meta.schema["tenure"] == "float64"
    assert table.feature_names == dataset.feature_columns


def test_write_writes_data_and_metadata_json(tmp_path, table, dataset):
    table_path, meta_path = tmp_path / "t" / "f.parquet", tmp_path / "t" / "f.meta.json"
    write_feature_table(table, table_path, meta_path)
    meta = json.loads(meta_path.read_text())
    assert meta == {
        "name": "customer_features",
        "primary_keys": [dataset.id_column],
        "timestamp_key": None,
        "description": "one row per customer",
        "schema": {c: str(t) for c, t in table.data.dtypes.items()},
        "rows": len(table.data),
    }
    pd.testing.assert_frame_equal(pd.read_parquet(table_path), table.data)


@pytest.fixture
def timestamped():
    return pd.DataFrame({
        "id": ["a", "a", "b"],
        "as_of": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-15"]),
        "x": [1.0, 2.0, 3.0],
    })


def test_write_with_timestamp_key(tmp_path, timestamped):
    table = build_feature_table(timestamped, name="t", primary_keys=["id"], timestamp_key="as_of", description="d")
    write_feature_table(table, tmp_path / "t.parquet", tmp_path / "t.json")
    meta = json.loads((tmp_path / "t.json").read_text())
    assert meta["timestamp_key"] == "as_of"
    assert meta["primary_keys"] == ["id"]
    assert meta["rows"] == 3
    assert table.feature_names == ["x"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), timestamped)


def test_duplicate_primary_key(features, dataset):
    features.loc[3, dataset.id_column] = features.loc[0, dataset.id_column]
    with pytest.raises(ChurnError, match="repeat a primary key"):
        build_feature_table(features, name="t", primary_keys=[dataset.id_column])


def test_null_primary_key(features, dataset):
    features.loc[3, dataset.id_column] = None
    with pytest.raises(ChurnError, match="missing values"):
        build_feature_table(features, name="t", primary_keys=[dataset.id_column])


def test_missing_key_column(features):
    with pytest.raises(ChurnError, match="not in the frame"):
        build_feature_table(features, name="t", primary_keys=["no_such_key"])


def test_same_id_at_different_times_is_allowed_with_timestamp_key():
    df = pd.DataFrame({"id": ["a", "a"], "ts": pd.to_datetime(["2024-01-01", "2024-02-01"]), "x": [1.0, 2.0]})
    build_feature_table(df, name="t", primary_keys=["id"], timestamp_key="ts")
    with pytest.raises(ChurnError):
        build_feature_table(df.assign(ts=df["ts"].iloc[0]), name="t", primary_keys=["id"], timestamp_key="ts")


# --- training sets --------------------------------------------------------------------

def test_training_set_joins_features_and_keeps_label(table, labels, features, dataset):
    lookup = FeatureLookup(table=table, lookup_key=[dataset.id_column])
    ts = create_training_set(labels, [lookup], label=dataset.label_column)
    assert ts.label == dataset.label_column
    assert ts.missing_count == 0
    assert len(ts.df) == len(labels)
    assert set(ts.df.columns) == {dataset.id_column, dataset.label_column, *dataset.feature_columns}
    expected = labels.merge(features, on=dataset.id_column)
    pd.testing.assert_frame_equal(ts.df[expected.columns], expected)


def test_keys_without_features_are_reported_not_dropped(table, labels, dataset):
    extra = pd.DataFrame({dataset.id_column: ["GHOST-1", "GHOST-2"], dataset.label_column: [1, 0]})
    with_ghosts = pd.concat([extra.iloc[:1], labels, extra.iloc[1:]], ignore_index=True)
    ts = create_training_set(with_ghosts, [FeatureLookup(table=table, lookup_key=[dataset.id_column])],
                             label=dataset.label_column)
    assert ts.missing_count == 2
    assert ts.missing[dataset.id_column].tolist() == ["GHOST-1", "GHOST-2"]
    assert list(ts.missing.columns) == list(with_ghosts.columns)
    assert ts.missing[dataset.label_column].tolist() == [1, 0]
    assert not ts.df[dataset.id_column].isin(["GHOST-1", "GHOST-2"]).any()
    assert len(ts.df) + ts.missing_count == len(with_ghosts)
    assert ts.df[dataset.feature_columns].notna().all().all()


@pytest.mark.parametrize("order", ["aligned", "shuffled"])
def test_lookup_leaves_the_table_and_labels_as_they_were(table, labels, dataset, order):
    """The lookup renames and marks its own selection of the table in place: never the
    table's frame, nor the caller's labels."""
    renamed = labels.rename(columns={dataset.id_column: "cust"})
    if order == "shuffled":
        renamed = renamed.sample(frac=1, random_state=2)
    table_before, labels_before = table.data.copy(), renamed.copy()
    create_training_set(renamed, [FeatureLookup(table=table, lookup_key=["cust"])], label=dataset.label_column)
    pd.testing.assert_frame_equal(table.data, table_before)
    pd.testing.assert_frame_equal(renamed, labels_before)


def test_selected_feature_names(table, labels, dataset):
    lookup = FeatureLookup(table=table, lookup_key=[dataset.id_column], feature_names=["tenure", "Contract"])
    ts = create_training_set(labels, [lookup], label=dataset.label_column)
    assert list(ts.df.columns) == [dataset.id_column, dataset.label_column, "tenure", "Contract"]


def test_unknown_feature_names(table, labels, dataset):
    lookup = FeatureLookup(table=table, lookup_key=[dataset.id_column], feature_names=["tenure", "shoe_size"])
    with pytest.raises(ChurnError, match="shoe_size"):
        create_training_set(labels, [lookup], label=dataset.label_column)


def test_missing_label_column(table, labels, dataset):
    with pytest.raises(ChurnError, match="label"):
        create_training_set(labels.drop(columns=[dataset.label_column]),
                            [FeatureLookup(table=table, lookup_key=[dataset.id_column])],
                            label=dataset.label_column)


def test_lookup_key_renamed(table, labels, dataset):
    renamed = labels.rename(columns={dataset.id_column: "cust"})
    ts = create_training_set(renamed, [FeatureLookup(table=table, lookup_key=["cust"])], label=dataset.label_column)
    assert ts.missing_count == 0
    assert ts.df["cust"].tolist() == labels[dataset.id_column].tolist()


def test_lookup_key_needs_one_column_per_primary_key(table, labels, dataset):
    doubled = labels.assign(extra=1)
    lookup = FeatureLookup(table=table, lookup_key=[dataset.id_column, "extra"])
    with pytest.raises(ChurnError, match="one column for each primary key"):
        create_training_set(doubled, [lookup], label=dataset.label_column)


def test_label_row_order_preserved(table, labels, dataset):
    shuffled = labels.sample(frac=1, random_state=5).reset_index(drop=True)
    ts = create_training_set(shuffled, [FeatureLookup(table=table, lookup_key=[dataset.id_column])],
                             label=dataset.label_column)
    assert ts.df[dataset.id_column].tolist() == shuffled[dataset.id_column].tolist()
    assert ts.df[dataset.label_column].tolist() == shuffled[dataset.label_column].tolist()



def test_aligned_keys_give_what_the_merge_gives(table, labels, features, dataset):
    """Labels in the table's own row order take the side-by-side path; shuffled ones the
    merge. Both must produce the same training set, dtypes included."""
    lookup = FeatureLookup(table=table, lookup_key=[dataset.id_column])
    aligned = create_training_set(labels, [lookup], label=dataset.label_column).df
    order = np.random.default_rng(3).permutation(len(labels))
    shuffled = create_training_set(labels.iloc[order], [lookup], label=dataset.label_column).df
    restored = shuffled.set_index(dataset.id_column).loc[labels[dataset.id_column]].reset_index()
    pd.testing.assert_frame_equal(aligned, restored[aligned.columns])
    pd.testing.assert_frame_equal(aligned, labels.merge(features, on=dataset.id_column, how="left"))


def test_same_ids_in_another_order_are_not_placed_side_by_side(table, labels, dataset):
    reversed_labels = labels.iloc[::-1].reset_index(drop=True)
    ts = create_training_set(reversed_labels, [FeatureLookup(table=table, lookup_key=[dataset.id_column])],
                             label=dataset.label_column)
    by_id = table.data.set_index(dataset.id_column)
    assert ts.df["tenure"].tolist() == by_id.loc[reversed_labels[dataset.id_column], "tenure"].tolist()

# --- point in time --------------------------------------------------------------------

@pytest.fixture
def history():
    """Feature snapshots per customer; `x` encodes (customer, snapshot) so matches are traceable."""
    return pd.DataFrame({
        "id": ["a", "a", "a", "b", "b"],
        "as_of": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-05-01", "2024-02-01", "2024-04-01"]),
        "x": [1.0, 2.0, 3.0, 10.0, 20.0],
    })


@pytest.fixture
def history_table(history):
    return build_feature_table(history.sample(frac=1, random_state=1), name="h",
                               primary_keys=["id"], timestamp_key="as_of")


def _pit(labels, table):
    lookup = FeatureLookup(table=table, lookup_key=["id"], timestamp_lookup_key="event_time")
    return create_training_set(labels, [lookup], label="y")


def test_point_in_time_takes_latest_row_at_or_before(history_table):
    labels = pd.DataFrame({
        "id":         ["a",          "a",          "a",          "b",          "b",          "a"],
        "event_time": pd.to_datetime(["2024-02-15", "2024-03-01", "2024-12-31", "2024-03-31", "2024-04-01", "2024-01-01"]),
        "y":          [1, 0, 1, 0, 1, 0],
    })
    ts = _pit(labels, history_table)
    assert ts.missing_count == 0
    # never a later snapshot: Feb 15 -> Jan snapshot; exact match -> that snapshot
    assert ts.df["x"].tolist() == [1.0, 2.0, 3.0, 10.0, 20.0, 1.0]
    assert ts.df["event_time"].tolist() == labels["event_time"].tolist()  # own timestamp kept
    assert ts.df["y"].tolist() == labels["y"].tolist()
    assert "as_of" not in ts.df.columns


def test_point_in_time_never_uses_future_rows(history, history_table):
    rng = np.random.default_rng(0)
    times = pd.to_datetime("2023-12-01") + pd.to_timedelta(rng.integers(0, 240, 200), unit="D")
    labels = pd.DataFrame({"id": rng.choice(["a", "b"], 200), "event_time": times, "y": rng.integers(0, 2, 200)})
    ts = _pit(labels, history_table)
    # brute-force expectation
    expected = []
    for row in labels.itertuples():
        past = history[(history["id"] == row.id) & (history["as_of"] <= row.event_time)]
        expected.append(past.sort_values("as_of")["x"].iloc[-1] if len(past) else None)
    found = [e for e in expected if e is not None]
    assert ts.df["x"].tolist() == found
    assert ts.missing_count == expected.count(None)
    assert ts.df["event_time"].tolist() == [t for t, e in zip(labels["event_time"], expected, strict=True) if e is not None]


def test_label_before_first_feature_row_is_missing(history_table):
    labels = pd.DataFrame({
        "id": ["b", "a", "b"],
        "event_time": pd.to_datetime(["2024-01-31", "2024-06-01", "2024-02-01"]),
        "y": [1, 0, 0],
    })
    ts = _pit(labels, history_table)
    assert ts.missing_count == 1
    assert ts.missing.to_dict("records") == [{"id": "b", "event_time": pd.Timestamp("2024-01-31"), "y": 1}]
    assert ts.df["x"].tolist() == [3.0, 10.0]
    assert ts.df["id"].tolist() == ["a", "b"]


def test_point_in_time_lookup_on_table_without_timestamp(table, labels, dataset):
    labels = labels.assign(event_time=pd.Timestamp("2024-01-01"))
    lookup = FeatureLookup(table=table, lookup_key=[dataset.id_column], timestamp_lookup_key="event_time")
    with pytest.raises(ChurnError, match="no timestamp key"):
        create_training_set(labels, [lookup], label=dataset.label_column)
