"""What the monitor reads: the inference log's files, one partition at a time, labels joined.

Files are read with pyarrow, only the columns the monitor aggregates, text columns
dictionary-encoded: a categorical column becomes a pandas categorical without a Python
string per row, and ids become 64-bit hashes without one either (`id_keys`). Memory stays
bounded by a window, not by the log. Rows are kept compact: categories as pandas
categoricals, the label as 1.0/0.0/NaN in `aggregate.LABEL`. The latest attached label
per id wins over a label that came with the request, as in `read_log(with_labels=True)`;
labels are read once per run (and cached between runs, see `label_cache`), not once per
partition.

The values are those `inference_log.read_log` gives (text columns as `str` of the stored
value: a null category is the level "None"), so the tables do not depend on the reader.

Fingerprints (file names and sizes; the labels that match a partition's ids) tell the
incremental run which partitions changed: log files are append-only and never rewritten,
so a new name is new rows.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churn.config import Dataset
from churn.deployment import inference_log
from churn.errors import ChurnError
from churn.monitoring.aggregate import LABEL
from churn.monitoring.baseline import encode
from churn.servable.scoring import PREDICTION, PROBABILITY

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
SCORED_AT = inference_log.SCORED_AT
MODEL_VERSION = inference_log.MODEL_VERSION
_TIMESTAMP = "datetime64[ns, UTC]"
_CHUNK = 1 << 20


def id_keys(ids: object) -> np.ndarray:
    """64-bit hashes of ids (as text): the label lookup's keys.

    Millions of ids as Python strings would cost gigabytes; their hashes cost 8 bytes each.
    Two different ids share a hash with probability 2^-64 per pair: across ten million
    logged rows and ten million labels, about one chance in two hundred thousand that a
    single row is given another id's label. `ids` may be a pyarrow array: text ids are
    then turned into Python strings a partition at a time, only to be hashed.
    """
    import pyarrow as pa

    if isinstance(ids, (pa.Array, pa.ChunkedArray)):
        arrow: Any = ids
        if pa.types.is_dictionary(arrow.type):
            arrow = arrow.cast(arrow.type.value_type)
        if pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type):
            parts = []
            for start in range(0, len(arrow), _CHUNK):  # a bounded number of Python strings at a time
                chunk = arrow.slice(start, _CHUNK)
                text = chunk.to_numpy(zero_copy_only=False)
                if chunk.null_count:  # str(None), as the log's reader spells a missing id
                    text = np.where(pd.isna(text), "None", text)
                parts.append(pd.util.hash_array(text.astype(object), categorize=False))
            keys: np.ndarray = np.concatenate(parts) if parts else np.zeros(0, dtype="uint64")
            return keys
        ids = arrow.to_pandas()
    text = pd.Series(np.asarray(ids, dtype=object)).astype(str).to_numpy(dtype=object)
    keys = pd.util.hash_array(text, categorize=False)
    return keys


@dataclass(frozen=True)
class Labels:
    keys: pd.Index  # id_keys of the labelled ids, one per id (sorted: looked up by binary search)
    values: np.ndarray  # the latest label of each: 1.0 / 0.0
    duplicates: int  # labels superseded by a later one for the same id
    fingerprint: str  # changes whenever a label file is added or changed

    def __len__(self) -> int:
        return len(self.values)

    def positions(self, ids: object, *, keys: np.ndarray | None = None) -> np.ndarray:
        """Index into `values` of each id's label; -1 when it has none. The hash table of
        `keys` is built on first use and reused. `keys`: the ids' `id_keys`, when known."""
        count = len(ids) if keys is None else len(keys)  # type: ignore[arg-type]
        if not len(self.values) or not count:
            return np.full(count, -1, dtype="int64")
        wanted = id_keys(ids) if keys is None else keys
        if not self.keys.is_monotonic_increasing:
            found: np.ndarray = self.keys.get_indexer(wanted)
            return found
        # Sorted keys (as `label_cache` keeps them): a binary search of the sorted ids, which
        # needs no hash table of millions of labels and walks the keys in order.
        known = self.keys.to_numpy()
        order = np.argsort(wanted)
        at = np.minimum(np.searchsorted(known, wanted[order]), len(known) - 1)
        hit = known[at] == wanted[order]
        found = np.empty(count, dtype="int64")
        found[order] = np.where(hit, at, -1)
        return found

    def lookup(self, ids: object, *, positions: np.ndarray | None = None) -> np.ndarray:
        """The latest label of each id (NaN: none). `positions`: the ids' `positions`, when known."""
        position = self.positions(ids) if positions is None else positions
        out = np.full(len(position), np.nan)
        out[position >= 0] = self.values[position[position >= 0]]
        return out


@dataclass(frozen=True)
class Partition:
    frame: pd.DataFrame  # compact rows, future rows removed
    future_rows: int


def partition_files(root: Path) -> dict[date, list[tuple[str, int]]]:
    """Every date partition with its files (name, size); a listing, nothing is read."""
    out: dict[date, list[tuple[str, int]]] = {}
    for day, files in partition_stats(root).items():
        out[day] = [(name, size) for name, size, _ in files]
    return out


def partition_stats(root: Path) -> dict[date, list[tuple[str, int, int]]]:
    """Every date partition with its files (name, size, modification time in ns), sorted
    by date and name: the order in which the log's readers read them."""
    out: dict[date, list[tuple[str, int, int]]] = {}
    if not root.is_dir():
        return out
    for directory in sorted(root.iterdir()):
        match = _PARTITION.match(directory.name)
        if not directory.is_dir() or not match:
            continue
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            raise ChurnError(f"{directory} is not a date partition: move it out of the inference log") from None
        stats = [(file.name, file.stat()) for file in sorted(directory.glob("part-*.parquet"))]
        files = [(name, stat.st_size, stat.st_mtime_ns) for name, stat in stats]
        if files:
            out[day] = files
    return out


def read_labels(root: Path, dataset: Dataset, *, cache_dir: Path | None = None) -> Labels:
    """The latest attached label per id. With `cache_dir` (the monitor's state directory)
    the hashed labels are kept there and only label files added since are read."""
    from churn.monitoring import label_cache

    return label_cache.load(root, dataset, cache_dir)


def partition_ids(root: Path, day: date, dataset: Dataset) -> np.ndarray:
    """`id_keys` of a partition's rows, its files in name order (what `read_partition` reads)."""
    import pyarrow.parquet as pq

    parts = []
    for file in _files(root, day):
        try:
            ids = pq.read_table(file, columns=[dataset.id_column]).column(0)
        except Exception as exc:
            raise ChurnError(f"cannot read inference log file {file}: {exc.__class__.__name__}: {exc}") from None
        parts.append(id_keys(ids))
    return np.concatenate(parts) if parts else np.zeros(0, dtype="uint64")


def label_digests(
    root: Path, days: list[date], dataset: Dataset, labels: Labels, found: dict[date, np.ndarray] | None = None
) -> tuple[dict[date, str], np.ndarray]:
    """Per partition, a digest of the attached labels matching its ids; and which labels
    matched any of them (bool per label). Reads the id column only. Each partition's
    `Labels.positions` are put in `found` (when given), so that reading the partition later
    does not hash and look up its ids again; with no labels at all only the row counts are
    read."""
    import pyarrow.parquet as pq

    matched_labels = np.zeros(len(labels), dtype=bool)
    digests: dict[date, str] = {}
    for day in days:
        if not len(labels):
            rows = 0
            for file in _files(root, day):
                try:
                    rows += pq.read_metadata(file).num_rows
                except Exception as exc:
                    raise ChurnError(f"cannot read inference log file {file}: {exc.__class__.__name__}: {exc}") from None
            per_row = np.full(rows, -1.0)
        else:
            position = labels.positions(None, keys=partition_ids(root, day, dataset))
            if found is not None:  # int32 while it fits: half the memory for all partitions
                found[day] = position.astype("int32") if len(labels) < 2**31 else position
            hit = position[position >= 0]
            matched_labels[hit] = True
            per_row = np.full(len(position), -1.0)
            per_row[position >= 0] = labels.values[hit]
        digests[day] = hashlib.sha256(per_row.tobytes()).hexdigest()[:16]
    return digests, matched_labels


def read_partition(
    root: Path, day: date, dataset: Dataset, labels: Labels, now: pd.Timestamp, positions: np.ndarray | None = None
) -> Partition:
    """A partition's compact rows (all its files), rows stamped after `now` left out.
    `positions`: its rows' `labels.positions`, in file order, when already known."""
    columns, future = read_partition_columns(root, day, dataset, labels, now, positions)
    return Partition(to_frame(columns), future)


def read_partition_columns(
    root: Path, day: date, dataset: Dataset, labels: Labels, now: pd.Timestamp, positions: np.ndarray | None = None
) -> tuple[Columns, int]:
    """`read_partition` as columns (see `to_columns`), and the number of future rows."""
    frames, future, offset = [], 0, 0
    for file in _files(root, day):
        table = _read_file(root, day, file, dataset, ids=len(labels) > 0 and positions is None)
        rows = table.num_rows
        file_positions = None if positions is None else positions[offset:offset + rows]
        offset += rows
        frame, file_future = _compact_table(table, dataset, labels, now, file_positions)
        frames.append(frame)
        future += file_future
    if not frames:
        return _compact_table(None, dataset, labels, now, None)[0], 0
    return concat_columns(frames), future


def _files(root: Path, day: date) -> list[Path]:
    return sorted((root / f"{inference_log.DATE}={day.isoformat()}").glob("part-*.parquet"))


def _read_file(root: Path, day: date, file: Path, dataset: Dataset, *, ids: bool) -> pa.Table:
    """Only the columns the monitor uses; text as dictionaries (a code per row)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(file)
    except Exception as exc:  # a foreign or damaged file: name it instead of a pyarrow trace
        raise ChurnError(f"cannot read inference log file {file}: {exc.__class__.__name__}: {exc}") from None
    missing = [column for column in inference_log.log_columns(dataset) if column not in schema.names]
    if missing:
        raise ChurnError(
            f"partition {inference_log.DATE}={day.isoformat()} of {root}: the inference log {root} lacks columns "
            f"{missing}: it was written for another dataset contract. A log written by an older model version "
            "with other columns cannot be monitored against this contract: move those partitions to another log root"
        )
    text = [*dataset.categorical, MODEL_VERSION, dataset.label_column]
    columns = [*([dataset.id_column] if ids else []), *dataset.numeric, *text, PROBABILITY, PREDICTION, SCORED_AT]
    dictionary = [c for c in text if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)]
    try:
        return pq.read_table(file, columns=columns, read_dictionary=dictionary)
    except Exception as exc:
        raise ChurnError(f"cannot read inference log file {file}: {exc.__class__.__name__}: {exc}") from None


def _compact_table(
    table: pa.Table | None, dataset: Dataset, labels: Labels, now: pd.Timestamp, positions: np.ndarray | None
) -> tuple[Columns, int]:
    """Only what the monitor aggregates, in small dtypes (see `compact`), as columns."""
    if table is None:
        empty = pd.DataFrame({column: pd.Series(dtype=object) for column in inference_log.log_columns(dataset)})
        return to_columns(compact(empty, dataset, labels)), 0
    stamps = utc_times(table.column(SCORED_AT))
    future = (stamps > now).to_numpy()
    future_rows = int(future.sum())
    if future_rows:
        import pyarrow as pa

        table = table.filter(pa.array(~future))
        stamps = stamps[~future].reset_index(drop=True)
        positions = None if positions is None else positions[~future]
    out: Columns = {}
    for column in dataset.numeric:
        out[column] = _floats(table.column(column))
    for column in [*dataset.categorical, MODEL_VERSION]:
        out[column] = _categorical(table.column(column))
    out[PROBABILITY] = _floats(table.column(PROBABILITY))
    prediction = table.column(PREDICTION)
    if prediction.null_count:
        raise ChurnError(f"the inference log holds {prediction.null_count} rows without a {PREDICTION}: it is damaged")
    out[PREDICTION] = prediction.to_numpy().astype("int64")
    out[SCORED_AT] = stamps.dt.tz_localize(None).to_numpy("datetime64[ns]")
    logged = label_values(table.column(dataset.label_column), dataset)
    if len(labels):
        ids = None if positions is not None else table.column(dataset.id_column)
        attached = labels.lookup(ids, positions=positions)
        logged = np.where(np.isnan(attached), logged, attached)
    out[LABEL] = logged
    return out, future_rows


def utc_times(values: pa.ChunkedArray) -> pd.Series:
    """Timestamps as datetime64[ns, UTC]; naive ones are taken as UTC (as `read_log` takes them).
    Arrow timestamps are converted as integers: pandas' own parser would look at every value."""
    import pyarrow as pa

    if pa.types.is_timestamp(values.type):
        import pyarrow.compute as pc

        integers = values.cast(pa.timestamp("ns", tz=values.type.tz)).cast(pa.int64())
        ns = pc.fill_null(integers, np.iinfo("int64").min).to_numpy()  # the smallest int64 is NaT
        return pd.Series(pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC"))
    return pd.Series(pd.to_datetime(values.to_pandas(), utc=True).astype(_TIMESTAMP)).reset_index(drop=True)


def _floats(values: pa.ChunkedArray) -> np.ndarray:
    import pyarrow as pa

    floats: np.ndarray = values.cast(pa.float64()).to_numpy()  # nulls become NaN
    return floats


def _categorical(values: pa.ChunkedArray) -> pd.Categorical:
    """Levels as text, sorted, only those present; a null is the level "None" (`str(None)`,
    what the log's reader makes of it): what `pd.Categorical(read_log(...)[column])` holds."""
    import pyarrow as pa

    if not (pa.types.is_dictionary(values.type) and (
        pa.types.is_string(values.type.value_type) or pa.types.is_large_string(values.type.value_type)
    )):
        return pd.Categorical(values.to_pandas().astype(str).to_numpy())
    values = values.unify_dictionaries()  # chunks (row groups) may each have their own
    levels = np.asarray(values.chunk(0).dictionary.to_pylist() if values.num_chunks else [], dtype=object)
    codes = np.concatenate([
        chunk.indices.fill_null(-1).to_numpy().astype("int64") for chunk in values.chunks
    ]) if values.num_chunks else np.zeros(0, dtype="int64")
    if values.null_count:
        where = np.flatnonzero(levels == "None")
        if not len(where):
            levels = np.append(levels, "None")
        codes[codes < 0] = where[0] if len(where) else len(levels) - 1
    used = np.bincount(codes, minlength=len(levels)) > 0
    kept = sorted(levels[used])
    recode = np.full(len(levels), -1, dtype="int64")
    recode[used] = np.searchsorted(np.asarray(kept, dtype=object), levels[used])
    return pd.Categorical.from_codes(recode[codes], categories=kept)


def label_values(values: pa.ChunkedArray, dataset: Dataset) -> np.ndarray:
    """The label logged with the request as 1.0 / 0.0 / NaN (`baseline.encode`), decided once
    per distinct value."""
    import pyarrow as pa

    if pa.types.is_dictionary(values.type):
        series = values.to_pandas()
        by_level = encode(pd.Series(series.cat.categories), dataset)
        codes = series.cat.codes.to_numpy()
        out = np.full(len(codes), np.nan)
        out[codes >= 0] = by_level[codes[codes >= 0]]
        return out
    if pa.types.is_null(values.type):
        return np.full(len(values), np.nan)
    return encode(values.to_pandas(), dataset)


def compact(frame: pd.DataFrame, dataset: Dataset, labels: Labels) -> pd.DataFrame:
    """Only what the monitor aggregates, in small dtypes, from rows as `read_log` gives them."""
    out = pd.DataFrame(index=range(len(frame)))
    for column in dataset.numeric:
        out[column] = frame[column].to_numpy("float64")
    for column in [*dataset.categorical, MODEL_VERSION]:
        out[column] = pd.Categorical(frame[column].to_numpy())
    out[PROBABILITY] = frame[PROBABILITY].to_numpy("float64")
    out[PREDICTION] = frame[PREDICTION].to_numpy("int64")
    out[SCORED_AT] = pd.to_datetime(frame[SCORED_AT], utc=True).astype(_TIMESTAMP).reset_index(drop=True)
    logged = encode(frame[dataset.label_column], dataset)
    attached = labels.lookup(frame[dataset.id_column])
    logged = np.where(np.isnan(attached), logged, attached)
    out[LABEL] = logged
    return out


Columns = dict[str, Any]  # column name -> 1-D numpy array, or pd.Categorical for categories


def to_columns(frame: pd.DataFrame) -> Columns:
    """A compact frame as one array per column (times as datetime64[ns], UTC): windows are
    concatenated and sliced as arrays, since pandas re-blocks and copies every column of a
    frame on each concatenation and on many selections."""
    out: Columns = {}
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            out[column] = values.array
        elif isinstance(values.dtype, pd.DatetimeTZDtype):
            out[column] = values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]")
        else:
            out[column] = values.to_numpy()
    return out


def concat_columns(parts: list[Columns]) -> Columns:
    """Concatenate, column by column; categories are recoded to the sorted union of the levels."""
    if len(parts) == 1:
        return parts[0]
    out: Columns = {}
    for column, first in parts[0].items():
        if isinstance(first, pd.Categorical):
            index = pd.Index(sorted(set().union(*(part[column].categories for part in parts))))
            codes = []
            for part in parts:
                recode = np.append(index.get_indexer(part[column].categories), -1)  # code -1 (null) stays -1
                codes.append(recode[part[column].codes])
            out[column] = pd.Categorical.from_codes(np.concatenate(codes), categories=index)
        else:
            out[column] = np.concatenate([part[column] for part in parts])
    return out


def select(columns: Columns, rows: np.ndarray) -> Columns:
    """The rows where `rows` (a boolean mask) is true."""
    return {column: values[rows] for column, values in columns.items()}


def to_frame(columns: Columns) -> pd.DataFrame:
    out = pd.DataFrame(columns)
    for column, values in columns.items():
        if isinstance(values, np.ndarray) and values.dtype.kind == "M":
            out[column] = out[column].dt.tz_localize("UTC")
    return out


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate compact frames, keeping categoricals categorical (union of their levels)."""
    if len(frames) == 1:
        return frames[0]
    return to_frame(concat_columns([to_columns(frame) for frame in frames]))
