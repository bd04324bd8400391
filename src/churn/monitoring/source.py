"""What the monitor reads: the inference log's files, one partition at a time, labels joined.

Rows are read through `inference_log.read_log` (one date partition per call, so memory
stays bounded by a window, not by the log) and kept compact: categories as pandas
categoricals, the label as 1.0/0.0/NaN in `aggregate.LABEL`. The latest attached label
per id wins over a label that came with the request, as in `read_log(with_labels=True)`;
labels are read once per run and joined here, not once per partition.

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

import numpy as np
import pandas as pd

from churn.config import Dataset
from churn.deployment import inference_log
from churn.errors import ChurnError
from churn.monitoring.aggregate import LABEL
from churn.monitoring.baseline import encode
from churn.servable.scoring import PREDICTION, PROBABILITY

_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
SCORED_AT = inference_log.SCORED_AT
MODEL_VERSION = inference_log.MODEL_VERSION


def id_keys(ids: object) -> np.ndarray:
    """64-bit hashes of ids (as text): the label lookup's keys.

    Millions of ids as Python strings would cost gigabytes; their hashes cost 8 bytes each.
    Two different ids share a hash with probability 2^-64 per pair: across ten million
    logged rows and ten million labels, about one chance in two hundred thousand that a
    single row is given another id's label.
    """
    text = pd.Series(np.asarray(ids, dtype=object)).astype(str).to_numpy(dtype=object)
    keys: np.ndarray = pd.util.hash_array(text, categorize=False)
    return keys


@dataclass(frozen=True)
class Labels:
    keys: pd.Index  # id_keys of the labelled ids, one per id
    values: np.ndarray  # the latest label of each: 1.0 / 0.0
    duplicates: int  # labels superseded by a later one for the same id
    fingerprint: str  # changes whenever a label file is added

    def __len__(self) -> int:
        return len(self.values)

    def positions(self, ids: object) -> np.ndarray:
        """Index into `values` of each id's label; -1 when it has none. The hash table of
        `keys` is built on first use and reused."""
        count = len(ids)  # type: ignore[arg-type]
        if not len(self.values) or not count:
            return np.full(count, -1, dtype="int64")
        found: np.ndarray = self.keys.get_indexer(id_keys(ids))
        return found

    def lookup(self, ids: object) -> np.ndarray:
        """The latest label of each id (NaN: none)."""
        position = self.positions(ids)
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
        files = sorted((file.name, file.stat().st_size) for file in directory.glob("part-*.parquet"))
        if files:
            out[day] = files
    return out


def read_labels(root: Path, dataset: Dataset) -> Labels:
    every = inference_log.read_labels(root, dataset=dataset, latest=False)
    listing = partition_files(root / inference_log.LABELS_DIR)
    fingerprint = _digest(sorted((str(day), name, size) for day, files in listing.items() for name, size in files))
    if len(every) == 0:
        return Labels(pd.Index(np.array([], dtype="uint64")), np.array([]), 0, fingerprint)
    # The same rule as read_labels(latest=True): the latest labelled_at wins, file order on ties.
    latest = every.sort_values(inference_log.LABELLED_AT, kind="stable").drop_duplicates(dataset.id_column, keep="last")
    superseded = len(every) - len(latest)
    del every  # millions of rows at scale: keep only hashes and values
    keys = pd.Index(id_keys(latest[dataset.id_column]))
    return Labels(keys, encode(latest[dataset.label_column], dataset), superseded, fingerprint)


def label_digests(root: Path, days: list[date], dataset: Dataset, labels: Labels) -> tuple[dict[date, str], np.ndarray]:
    """Per partition, a digest of the attached labels matching its ids; and which labels
    matched any of them (bool per label). Reads the id column only, with pyarrow."""
    import pyarrow.parquet as pq

    matched_labels = np.zeros(len(labels), dtype=bool)
    digests: dict[date, str] = {}
    for day in days:
        digest = hashlib.sha256()
        for file in sorted((root / f"{inference_log.DATE}={day.isoformat()}").glob("part-*.parquet")):
            try:
                ids = pq.read_table(file, columns=[dataset.id_column]).column(0).to_numpy(zero_copy_only=False)
            except Exception as exc:
                raise ChurnError(f"cannot read inference log file {file}: {exc.__class__.__name__}: {exc}") from None
            position = labels.positions(ids)
            hit = position[position >= 0]
            matched_labels[hit] = True
            per_row = np.full(len(position), -1.0)
            per_row[position >= 0] = labels.values[hit]
            digest.update(per_row.tobytes())
        digests[day] = digest.hexdigest()[:16]
    return digests, matched_labels


def read_partition(root: Path, day: date, dataset: Dataset, labels: Labels, now: pd.Timestamp) -> Partition:
    try:
        frame = inference_log.read_log(root, start=day, end=day, dataset=dataset)
    except ChurnError as exc:
        raise ChurnError(
            f"partition {inference_log.DATE}={day.isoformat()} of {root}: {exc}. A log written by an older "
            "model version with other columns cannot be monitored against this contract: move those "
            "partitions to another log root"
        ) from None
    future = frame[SCORED_AT] > now
    frame = frame.loc[~future]
    return Partition(compact(frame, dataset, labels), int(future.sum()))


def compact(frame: pd.DataFrame, dataset: Dataset, labels: Labels) -> pd.DataFrame:
    """Only what the monitor aggregates, in small dtypes."""
    out = pd.DataFrame(index=range(len(frame)))
    for column in dataset.numeric:
        out[column] = frame[column].to_numpy("float64")
    for column in [*dataset.categorical, MODEL_VERSION]:
        out[column] = pd.Categorical(frame[column].to_numpy())
    out[PROBABILITY] = frame[PROBABILITY].to_numpy("float64")
    out[PREDICTION] = frame[PREDICTION].to_numpy("int64")
    out[SCORED_AT] = frame[SCORED_AT].reset_index(drop=True)  # stays datetime64[ns, UTC]
    logged = encode(frame[dataset.label_column], dataset)
    attached = labels.lookup(frame[dataset.id_column])
    logged = np.where(np.isnan(attached), logged, attached)
    out[LABEL] = logged
    return out


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate compact frames, keeping categoricals categorical (union of their levels)."""
    if len(frames) == 1:
        return frames[0]
    out = pd.concat(frames, ignore_index=True)
    for column in frames[0].columns:
        if isinstance(frames[0][column].dtype, pd.CategoricalDtype) and not isinstance(
            out[column].dtype, pd.CategoricalDtype
        ):
            out[column] = pd.api.types.union_categoricals([f[column] for f in frames])
    return out


def _digest(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]
