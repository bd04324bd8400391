"""A file-based feature store: keyed feature tables and training sets built by lookups.

The API follows the Databricks feature-engineering client (`FeatureLookup`,
`create_training_set`) so that moving to a managed store later changes the backend, not
the pipeline. Tables are Parquet files with a JSON sidecar holding their metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from churn.errors import ChurnError
from churn.io import write_json, write_parquet


@dataclass(frozen=True)
class FeatureTableMetadata:
    name: str
    primary_keys: list[str]
    timestamp_key: str | None
    description: str
    schema: dict[str, str]
    rows: int


@dataclass(frozen=True)
class FeatureTable:
    metadata: FeatureTableMetadata
    data: pd.DataFrame

    @property
    def feature_names(self) -> list[str]:
        keys = set(self.metadata.primary_keys) | {self.metadata.timestamp_key}
        return [c for c in self.data.columns if c not in keys]


def build_feature_table(
    df: pd.DataFrame,
    *,
    name: str,
    primary_keys: list[str],
    timestamp_key: str | None = None,
    description: str = "",
) -> FeatureTable:
    """A table whose rows are unique per (primary keys, timestamp key)."""
    key = [*primary_keys, *([timestamp_key] if timestamp_key else [])]
    missing = [c for c in key if c not in df.columns]
    if missing:
        raise ChurnError(f"feature table {name}: key columns {missing} are not in the frame.")
    if df[key].isna().any().any():
        raise ChurnError(f"feature table {name}: key columns {key} contain missing values.")
    duplicated = df.duplicated(subset=key)
    if duplicated.any():
        examples = df.loc[duplicated, key].head(3).to_dict("records")
        raise ChurnError(
            f"feature table {name}: {int(duplicated.sum())} rows repeat a primary key, e.g. {examples}."
        )
    metadata = FeatureTableMetadata(
        name=name,
        primary_keys=list(primary_keys),
        timestamp_key=timestamp_key,
        description=description,
        schema={column: str(dtype) for column, dtype in df.dtypes.items()},
        rows=len(df),
    )
    return FeatureTable(metadata, df)


def write_feature_table(table: FeatureTable, table_path: str | Path, metadata_path: str | Path) -> None:
    write_parquet(table_path, table.data)
    write_json(metadata_path, asdict(table.metadata))


@dataclass(frozen=True)
class FeatureLookup:
    """Join `feature_names` (all by default) from `table` on `lookup_key`.

    With `timestamp_lookup_key`, each row gets the latest feature values at or before its
    own timestamp, so no feature from the future leaks into a training row.
    """

    table: FeatureTable
    lookup_key: list[str]
    feature_names: list[str] | None = None
    timestamp_lookup_key: str | None = None


@dataclass(frozen=True)
class TrainingSet:
    """Rows with all their features, and the keys that found none (reported, not hidden)."""

    df: pd.DataFrame
    label: str
    missing: pd.DataFrame = field(repr=False)

    @property
    def missing_count(self) -> int:
        return len(self.missing)


def create_training_set(
    df: pd.DataFrame, feature_lookups: list[FeatureLookup], label: str
) -> TrainingSet:
    if label not in df.columns:
        raise ChurnError(f"training set: label column {label!r} is not in the label frame.")
    result = df.reset_index(drop=True)
    found_all = pd.Series(True, index=result.index)
    for lookup in feature_lookups:
        result, found = _lookup(result, lookup)
        found_all &= found
    # Usually every label finds its features: then the frame is kept, not copied row by row.
    return TrainingSet(
        df=result if found_all.all() else result[found_all.to_numpy()].reset_index(drop=True),
        label=label,
        missing=result.loc[~found_all.to_numpy(), list(df.columns)].reset_index(drop=True),
    )


def _lookup(left: pd.DataFrame, lookup: FeatureLookup) -> tuple[pd.DataFrame, pd.Series]:
    table = lookup.table
    features = lookup.feature_names or table.feature_names
    unknown = sorted(set(features) - set(table.data.columns))
    if unknown:
        raise ChurnError(f"lookup on {table.metadata.name}: unknown features {unknown}.")
    missing_keys = [k for k in lookup.lookup_key if k not in left.columns]
    if missing_keys:
        raise ChurnError(f"lookup on {table.metadata.name}: keys {missing_keys} not in the frame.")
    clash = sorted(set(features) & set(left.columns))
    if clash:
        raise ChurnError(f"lookup on {table.metadata.name}: columns {clash} already in the frame.")

    table_key = table.metadata.primary_keys
    if len(lookup.lookup_key) != len(table_key):
        # Keys pair up by position; a short list would join on part of the key.
        raise ChurnError(
            f"lookup on {table.metadata.name}: lookup_key {lookup.lookup_key} must name one column "
            f"for each primary key {table_key}."
        )
    if lookup.timestamp_lookup_key and table.metadata.timestamp_key is None:
        raise ChurnError(f"lookup on {table.metadata.name}: the table has no timestamp key.")
    ts_column = [table.metadata.timestamp_key] if lookup.timestamp_lookup_key else []
    # Selecting columns makes a new frame, renamed and marked here in place: rename and
    # assign would each copy every column again (seconds at a million rows). The shallow
    # copy copies no data; it only tells pandas the frame is not a view of the table's.
    right = table.data[[*table_key, *ts_column, *features]].copy(deep=False)
    right.columns = pd.Index([*lookup.lookup_key, *ts_column, *features])
    marker = "__feature_found__"
    right[marker] = True

    if lookup.timestamp_lookup_key:
        table_ts = table.metadata.timestamp_key
        order = "__row_order__"
        left_sorted = left.assign(**{order: range(len(left))}).sort_values(lookup.timestamp_lookup_key, kind="stable")
        # Renamed so the feature timestamp never overwrites the row's own timestamp.
        right_on = "__feature_ts__"
        right_sorted = right.sort_values(table_ts, kind="stable").rename(columns={table_ts: right_on})
        merged = pd.merge_asof(
            left_sorted,
            right_sorted,
            left_on=lookup.timestamp_lookup_key,
            right_on=right_on,
            by=lookup.lookup_key,
            direction="backward",
        )
        merged = merged.sort_values(order, kind="stable").drop(columns=[order, right_on])
        merged.index = left.index
    else:
        # many-to-one, checked by hashing the keys: merge(validate="many_to_one") sorts them
        # (about ten seconds for a million text ids), this is one pass.
        if right.duplicated(subset=lookup.lookup_key).any():
            raise pd.errors.MergeError("Merge keys are not unique in right dataset; not a many-to-one merge")
        if _same_keys_in_order(left, right, lookup.lookup_key):
            # Prep's case: labels and features come from the same rows, so row i finds row i.
            # Placing the columns side by side is what the merge returns, without hashing a
            # million text keys (seconds at that size). Neither side is copied again: `right`
            # is this function's own selection and `left` a frame the caller made (a drop
            # and two index resets copied every column three times: 2.3 s at a million rows).
            for key in lookup.lookup_key:
                del right[key]
            rows = pd.RangeIndex(len(left))
            right.index = rows
            merged = pd.concat([left.set_axis(rows, axis=0, copy=False), right], axis=1, copy=False)
        else:
            merged = left.merge(right, on=lookup.lookup_key, how="left")
    found = merged.pop(marker).notna().astype(bool)
    return merged, found


def _same_keys_in_order(left: pd.DataFrame, right: pd.DataFrame, keys: list[str]) -> bool:
    """Whether both frames hold the same keys row for row (values and dtypes)."""
    if len(left) != len(right):
        return False
    return all(left[key].reset_index(drop=True).equals(right[key].reset_index(drop=True)) for key in keys)
