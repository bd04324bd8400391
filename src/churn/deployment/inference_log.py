"""The inference log: every scored row, append-only Parquet partitioned by the UTC date.

Layout under the log's root::

    date=2026-11-26/part-20261126T101502123456Z-<uuid4 hex>.parquet   scored rows
    labels/date=2026-12-20/part-...-<uuid4 hex>.parquet               labels attached later

Each `append` (and each `attach_labels`) writes one new file atomically and never touches
an existing one, so a crash leaves either the whole batch or nothing, and readers never
see a half-written file (temporary files start with a dot and are not matched). The root
is a local folder or an object-store URL (`s3://bucket/prefix`, see `churn.storage`), where
a file is one PUT that becomes visible only when complete; a team's predictions then meet
in one place.

A scored row holds the request key, the cleaned features as the model saw them, the
probability and decision, which model version produced them and when, and the label
column: the label when the request carried one, else null. Labels that arrive later are
written as their own partition set keyed by the id; `read_log(..., with_labels=True)`
joins the latest one per id, so outcomes can be matched with predictions without
rewriting the log.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from churn.config import Dataset, as_location
from churn.core.clean import columns_renumbered
from churn.errors import ChurnError
from churn.servable.scoring import PREDICTION, PROBABILITY
from churn.storage import Folder, read_parquet
from churn.timestamps import aware_utc

MODEL_VERSION = "model_version"
MODEL_URI = "model_uri"
SCORED_AT = "scored_at"
LABELLED_AT = "labelled_at"
DATE = "date"
LABELS_DIR = "labels"

_PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_TIMESTAMP = "datetime64[ns, UTC]"
# The columns that do not depend on the dataset, in the order they are written.
_SCORE_COLUMNS = [PROBABILITY, PREDICTION, MODEL_VERSION, MODEL_URI, SCORED_AT]


def log_columns(dataset: Dataset) -> list[str]:
    """The columns of a log file, in order."""
    return [*dataset.key_columns, *dataset.feature_columns, *_SCORE_COLUMNS, dataset.label_column]


def _text(values: pd.Series) -> pd.Series:
    """Nullable text as pandas' string dtype: written as a Parquet string even when all null."""
    # `astype(str)` calls `str` on each value in one C pass (a lambda per value was seconds).
    text = values.astype(object).astype(str).astype(object)
    text[values.isna().to_numpy()] = None
    return text.astype("string")


def _folder(root: str | Path) -> Folder:
    return Folder(as_location(root))


def exists(root: str | Path) -> bool:
    """Whether the log has been started (a folder, or an object-store prefix holding files)."""
    return _folder(root).is_dir()


def _new_name(directory: Folder, moment: datetime) -> str:
    stamp = moment.strftime("%Y%m%dT%H%M%S%fZ")
    while True:
        name = f"part-{stamp}-{uuid.uuid4().hex}.parquet"
        if not directory.exists(name):
            return name


def _partition_dir(root: Folder, moment: datetime) -> Folder:
    return root.child(f"{DATE}={moment.date().isoformat()}")


def append(
    root: str | Path,
    scored: pd.DataFrame,
    *,
    dataset: Dataset,
    model_version: str,
    model_uri: str,
    scored_at: datetime,
) -> Path | str | None:
    """Write `scored` (ScoredBatch.scored) as one new file; None when there is nothing to log.

    The file's location: a Path under a local root, a URL under an object-store root.
    """
    scored_at = aware_utc(scored_at, "scored_at")
    if len(scored) == 0:
        return None
    rows = log_rows(scored, dataset=dataset, model_version=model_version, model_uri=model_uri, scored_at=scored_at)
    directory, name = new_log_file(root, scored_at)
    return directory.write_parquet(name, rows)


def new_log_file(root: str | Path, scored_at: datetime) -> tuple[Folder, str]:
    """The partition folder and the name of a new, not yet existing log file for rows scored
    at `scored_at` (a streaming writer finishes the file locally, then `Folder.put_file`)."""
    scored_at = aware_utc(scored_at, "scored_at")
    directory = _partition_dir(_folder(root), scored_at)
    return directory, _new_name(directory, scored_at)


def log_rows(
    scored: pd.DataFrame,
    *,
    dataset: Dataset,
    model_version: str,
    model_uri: str,
    scored_at: datetime,
) -> pd.DataFrame:
    """The log's rows for `scored`, typed and in the log's column order (what `append` writes)."""
    scored_at = aware_utc(scored_at, "scored_at")
    needed = [*dataset.key_columns, *dataset.feature_columns, PROBABILITY, PREDICTION]
    missing = [column for column in needed if column not in scored.columns]
    if missing:
        raise ChurnError(
            f"cannot log scored rows without columns {missing}: pass ScoredBatch.scored from scoring"
        )
    # A new frame; each step below replaces a column.
    rows = columns_renumbered(scored, [*dataset.key_columns, *dataset.feature_columns])
    for column in dataset.key_columns:
        if column == dataset.timestamp_column:
            rows[column] = pd.to_datetime(rows[column])
        else:
            rows[column] = rows[column].astype(str)
    for column in dataset.numeric:
        rows[column] = rows[column].astype("float64")
    for column in dataset.categorical:
        rows[column] = rows[column].astype(str)
    rows[PROBABILITY] = scored[PROBABILITY].to_numpy(dtype="float64")
    rows[PREDICTION] = scored[PREDICTION].to_numpy(dtype="int64")
    rows[MODEL_VERSION] = str(model_version)
    rows[MODEL_URI] = str(model_uri)
    rows[SCORED_AT] = pd.Series(pd.Timestamp(scored_at), index=rows.index).astype(_TIMESTAMP)
    if dataset.label_column in scored.columns:
        rows[dataset.label_column] = _text(scored[dataset.label_column].reset_index(drop=True))
    else:
        rows[dataset.label_column] = pd.Series(pd.NA, index=rows.index, dtype="string")
    # The columns were added in the log's order; reorder (a copy) only if that ever changes.
    return rows if list(rows.columns) == log_columns(dataset) else rows[log_columns(dataset)]


def _partitions(root: Folder, start: date | None, end: date | None) -> list[tuple[date, Folder]]:
    if start is not None and end is not None and start > end:
        raise ChurnError(f"the date range is empty: start {start} is after end {end}")
    found = []
    for directory in root.subfolders():
        if not directory.name.startswith(f"{DATE}="):
            continue
        match = _PARTITION.match(directory.name)
        try:
            day = date.fromisoformat(match.group(1)) if match else None
        except ValueError:
            day = None
        if day is None:
            raise ChurnError(
                f"{directory} is not a date partition (expected {DATE}=YYYY-MM-DD): "
                "move it out of the inference log"
            )
        if (start is None or day >= start) and (end is None or day <= end):
            found.append((day, directory))
    return found


def _read_files(partitions: list[tuple[date, Folder]]) -> list[pd.DataFrame]:
    frames = []
    for day, directory in partitions:
        for file in directory.files("part-", ".parquet"):
            try:
                frame = read_parquet(file)
            except Exception as exc:  # a foreign or damaged file: name it instead of a pyarrow trace
                raise ChurnError(f"cannot read inference log file {file}: {exc.__class__.__name__}: {exc}") from None
            frames.append(frame.assign(**{DATE: day}))
    return frames


def _typed(frame: pd.DataFrame, dataset: Dataset | None) -> pd.DataFrame:
    """One dtype per column whatever the files held: text object, times UTC, dates as date."""
    out = frame.copy()
    text_columns = [MODEL_VERSION, MODEL_URI]
    if dataset is not None:
        text_columns += [dataset.id_column, *dataset.categorical]
        for column in dataset.numeric:
            out[column] = out[column].astype("float64")
        if dataset.label_column in out.columns:
            out[dataset.label_column] = out[dataset.label_column].astype(object).where(
                out[dataset.label_column].notna(), None
            )
        if dataset.timestamp_column and dataset.timestamp_column in out.columns:
            out[dataset.timestamp_column] = pd.to_datetime(out[dataset.timestamp_column])
    for column in text_columns:
        if column in out.columns:
            out[column] = out[column].astype(str).astype(object)
    if PROBABILITY in out.columns:
        out[PROBABILITY] = out[PROBABILITY].astype("float64")
    if PREDICTION in out.columns:
        out[PREDICTION] = out[PREDICTION].astype("int64")
    for column in (SCORED_AT, LABELLED_AT):
        if column in out.columns:
            out[column] = pd.to_datetime(out[column], utc=True).astype(_TIMESTAMP)
    if DATE in out.columns:
        out[DATE] = out[DATE].astype(object)
    return out


def read_log(
    root: str | Path,
    start: date | None = None,
    end: date | None = None,
    *,
    dataset: Dataset | None = None,
    with_labels: bool = False,
) -> pd.DataFrame:
    """Every logged row (dates `start`..`end` inclusive, UTC) with its partition's `date`.

    With `dataset`, columns are put in the log's order and an empty log still has them all;
    without it an empty log has only the dataset-independent columns. `with_labels` (needs
    `dataset`) replaces the label with the latest label attached for each id, when there is
    one, and adds `labelled_at` (null where the label came with the request or is unknown).
    """
    if with_labels and dataset is None:
        raise ChurnError("read_log(with_labels=True) needs dataset= to know the id and label columns")
    folder = _folder(root)
    frames = _read_files(_partitions(folder, start, end))
    columns = [*(log_columns(dataset) if dataset else _SCORE_COLUMNS), DATE]
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        if dataset is not None:
            missing = [column for column in columns if column not in frame.columns]
            if missing:
                raise ChurnError(
                    f"the inference log {root} lacks columns {missing}: it was written for another "
                    "dataset contract; read it with that contract or use a new log root"
                )
            frame = frame[columns]
    else:
        frame = pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
        frame[PROBABILITY] = frame[PROBABILITY].astype("float64")
        frame[PREDICTION] = frame[PREDICTION].astype("int64")
        if dataset is not None:
            for column in dataset.numeric:
                frame[column] = frame[column].astype("float64")
    frame = _typed(frame, dataset)
    if with_labels and dataset is not None:  # with_labels without a dataset was refused above
        frame = _join_labels(frame, read_labels(root, dataset=dataset), dataset)
    return frame


# ------------------------------------------------------------------------------- labels


def attach_labels(
    root: str | Path,
    labels: pd.DataFrame,
    *,
    dataset: Dataset,
    labelled_at: datetime | None = None,
) -> int:
    """Write labels (see `write_labels`); the number of rows written."""
    return write_labels(root, labels, dataset=dataset, labelled_at=labelled_at)[0]


def write_labels(
    root: str | Path,
    labels: pd.DataFrame,
    *,
    dataset: Dataset,
    labelled_at: datetime | None = None,
) -> tuple[int, Path | str | None]:
    """Write labels (id + label column, raw text) as one new file under `labels/`; rows written.

    Each label's time is its `labelled_at` column when `labels` has one (timezone-aware, or
    naive = UTC), else the `labelled_at` argument, else now. The same id twice in one call
    keeps the label with the latest `labelled_at` (on a tie, the later row): the rows
    written are then fewer than given, and the caller can count the difference. The file
    goes to the date partition of the latest `labelled_at` it holds.

    Nothing already logged is changed: a later label for the same id simply wins when read.
    Returns the rows written and the new file (None when there was nothing to write).
    """
    labelled_at = aware_utc(labelled_at or datetime.now(UTC), "labelled_at")
    id_column, label_column = dataset.id_column, dataset.label_column
    missing = [column for column in (id_column, label_column) if column not in labels.columns]
    if missing:
        raise ChurnError(f"labels lack columns {missing}: pass a frame with {id_column} and {label_column}")
    if len(labels) == 0:
        return 0, None
    rows = labels[[id_column, label_column]].reset_index(drop=True)
    if rows[id_column].isna().any():
        raise ChurnError(f"{int(rows[id_column].isna().sum())} labels have no {id_column}: drop or fix them")
    rows[id_column] = rows[id_column].astype(str)
    allowed = {dataset.positive_label, dataset.negative_label}
    text = rows[label_column].astype(object).map(lambda v: None if pd.isna(v) else str(v))
    bad = text.isna() | ~text.isin(allowed)
    if bad.any():
        examples = ", ".join(dict.fromkeys(rows.loc[bad, label_column].map(repr)))
        raise ChurnError(
            f"{int(bad.sum())} labels are not {dataset.positive_label!r} or {dataset.negative_label!r} "
            f"(e.g. {examples[:200]}): fix them; nothing was written"
        )
    rows[label_column] = text.astype("string")
    if LABELLED_AT in labels.columns:
        try:
            times = pd.to_datetime(labels[LABELLED_AT].reset_index(drop=True), utc=True)
        except (ValueError, TypeError) as exc:
            raise ChurnError(f"labels have an unreadable {LABELLED_AT} ({exc}): nothing was written") from None
        if times.isna().any():
            raise ChurnError(f"{int(times.isna().sum())} labels have no {LABELLED_AT}: fill or drop them")
        rows[LABELLED_AT] = times.astype(_TIMESTAMP)
    else:
        rows[LABELLED_AT] = pd.Series(pd.Timestamp(labelled_at), index=rows.index).astype(_TIMESTAMP)
    # Future times are the caller's to refuse (`churn label` does), as for `append`.
    latest_time = rows[LABELLED_AT].max().to_pydatetime()
    # Latest wins within the call, as it does across calls when the labels are read.
    rows = rows.sort_values(LABELLED_AT, kind="stable").drop_duplicates(id_column, keep="last")
    rows = rows.sort_index().reset_index(drop=True)
    directory = _partition_dir(_folder(root).child(LABELS_DIR), latest_time)
    target = directory.write_parquet(_new_name(directory, latest_time), rows[[id_column, label_column, LABELLED_AT]])
    return len(rows), target


def logged_ids(root: str | Path, *, dataset: Dataset) -> set[str]:
    """Every id with a logged prediction (only the id column is read, so it stays cheap)."""
    ids: set[str] = set()
    for _day, directory in _partitions(_folder(root), None, None):
        for file in directory.files("part-", ".parquet"):
            try:
                column = read_parquet(file, columns=[dataset.id_column])
            except Exception as exc:
                raise ChurnError(
                    f"cannot read {dataset.id_column} from inference log file {file}: "
                    f"{exc.__class__.__name__}: {exc}"
                ) from None
            ids.update(column[dataset.id_column].astype(str))
    return ids


def read_labels(root: str | Path, *, dataset: Dataset, latest: bool = True) -> pd.DataFrame:
    """Attached labels; with `latest`, one row per id: the one with the latest `labelled_at`.

    Ties on `labelled_at` are broken by file name, so the answer is the same on every read.
    """
    id_column, label_column = dataset.id_column, dataset.label_column
    frames = [
        frame.drop(columns=DATE)
        for frame in _read_files(_partitions(_folder(root).child(LABELS_DIR), None, None))
    ]
    if not frames:
        empty = pd.DataFrame({id_column: pd.Series(dtype=object), label_column: pd.Series(dtype=object)})
        empty[LABELLED_AT] = pd.Series(dtype=_TIMESTAMP)
        return empty
    frame = pd.concat(frames, ignore_index=True)
    frame[id_column] = frame[id_column].astype(str).astype(object)
    frame[label_column] = frame[label_column].astype(object)
    frame[LABELLED_AT] = pd.to_datetime(frame[LABELLED_AT], utc=True).astype(_TIMESTAMP)
    if latest:
        # Files were read in date and name order; a stable sort keeps that order within ties.
        frame = frame.sort_values(LABELLED_AT, kind="stable").drop_duplicates(id_column, keep="last")
    return frame.reset_index(drop=True)


def _join_labels(log: pd.DataFrame, labels: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    id_column, label_column = dataset.id_column, dataset.label_column
    latest = labels.set_index(id_column)
    attached = log[id_column].map(latest[label_column])
    out = log.copy()
    out[label_column] = attached.where(attached.notna(), log[label_column])
    out[label_column] = out[label_column].astype(object).where(out[label_column].notna(), None)
    out[LABELLED_AT] = log[id_column].map(latest[LABELLED_AT]).astype(_TIMESTAMP)
    return out
