"""`churn refresh`: the next raw snapshot, built from labelled predictions in the inference log.

Rows come from two places:

1. **The log.** Every prediction scored in the window (`refresh.window_days` before --as-of,
   default now) that has a label, attached late (`churn label`) or carried by the request.
   A customer scored several times counts once: the latest scoring.
2. **The current snapshot**, within `refresh.horizon_days` of the window's start; a
   customer the log also holds is taken from the log (it is newer). A row's date is the
   dataset's timestamp column when it has one; otherwise the whole snapshot is dated by
   the `as_of` its `.dvc` meta records (a refreshed snapshot) or, when it records none
   (simulated or added by hand), taken as current at the window's start. `horizon_days: 0`
   keeps none of it.

**Back to the raw schema.** The log holds the features as the model saw them, after
cleaning, not the raw request. Cleaning is a many-to-one map (a structural level such as
"No internet service" becomes "No"; a blank TotalCharges becomes 0), so the raw text
cannot be recovered; but every cleaned value is itself a value the contract allows, and
cleaning it again gives the same features. So a log row is written back as its cleaned
values (integers without a decimal point, floats in their shortest exact form), and the
new snapshot is checked twice before anything is written: it must pass the contract, and
cleaning the log rows must give back exactly the features that were logged. Models
trained on it see what the champion saw at serving time.

The CSV is written atomically over `paths.raw`, `dvc add`ed and pushed, and the `.dvc`
file's `meta` records the provenance (`source: churn refresh`, the window, the row counts).
Unlike a simulated snapshot it cannot be recreated from its settings: a clone must pull it,
and `churn ensure-data` says so when no remote holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn import progress
from churn.config import Dataset, Params
from churn.core.clean import clean_features
from churn.core.contract import ContractError, read_raw_csv, validate_raw
from churn.data import snapshot
from churn.deployment import inference_log
from churn.errors import ChurnError
from churn.io import md5_file, write_csv
from churn.timestamps import refuse_future

REFRESH_SOURCE = snapshot.REFRESH_SOURCE


@dataclass(frozen=True)
class RefreshCounts:
    from_log: int  # labelled predictions used (one per customer)
    from_current: int  # current-snapshot rows kept
    replaced: int  # current-snapshot customers the log holds newer rows for
    unlabelled: int  # predictions in the window without a label (not used)
    outside_horizon: int  # current-snapshot rows older than the horizon (not used)
    dropped_columns: tuple[str, ...]  # columns of the current snapshot outside the contract

    @property
    def total(self) -> int:
        return self.from_log + self.from_current


@dataclass(frozen=True)
class RefreshResult:
    raw: Path
    dvc_file: Path
    md5: str
    previous_md5: str | None
    window_start: datetime
    window_end: datetime
    counts: RefreshCounts


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number_text(values: pd.Series, integer: bool) -> pd.Series:
    def text(value: float) -> str:
        if pd.isna(value):
            return ""
        if integer:
            return str(int(value))
        # repr is the shortest text that parses back to the same float.
        return repr(float(value))

    return values.astype("float64").map(text).astype(object)


def log_rows_as_raw(log: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """Logged (cleaned) rows in the raw CSV's text form, columns `dataset.raw_columns`."""
    out = pd.DataFrame(index=log.index)
    out[dataset.id_column] = log[dataset.id_column].astype(str)
    if dataset.timestamp_column:
        out[dataset.timestamp_column] = pd.to_datetime(log[dataset.timestamp_column]).map(
            lambda t: t.isoformat()
        )
    for column, spec in dataset.numeric.items():
        out[column] = _number_text(log[column], spec.integer)
    for column in dataset.categorical:
        out[column] = log[column].astype(str)
    out[dataset.label_column] = log[dataset.label_column].astype(str)
    return out[dataset.raw_columns].reset_index(drop=True)


def check_round_trip(raw: pd.DataFrame, logged: pd.DataFrame, dataset: Dataset) -> None:
    """Cleaning `raw` must give back exactly the logged features (fail closed otherwise)."""
    try:
        again = clean_features(validate_raw(raw, dataset, source="the log rows in raw form"), dataset)
    except ContractError as exc:
        raise ChurnError(
            f"the logged features do not map back to the raw contract, so no snapshot was written:\n{exc}"
        ) from None
    expected = logged[dataset.feature_columns].reset_index(drop=True)
    for column in dataset.numeric:
        if not np.array_equal(again[column].to_numpy(dtype="float64"), expected[column].to_numpy(dtype="float64"),
                              equal_nan=True):
            raise ChurnError(f"{column}: the logged values do not survive the trip back to raw text; nothing was written")
    for column in dataset.categorical:
        if not (again[column].astype(str).to_numpy() == expected[column].astype(str).to_numpy()).all():
            raise ChurnError(
                f"{column}: cleaning the logged values again changes them (a structural level maps to a "
                "value the contract does not allow?); nothing was written"
            )


def _current_rows(params: Params, meta: dict[str, Any], window_start: datetime) -> tuple[pd.DataFrame, int, tuple[str, ...]]:
    """(kept current rows as raw text, rows outside the horizon, dropped columns)."""
    dataset = params.dataset
    raw_path = params.paths.raw
    current = read_raw_csv(raw_path)
    dropped = tuple(column for column in current.columns if column not in dataset.raw_columns)
    missing = [column for column in dataset.raw_columns if column not in current.columns]
    if missing:
        raise ChurnError(
            f"the current snapshot {raw_path} lacks columns {missing}: it does not follow the contract "
            "in params.yaml; set refresh.horizon_days: 0 to build the snapshot from the log alone"
        )
    current = current[dataset.raw_columns]
    oldest = window_start - timedelta(days=params.refresh.horizon_days)
    if dataset.timestamp_column:
        dated = pd.to_datetime(current[dataset.timestamp_column], utc=True, errors="coerce")
        keep = dated >= pd.Timestamp(oldest)
    else:
        as_of = meta.get("as_of")
        when = pd.Timestamp(as_of) if as_of else pd.Timestamp(window_start)
        if when.tzinfo is None:
            when = when.tz_localize("UTC")
        keep = pd.Series(when >= pd.Timestamp(oldest), index=current.index)
    return current[keep].reset_index(drop=True), int((~keep).sum()), dropped


def build(params: Params, as_of: datetime, *, log_root: str | Path | None = None,
          meta: dict[str, Any] | None = None) -> tuple[pd.DataFrame, RefreshCounts, datetime]:
    """The new snapshot (raw text, contract-valid), its counts, and the window's start."""
    dataset, settings = params.dataset, params.refresh
    window_start = as_of - timedelta(days=settings.window_days)
    root = params.paths.inference_log if log_root is None else log_root
    if not inference_log.exists(root):
        raise ChurnError(f"the inference log {root} does not exist: nothing to refresh from (score and label first)")
    with progress.phase(f"reading the inference log {root} from {window_start:%Y-%m-%d}") as reading:
        log = inference_log.read_log(root, window_start.date(), as_of.date(), dataset=dataset, with_labels=True)
        in_window = (log[inference_log.SCORED_AT] >= pd.Timestamp(window_start)) & (
            log[inference_log.SCORED_AT] <= pd.Timestamp(as_of)
        )
        log = log[in_window]
        labelled = log[log[dataset.label_column].notna()]
        # One row per customer: the latest scoring (its features are the newest).
        labelled = labelled.sort_values([inference_log.SCORED_AT, dataset.id_column], kind="stable")
        labelled = labelled.drop_duplicates(dataset.id_column, keep="last").reset_index(drop=True)
        unlabelled = int(log.loc[log[dataset.label_column].isna(), dataset.id_column].nunique())
        reading.done(f"{len(log):,} rows scored in the window, {len(labelled):,} customers labelled")
    if len(labelled) < settings.min_labelled_rows:
        raise ChurnError(
            f"only {len(labelled)} labelled predictions were scored between {_iso(window_start)} and {_iso(as_of)} "
            f"({unlabelled} more have no label yet); refresh needs refresh.min_labelled_rows = "
            f"{settings.min_labelled_rows}: attach labels (`churn label`), widen refresh.window_days, or wait"
        )
    with progress.phase("building the snapshot and checking it against the contract") as building:
        from_log = log_rows_as_raw(labelled, dataset)
        check_round_trip(from_log, labelled, dataset)

        dropped: tuple[str, ...] = ()
        outside = replaced = 0
        current = pd.DataFrame(columns=dataset.raw_columns)
        if settings.horizon_days > 0:
            current, outside, dropped = _current_rows(params, meta or {}, window_start)
            newer = current[dataset.id_column].astype(str).isin(set(from_log[dataset.id_column]))
            replaced = int(newer.sum())
            current = current[~newer]
        snapshot_frame = pd.concat([current, from_log], ignore_index=True)[dataset.raw_columns]
        validate_raw(snapshot_frame, dataset, source="the refreshed snapshot")
        building.done(f"{len(from_log):,} rows from the log + {len(current):,} of the current snapshot")
    counts = RefreshCounts(
        from_log=len(from_log),
        from_current=len(current),
        replaced=replaced,
        unlabelled=unlabelled,
        outside_horizon=outside,
        dropped_columns=dropped,
    )
    return snapshot_frame, counts, window_start


def refresh(params: Params, as_of: datetime | None = None, *, log_root: str | Path | None = None) -> RefreshResult:
    """Build, validate, write, `dvc add` and push the next raw snapshot; see the module docstring."""
    as_of = datetime.now(UTC) if as_of is None else as_of.astimezone(UTC)
    refuse_future(as_of, "--as-of")
    raw = params.paths.raw
    previous_md5, meta = snapshot.read_tracked(raw)
    if params.refresh.horizon_days > 0:
        if not raw.is_file():
            raise ChurnError(f"the current snapshot {raw} is not in the workspace: run `churn ensure-data` first")
        if md5_file(raw) != previous_md5:
            raise ChurnError(
                f"{raw} differs from what {snapshot.dvc_file(raw)} tracks: `dvc add` it (and commit) or "
                f"`dvc checkout {snapshot.dvc_file(raw)}` before refreshing"
            )
    frame, counts, window_start = build(params, as_of, log_root=log_root, meta=meta)
    with progress.phase(f"writing {raw}") as writing:
        write_csv(raw, frame)
        writing.done(f"{len(frame):,} rows")
    root = params.paths.inference_log if log_root is None else log_root
    provenance = {
        "source": REFRESH_SOURCE,
        "as_of": _iso(as_of),
        "log": str(root),
        "log_window": {"start": _iso(window_start), "end": _iso(as_of)},
        "horizon_days": params.refresh.horizon_days,
        "rows": {
            "total": counts.total,
            "from_log": counts.from_log,
            "from_current": counts.from_current,
            "current_replaced_by_log": counts.replaced,
            "current_outside_horizon": counts.outside_horizon,
            "unlabelled_in_window": counts.unlabelled,
        },
        "previous_md5": previous_md5,
    }
    with progress.phase(f"dvc add and push {raw}"):
        snapshot.track(raw, provenance)
    md5, _ = snapshot.read_tracked(raw)
    return RefreshResult(
        raw=raw,
        dvc_file=snapshot.dvc_file(raw),
        md5=md5,
        previous_md5=previous_md5,
        window_start=window_start,
        window_end=as_of,
        counts=counts,
    )
