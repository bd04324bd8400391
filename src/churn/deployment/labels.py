"""Late labels (`churn label --input FILE`): outcomes attached to logged predictions.

The file holds the id column, the label in the dataset's own encoding (`Yes`/`No` for
Telco) and optionally `labelled_at` (ISO 8601; no offset means UTC; default: the time of
the command). Every row is accounted for:

- malformed rows (no id, a label outside the contract, an unreadable, missing or future
  `labelled_at`) are rejected with their reasons;
- the same id twice in the file: the row with the latest `labelled_at` wins (on a tie, the
  later row), the others are counted as superseded;
- ids with no logged prediction are not attached (a label can only be matched with a
  prediction the log holds) and are listed in the rejected file as unknown, so a label that
  came too early can be sent again after its batch was scored;
- the rest are appended to the inference log's `labels/` as one new file.

Rejected and unknown rows go to `<input stem>.rejected.csv` beside the input, with a
`rejection_reasons` column, as `churn predict` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from churn.config import Params
from churn.deployment import inference_log
from churn.errors import ChurnError
from churn.io import write_csv

REASONS_COLUMN = "rejection_reasons"
REJECTED_SUFFIX = ".rejected.csv"  # as `churn predict` names its rejected rows


@dataclass(frozen=True)
class LabelResult:
    rows: int  # data rows in the file
    matched: int  # labels attached to logged predictions (one per id)
    unknown: int  # ids with no logged prediction: not attached
    rejected: int  # malformed rows: not attached
    superseded: int  # rows replaced by a later label for the same id in the file
    rejected_path: Path | None
    labels_file: Path | str | None  # a URL when the log is in an object store


def read_label_file(path: Path) -> pd.DataFrame:
    """A .csv (every cell as text, blanks as missing) or .parquet file of labels.

    Not `churn.deployment.batch.read_records`: that module loads MLflow (seconds), which
    attaching labels never needs.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ChurnError(f"cannot read labels from {path}: pass a .csv or .parquet file")
    if not path.is_file():
        raise ChurnError(f"labels file {path} not found: pass the path of an existing {suffix} file")
    if path.stat().st_size == 0:
        raise ChurnError(f"labels file {path} is empty (0 bytes): pass a file with a header and labels")
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        return pd.read_parquet(path, engine="pyarrow")
    except pd.errors.EmptyDataError:
        raise ChurnError(f"labels file {path} has no header and no rows") from None
    except Exception as exc:  # ParserError, UnicodeDecodeError, ArrowInvalid: name the file
        raise ChurnError(f"labels file {path} is not readable ({exc.__class__.__name__}: {exc})") from None


def rejected_path_for(input_path: Path) -> Path:
    return input_path.with_name(input_path.stem + REJECTED_SUFFIX)


def _row_reasons(frame: pd.DataFrame, params: Params, now: datetime) -> tuple[list[list[str]], pd.Series]:
    """Per row: the reasons it is malformed (empty when fine), and its labelled_at."""
    dataset = params.dataset
    id_column, label_column = dataset.id_column, dataset.label_column
    reasons: list[list[str]] = [[] for _ in range(len(frame))]
    ids = frame[id_column].astype(object)
    for index, value in enumerate(ids):
        if pd.isna(value) or not str(value).strip():
            reasons[index].append(f"{id_column}: missing")
    allowed = [dataset.positive_label, dataset.negative_label]
    for index, value in enumerate(frame[label_column].astype(object)):
        if pd.isna(value):
            reasons[index].append(f"{label_column}: missing")
        elif str(value) not in allowed:
            reasons[index].append(f"{label_column}: unknown value {str(value)!r} (allowed: {', '.join(allowed)})")
    if inference_log.LABELLED_AT in frame.columns:
        raw = frame[inference_log.LABELLED_AT].astype(object)
        times = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
        for index, (value, parsed) in enumerate(zip(raw, times, strict=True)):
            if pd.isna(value) or not str(value).strip():
                reasons[index].append(f"{inference_log.LABELLED_AT}: missing (leave the column out to use now)")
            elif pd.isna(parsed):
                reasons[index].append(f"{inference_log.LABELLED_AT}: not an ISO 8601 time {value!r}")
            elif parsed > now:
                reasons[index].append(f"{inference_log.LABELLED_AT}: in the future {value!r}")
    else:
        times = pd.Series(pd.Timestamp(now), index=frame.index)
    return reasons, times


def label(params: Params, input_path: str | Path, *, log_root: str | Path | None = None,
          now: datetime | None = None) -> LabelResult:
    """Attach the labels in `input_path` to the inference log; see the module docstring."""
    dataset = params.dataset
    id_column, label_column = dataset.id_column, dataset.label_column
    now = datetime.now(UTC) if now is None else now.astimezone(UTC)
    log_root = params.paths.inference_log if log_root is None else log_root
    input_path = Path(input_path)

    frame = read_label_file(input_path).reset_index(drop=True)
    missing = [column for column in (id_column, label_column) if column not in frame.columns]
    if missing:
        raise ChurnError(
            f"{input_path} lacks columns {missing}: a labels file has {id_column}, {label_column} "
            f"and optionally {inference_log.LABELLED_AT}; nothing was attached"
        )
    if len(frame) == 0:
        raise ChurnError(f"{input_path} has a header but no labels: nothing was attached")
    if not inference_log.exists(log_root):
        raise ChurnError(
            f"the inference log {log_root} does not exist: score batches first (`churn predict`), "
            "or point paths.inference_log at the team's log"
        )

    reasons, times = _row_reasons(frame, params, now)
    ok = pd.Series([not r for r in reasons], index=frame.index)
    good = pd.DataFrame({
        id_column: frame.loc[ok, id_column].astype(str),
        label_column: frame.loc[ok, label_column].astype(str),
        inference_log.LABELLED_AT: times[ok],
    })
    # The latest labelled_at per id wins; a stable sort keeps file order within ties.
    latest = good.sort_values(inference_log.LABELLED_AT, kind="stable").drop_duplicates(id_column, keep="last")
    superseded = len(good) - len(latest)
    known = inference_log.logged_ids(log_root, dataset=dataset)
    is_known = latest[id_column].isin(known)
    attach, unknown = latest[is_known].sort_index(), latest[~is_known].sort_index()

    for index in unknown.index:
        reasons[index].append(f"{id_column}: no logged prediction has this id (score it first, then label it)")
    rejected_index = [index for index, r in enumerate(reasons) if r]
    rejected_file = rejected_path_for(input_path)
    if rejected_index:
        rejected = frame.loc[rejected_index].copy()
        rejected[REASONS_COLUMN] = ["; ".join(reasons[index]) for index in rejected_index]
        write_csv(rejected_file, rejected)
    else:
        # A rejected file from an earlier run of the same input would describe other data.
        rejected_file.unlink(missing_ok=True)

    _, labels_file = inference_log.write_labels(log_root, attach.reset_index(drop=True), dataset=dataset)
    return LabelResult(
        rows=len(frame),
        matched=len(attach),
        unknown=len(unknown),
        rejected=len(rejected_index) - len(unknown),
        superseded=superseded,
        rejected_path=rejected_file if rejected_index else None,
        labels_file=labels_file,
    )

