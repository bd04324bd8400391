"""`churn monitor`: window the inference log, update the profile and drift tables.

Only windows whose log partitions (files, or the labels matching their ids) changed are
re-read and re-aggregated; drift is recomputed for every window from the stored sketches,
which is cheap. When nothing changed nothing is written, so a second run changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn import progress
from churn.config import Params
from churn.deployment import inference_log
from churn.errors import ChurnError
from churn.io import write_parquet
from churn.monitoring import comparison, estimate, source, tables
from churn.monitoring import state as state_module
from churn.monitoring.aggregate import CALIBRATED, ColumnSpec, aggregate, rows
from churn.monitoring.comparison import BaselineSummary
from churn.monitoring.settings import check as check_settings
from churn.monitoring.slices import check_expression, mask
from churn.monitoring.windows import Window, parse_granularity, windows_of_days
from churn.servable.scoring import PROBABILITY

log = logging.getLogger("churn.monitor")
MODEL_VERSION = inference_log.MODEL_VERSION


@dataclass(frozen=True)
class MonitorResult:
    profile: pd.DataFrame
    drift: pd.DataFrame
    baseline: BaselineSummary
    windows: int
    recomputed: int
    rows_read: int
    future_rows: int
    duplicate_labels: int
    unknown_label_ids: int
    up_to_date: bool
    warnings: list[str] = field(default_factory=list)
    baseline_frame: pd.DataFrame | None = None  # for the drill-down report
    latest_window: str | None = None  # state key of the retrain granularity's latest window
    latest_fingerprint: str | None = None


def run(params: Params, *, now: datetime | None = None) -> MonitorResult:
    settings, dataset = params.monitor, params.dataset
    root = Path(params.paths.inference_log)
    now_ts = pd.Timestamp(now or datetime.now(UTC)).tz_convert("UTC")
    check_settings(params)

    listing = source.partition_files(root)
    if not listing:
        raise ChurnError(
            f"the inference log {root} holds no scored rows: score a batch with `churn predict` first "
            "(or set paths.inference_log); there is nothing to monitor"
        )
    with progress.phase("loading the baseline") as loading:
        against = comparison.load(params)
        found, summary, calibration, spec = against.baseline, against.summary, against.calibration, against.spec
        loading.done(f"{len(found.frame):,} rows from {found.source}" if found else "none")

    directory = settings.paths.state_dir
    old = state_module.load(directory)
    new = state_module.State(
        settings=state_module.digest([
            settings.granularities, settings.slices, settings.drift.numeric_bins,
            dataset.feature_columns, dataset.positive_label, state_module.FORMAT,
        ]),
        baseline=found.key if found else "",
    )
    everything = new.settings != old.settings or new.baseline != old.baseline

    with progress.phase("reading the attached labels") as reading:
        labels = source.read_labels(root, dataset, cache_dir=directory)
        reading.done(f"{len(labels):,} labelled ids")
    new.labels = labels.fingerprint
    labels_changed = everything or labels.fingerprint != old.labels
    changed = [
        day for day, files in listing.items()
        if labels_changed or old.partitions.get(day.isoformat(), {}).get("files") != [list(f) for f in files]
    ]
    positions: dict[date, np.ndarray] = {}  # each partition's label positions, to read it without a second lookup
    with progress.phase("matching labels to logged predictions") as matching:
        digests, matched = source.label_digests(root, changed, dataset, labels, positions)
        matching.done(f"{len(changed)} of {len(listing)} partitions")
    for day, files in listing.items():
        previous = old.partitions.get(day.isoformat(), {})
        entry: dict[str, Any] = {"files": [list(f) for f in files]}
        entry["labels"] = digests[day] if day in digests else previous.get("labels", "")
        entry["future"] = previous.get("future", 0) if previous.get("files") == entry["files"] else 0
        new.partitions[day.isoformat()] = entry
    # Counted when the labels change (every partition's ids are then looked up).
    new.unknown_label_ids = int((~matched).sum()) if labels_changed else old.unknown_label_ids

    windows = windows_of_days(settings.granularities, sorted(listing))
    for window in windows:
        parts = [new.partitions[d.isoformat()] for d in window.days]
        stamp = [window.key, [d.isoformat() for d in window.days], parts]
        if any(part.get("future") for part in parts):
            stamp.append(now_ts.isoformat())  # rows stamped in the future: read again next time
        new.windows[window.key] = state_module.digest(stamp)
    old_sketches = None if everything else state_module.load_sketches(directory)
    old_profile = None if everything else _read_table(settings.paths.profile)
    if old_profile is not None:
        # Gap rows (no model version) are regenerated from the windows every run.
        old_profile = old_profile[old_profile[MODEL_VERSION].notna()]
    if old_sketches is None or old_profile is None:
        everything = True
    dirty = [w for w in windows if everything or old.windows.get(w.key) != new.windows[w.key]]
    gone = set(old.windows) - set(new.windows)
    up_to_date = not dirty and not gone and not labels_changed and settings.paths.drift.is_file()

    if up_to_date:
        profile, drift = _read_table(settings.paths.profile), _read_table(settings.paths.drift)
        assert profile is not None and drift is not None
        return MonitorResult(
            profile, drift, summary, len(windows), 0, 0, 0, labels.duplicates, new.unknown_label_ids, True,
            _warnings(summary, new, labels.duplicates), found.frame if found else None,
            *_latest(windows, settings.retrain.granularity, new),
        )

    profile_parts, sketch_parts, rows_read, future_rows = _compute(
        params, root, dirty, labels, calibration, spec, now_ts, new, positions
    )
    del positions
    keep = {w.key for w in windows} - {w.key for w in dirty}
    if old_profile is not None and old_sketches is not None and keep:
        profile_parts.append(_only(old_profile, keep))
        sketch_parts.append(_only(old_sketches, keep))
    profile = tables.finish_profile(tables.concat(profile_parts), settings.min_rows)
    if not (profile["count"].fillna(0) > 0).any():
        raise ChurnError(
            f"no rows to monitor in {root}: {future_rows} rows are stamped after now ({now_ts:%Y-%m-%d %H:%M} UTC); "
            "check the scoring clock or --as-of"
        )
    with progress.phase("drift against the baseline and the previous windows") as comparing:
        sketches = tables.concat(sketch_parts)
        drift = comparison.drift(params, against, sketches)
        comparing.done(f"{len(drift):,} drift rows")
    write_parquet(settings.paths.profile, profile)
    write_parquet(settings.paths.drift, drift)
    state_module.save_sketches(directory, sketches)
    state_module.save(directory, new)
    summary_future = sum(int(p.get("future", 0)) for p in new.partitions.values())
    return MonitorResult(
        profile, drift, summary, len(windows), len(dirty), rows_read, summary_future,
        labels.duplicates, new.unknown_label_ids, False, _warnings(summary, new, labels.duplicates),
        found.frame if found else None, *_latest(windows, settings.retrain.granularity, new),
    )


def _latest(windows: list[Window], granularity: str, state: state_module.State) -> tuple[str | None, str | None]:
    mine = [w for w in windows if w.granularity.text == granularity and w.days]
    if not mine:
        return None, None
    latest = max(mine, key=lambda w: w.start)
    return latest.key, state.windows.get(latest.key)


def window_rows(params: Params, key: str, now: datetime | None = None) -> pd.DataFrame:
    """The logged rows of one window (by state key), compact, labels not joined."""
    text, start_text = key.split("|", 1)
    granularity, start = parse_granularity(text), pd.Timestamp(start_text)
    root = Path(params.paths.inference_log)
    now_ts = pd.Timestamp(now or datetime.now(UTC)).tz_convert("UTC")
    empty = source.Labels(pd.Index(np.array([], dtype="uint64")), np.array([]), 0, "")
    frames = [
        source.read_partition(root, day, params.dataset, empty, now_ts).frame
        for day in granularity.days_of_window(start)
        if (root / f"{inference_log.DATE}={day.isoformat()}").is_dir()
    ]
    if not frames:
        return pd.DataFrame()
    frame = source.concat(frames)
    inside = (frame[source.SCORED_AT] >= start) & (frame[source.SCORED_AT] < start + granularity.width)
    return frame.loc[inside.to_numpy()].reset_index(drop=True)


def _compute(
    params: Params,
    root: Path,
    dirty: list[Window],
    labels: source.Labels,
    calibration: estimate.Calibration,
    spec: ColumnSpec,
    now_ts: pd.Timestamp,
    new_state: state_module.State,
    positions: dict[date, np.ndarray] | None = None,
) -> tuple[list[pd.DataFrame], list[pd.DataFrame], int, int]:
    """Aggregate the dirty windows, reading each partition once: a partition stays in
    memory from the first window that needs it to the last (windows in order of their end,
    so a week follows its days). `positions`: partitions' label positions already found."""
    settings, dataset = params.monitor, params.dataset
    slices = [None, *settings.slices]
    order = sorted(dirty, key=lambda w: (w.end, w.granularity.seconds))
    last_use = {day: index for index, window in enumerate(order) for day in window.days}
    cache: dict[date, source.Columns] = {}
    profile_parts: list[pd.DataFrame] = []
    sketch_parts: list[pd.DataFrame] = []
    rows_read = 0
    with progress.task("monitoring windows", total=len(order), unit="windows") as windows_done:
        for index, window in enumerate(order):
            for day in window.days:
                if day not in cache:
                    columns, future = source.read_partition_columns(
                        root, day, dataset, labels, now_ts, None if positions is None else positions.pop(day, None)
                    )
                    new_state.partitions[day.isoformat()]["future"] = future
                    cache[day] = _prepared(columns, slices, calibration)
                    rows_read += rows(columns)
                    del columns
                    windows_done.note(f"{rows_read:,} rows read")
            parts = [cache[d] for d in window.days]
            for day in window.days:  # no later window needs it: let it go with this one
                if last_use[day] == index:
                    del cache[day]
            window_columns = source.concat_columns(parts) if parts else None
            del parts
            if window_columns is not None:
                stamps = window_columns[source.SCORED_AT].view("int64")
                inside = (stamps >= window.start.value) & (stamps < window.end.value)
                if not inside.all():
                    window_columns = source.select(window_columns, inside)
            if window_columns is not None and rows(window_columns):
                for number, slice_key in enumerate(slices):
                    inside_slice = None if slice_key is None else window_columns[_slice_column(number)]
                    result = aggregate(window_columns, [MODEL_VERSION], spec, where=inside_slice)
                    constants = {
                        "window_start": window.start, "window_end": window.end,
                        "granularity": window.granularity.text,
                        "slice_key": slice_key, "slice_value": None if slice_key is None else "true",
                    }
                    table = result.table.assign(column_name=tables.TABLE, **constants)
                    table["note"] = [estimate.note_for(calibration, v) for v in table[MODEL_VERSION]]
                    profile_parts += [result.profile.assign(**constants), table]
                    sketch_parts.append(result.sketch.assign(**constants))
            del window_columns
            windows_done.advance(1)
    return profile_parts, sketch_parts, rows_read, sum(
        int(p.get("future", 0)) for p in new_state.partitions.values()
    )


def _slice_mask(columns: source.Columns, expression: str) -> np.ndarray:
    """`slices.mask` on a frame of only the columns the expression reads."""
    try:
        names = check_expression(expression, list(columns))
    except ValueError as exc:
        raise ChurnError(f"monitor.slices: {exc}") from None
    return mask(source.to_frame({name: columns[name] for name in sorted(names)}), expression)


def _slice_column(number: int) -> str:
    return f"_slice_{number}"  # not a dataset column: those cannot start with "_" (mask checks names)


def _prepared(columns: source.Columns, slices: list[str | None], calibration: estimate.Calibration) -> source.Columns:
    """A partition's rows with what every window of it needs computed once per row rather
    than once per window: each slice's membership and the calibrated probability."""
    for number, slice_key in enumerate(slices):
        if slice_key is not None:
            columns[_slice_column(number)] = _slice_mask(columns, slice_key)
    columns[CALIBRATED] = estimate.calibrate(
        calibration, columns[PROBABILITY].astype("float64"), np.asarray(columns[MODEL_VERSION])
    )
    return columns


def _only(frame: pd.DataFrame, keys: set[str]) -> pd.DataFrame:
    starts = pd.to_datetime(frame["window_start"], utc=True)
    window_keys = [state_module.window_key(g, s) for g, s in zip(frame["granularity"], starts, strict=True)]
    return frame.loc[[k in keys for k in window_keys]]


def _read_table(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception:
        return None


def _warnings(summary: BaselineSummary, state: state_module.State, duplicates: int) -> list[str]:
    future = sum(int(p.get("future", 0)) for p in state.partitions.values())
    return comparison.warnings(
        summary, future_rows=future, unknown_label_ids=state.unknown_label_ids, duplicate_labels=duplicates
    )
