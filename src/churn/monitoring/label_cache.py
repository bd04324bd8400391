"""The latest attached label per id, hashed, kept in the monitor's state directory.

Labels arrive as append-only files under the inference log's `labels/` (see
`inference_log.write_labels`). Reading all of them on every run, as text, is what made the
monitor slow and large at millions of labels; here each run reads only the label files
added since the cache was written and merges them into it.

The rule is the one `inference_log.read_labels(latest=True)` applies: per id, the label with
the latest `labelled_at` wins; among equal times, the one read last (files in date and
name order, rows in file order). The cache keeps, per id, the winner with the position it
won by (its time, its file, its row), so merging new files gives the same winner as reading
everything again: the maximum of that position is the same taken in one go or in two.

The cache is thrown away, and every label file read again, when any file it was made from
has gone or changed (size or modification time), when the dataset's id or label encoding
changed, or when it cannot be read. It is one Parquet file with its listing in the file's
metadata, written atomically: a cache and its listing can never disagree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn.config import Dataset
from churn.deployment import inference_log
from churn.errors import ChurnError
from churn.io import atomic_path
from churn.monitoring.source import Labels, id_keys, label_values, partition_stats, utc_times

CACHE_FILE = "labels.parquet"
FORMAT = 1
_META = b"churn.monitor.labels"
_LATEST = np.iinfo("int64").max  # a missing labelled_at sorts last, as pandas sorts NaT


@dataclass(frozen=True)
class _Winners:
    """One row per id: the winning label and the position it won by."""

    key: np.ndarray  # uint64 id_keys
    value: np.ndarray  # float64: 1.0 / 0.0 / NaN (a label the dataset does not know)
    at: np.ndarray  # int64 ns since the epoch
    file: np.ndarray  # int64 index into the sorted listing
    row: np.ndarray  # int64 row in its file

    def __len__(self) -> int:
        return len(self.key)


def listing(root: Path) -> list[tuple[str, str, int, int]]:
    """Every label file (day, name, size, mtime_ns), in the order the labels are read."""
    return [
        (day.isoformat(), name, size, mtime)
        for day, files in partition_stats(root / inference_log.LABELS_DIR).items()
        for name, size, mtime in files
    ]


def fingerprint(files: list[tuple[str, str, int, int]]) -> str:
    return hashlib.sha256(repr(files).encode()).hexdigest()[:16]


def load(root: Path, dataset: Dataset, cache_dir: Path | None) -> Labels:
    """The latest label per id (see the module docstring); the cache is used and updated
    when `cache_dir` is given."""
    files = listing(root)
    identity = _identity(dataset)
    cached = _read_cache(cache_dir, identity) if cache_dir is not None else None
    old: _Winners | None = None
    total = 0
    new_files = list(range(len(files)))
    if cached is not None:
        old_files, winners, old_total = cached
        position = {(day, name): index for index, (day, name, _, _) in enumerate(files)}
        current = {(day, name): (size, mtime) for day, name, size, mtime in files}
        unchanged = all(current.get((day, name)) == (size, mtime) for day, name, size, mtime in old_files)
        if unchanged:
            # Old files keep their order among themselves; new ones may fall in between.
            remap = np.array([position[(day, name)] for day, name, _, _ in old_files], dtype="int64")
            old = _Winners(winners.key, winners.value, winners.at,
                           remap[winners.file] if len(winners) else winners.file, winners.row)
            total = old_total
            known = {(day, name) for day, name, _, _ in old_files}
            new_files = [index for index, (day, name, _, _) in enumerate(files) if (day, name) not in known]
    parts = [old] if old is not None else []
    for index in new_files:
        part = _read_file(root, files[index], index, dataset)
        total += len(part)
        parts.append(part)
    # Nothing new: the cached winners stand as they are (no sort of millions of rows).
    winners = old if old is not None and len(parts) == 1 else _latest(parts)
    if cache_dir is not None and (cached is None or new_files or old is None):
        _write_cache(cache_dir, identity, files, winners, total)
    return Labels(pd.Index(winners.key), winners.value, total - len(winners), fingerprint(files))


def _identity(dataset: Dataset) -> str:
    """What the cached values depend on besides the files: the id column and the encoding."""
    return json.dumps([FORMAT, dataset.id_column, dataset.label_column, dataset.positive_label, dataset.negative_label])


def _read_file(root: Path, entry: tuple[str, str, int, int], index: int, dataset: Dataset) -> _Winners:
    import pyarrow as pa
    import pyarrow.parquet as pq

    day, name, _, _ = entry
    path = root / inference_log.LABELS_DIR / f"{inference_log.DATE}={day}" / name
    columns = [dataset.id_column, dataset.label_column, inference_log.LABELLED_AT]
    try:
        schema = pq.read_schema(path)
        text = [c for c in columns[1:2] if c in schema.names and pa.types.is_string(schema.field(c).type)]
        table = pq.read_table(path, columns=columns, read_dictionary=text)
    except Exception as exc:  # a foreign or damaged file: name it instead of a pyarrow trace
        raise ChurnError(
            f"cannot read label file {path} (it needs columns {columns}): {exc.__class__.__name__}: {exc}"
        ) from None
    rows = table.num_rows
    at = utc_times(table.column(inference_log.LABELLED_AT))
    at_ns = at.dt.tz_localize(None).to_numpy("datetime64[ns]").view("int64").copy()
    at_ns[at.isna().to_numpy()] = _LATEST
    return _Winners(
        key=id_keys(table.column(dataset.id_column)),
        value=label_values(table.column(dataset.label_column), dataset),
        at=at_ns, file=np.full(rows, index, dtype="int64"), row=np.arange(rows, dtype="int64"),
    )


def _latest(parts: list[_Winners]) -> _Winners:
    """Per key, the row with the greatest (at, file, row); sorted by key, so that looking
    ids up is a binary search (`Labels.positions`) rather than a hash table of every label."""
    if not parts:
        empty = np.zeros(0, dtype="int64")
        return _Winners(np.zeros(0, dtype="uint64"), np.zeros(0), empty, empty, empty)
    key, value, at, file, row = (
        np.concatenate([getattr(p, name) for p in parts]) for name in ("key", "value", "at", "file", "row")
    )
    next_file, next_row = np.diff(file), np.diff(row)
    if bool(np.all((next_file > 0) | ((next_file == 0) & (next_row > 0)))):
        order = np.argsort(at, kind="stable")  # rows already in (file, row) order: one key to sort
    else:
        order = np.lexsort((row, file, at))
    # Group equal keys, keeping that order within each group: its last row wins.
    by_key = order[np.argsort(key[order], kind="stable")]
    ordered = key[by_key]
    chosen = by_key[np.concatenate([ordered[1:] != ordered[:-1], [True]])]
    return _Winners(key[chosen], value[chosen], at[chosen], file[chosen], row[chosen])


def _read_cache(directory: Path, identity: str) -> tuple[list[tuple[str, str, int, int]], _Winners, int] | None:
    import pyarrow.parquet as pq

    path = directory / CACHE_FILE
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
        meta: dict[str, Any] = json.loads((table.schema.metadata or {})[_META])
        if meta.get("identity") != identity:
            return None
        files = [(str(day), str(name), int(size), int(mtime)) for day, name, size, mtime in meta["files"]]
        winners = _Winners(*(table.column(name).to_numpy() for name in ("key", "value", "at", "file", "row")))
        return files, winners, int(meta["total"])
    except Exception:  # unreadable or from another version: read every label file again
        return None


def _write_cache(
    directory: Path, identity: str, files: list[tuple[str, str, int, int]], winners: _Winners, total: int
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({name: getattr(winners, name) for name in ("key", "value", "at", "file", "row")})
    meta = {"identity": identity, "files": [list(f) for f in files], "total": total}
    table = table.replace_schema_metadata({_META: json.dumps(meta).encode()})
    with atomic_path(directory / CACHE_FILE) as tmp:
        pq.write_table(table, tmp)
