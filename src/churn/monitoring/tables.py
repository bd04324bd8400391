"""The two output tables' layout, and the drift table computed from window sketches.

Key columns (both tables): window_start, window_end, granularity, model_version,
slice_key, slice_value (null for the whole table), column_name (":table" for the
whole-table rows of the profile). The drift table adds drift_type: BASELINE (against the
baseline) or CONSECUTIVE (against the previous window of the same granularity, model
version and slice, when it has rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from churn.config import MonitorDrift
from churn.monitoring import distances
from churn.monitoring.aggregate import QUANTILE_COLUMNS, TABLE_COLUMNS
from churn.monitoring.windows import parse_granularity

TABLE = ":table"
BASELINE = "BASELINE"
CONSECUTIVE = "CONSECUTIVE"
OK = "ok"
INSUFFICIENT = distances.INSUFFICIENT
_MODEL_VERSION = "model_version"  # inference_log.MODEL_VERSION
GROUP = ["granularity", _MODEL_VERSION, "slice_key", "slice_value"]
KEYS = ["window_start", "window_end", *GROUP]
PROFILE_COLUMNS = [
    *KEYS, "column_name", "status",
    "count", "num_nulls", "distinct_count", "mean", "stddev", "min", "max", *QUANTILE_COLUMNS, "top_values",
    *[c for c in TABLE_COLUMNS if c != "count"], "note",
]
DRIFT_COLUMNS = [
    *KEYS, "column_name", "drift_type", "compared_with", "rows", "reference_rows",
    "js_distance", "wasserstein_distance", "psi", "p_value", "method", "threshold", "drifted", "status",
]
_TIMESTAMP = "datetime64[ns, UTC]"


def concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Profile or sketch parts as one frame (empty: the profile's columns), model versions as
    text or None whatever type each part gave them."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in PROFILE_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    if _MODEL_VERSION in out.columns:
        out[_MODEL_VERSION] = out[_MODEL_VERSION].astype(object).where(out[_MODEL_VERSION].notna(), None)
        out[_MODEL_VERSION] = out[_MODEL_VERSION].map(lambda v: v if v is None else str(v))
    return out


def finish_profile(profile: pd.DataFrame, min_rows: int) -> pd.DataFrame:
    """Typed, sorted profile with a status on every whole-table row and gap windows added."""
    profile = _with_gaps(profile)
    out = profile.reindex(columns=PROFILE_COLUMNS)
    table = out["column_name"] == TABLE
    enough = out["count"].fillna(0).to_numpy() >= min_rows
    out["status"] = [(OK if ok else INSUFFICIENT) if is_table else None for is_table, ok in zip(table, enough, strict=True)]
    for column in ("window_start", "window_end"):
        out[column] = pd.to_datetime(out[column], utc=True).astype(_TIMESTAMP)
    for column in ("count", "num_nulls", "distinct_count", "label_count"):
        out[column] = out[column].astype("Int64")
    text = ["granularity", "model_version", "slice_key", "slice_value", "column_name", "status", "top_values", "note"]
    for column in text:
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    floats = [c for c in PROFILE_COLUMNS if c not in (*KEYS, *text, "count", "num_nulls", "distinct_count", "label_count")]
    out[floats] = out[floats].astype("float64")
    return _sorted(out, ["column_name"])


def _with_gaps(profile: pd.DataFrame) -> pd.DataFrame:
    """A whole-table row with count 0 for every window of a granularity, between its first
    and last window, that has no rows at all (a missing partition, a day nothing was scored)."""
    table = profile[profile["column_name"] == TABLE]
    gaps = []
    for granularity, part in table.groupby("granularity"):
        width = parse_granularity(str(granularity)).width
        seen = set(pd.to_datetime(part["window_start"], utc=True))
        current, last = min(seen), max(seen)
        while current < last:
            if current not in seen:
                gaps.append({
                    "window_start": current, "window_end": current + width, "granularity": granularity,
                    "model_version": None, "slice_key": None, "slice_value": None, "column_name": TABLE,
                    "count": 0, "note": "no rows in this window: a missing log partition, or nothing was scored",
                })
            current = current + width
    if not gaps:
        return profile
    return pd.concat([profile, pd.DataFrame(gaps)], ignore_index=True)


def drift_table(
    sketches: pd.DataFrame,
    baseline: pd.DataFrame | None,
    baseline_std: dict[str, float],
    numeric: set[str],
    settings: MonitorDrift,
    min_rows: int,
) -> pd.DataFrame:
    """Every window's drift against the baseline sketch and against its previous window.

    `baseline` holds one sketch per slice (slice_key, "" for the whole table): a slice is
    compared with the same slice of the baseline. Nothing is computed without a baseline:
    its quantile grid defines the numeric buckets."""
    if baseline is None or len(sketches) == 0:
        return _typed_drift(pd.DataFrame(columns=DRIFT_COLUMNS))
    # The baseline sketch is keyed by slice_key ("" = whole table) and column.
    reference_by_slice: dict[str, dict[str, distances.Side]] = {}
    for (slice_key, column), side in _sides(baseline, ["slice_key", "column_name"], numeric):
        reference_by_slice.setdefault(slice_key, {})[column] = side
    sketches = sketches.copy()
    sketches["window_start"] = pd.to_datetime(sketches["window_start"], utc=True)
    # "" stands for "whole table" while grouping: NaN keys do not compare equal in lookups.
    sketches[GROUP] = sketches[GROUP].astype(object).where(sketches[GROUP].notna(), "")
    by_window: dict[tuple[Any, ...], dict[str, distances.Side]] = {}
    for key, side in _sides(sketches, ["window_start", *GROUP, "column_name"], numeric):
        by_window.setdefault(key[:-1], {})[key[-1]] = side
    widths = {g: parse_granularity(str(g)).width for g in sketches["granularity"].unique()}
    rows = []
    for key in sorted(by_window, key=lambda k: tuple(str(v) for v in k)):
        start, granularity = key[0], key[1]
        group = {name: (value if value != "" else None) for name, value in zip(GROUP, key[1:], strict=True)}
        reference = reference_by_slice.get(key[3], {})
        end = start + widths[granularity]
        previous_start = start - widths[granularity]
        previous_sides = by_window.get((previous_start, *key[1:]), {})
        for column, current in sorted(by_window[key].items()):
            if column not in reference:
                continue
            base = {"window_start": start, "window_end": end, **group, "column_name": column, "rows": current.rows}
            is_numeric = column in numeric
            std = baseline_std.get(column)
            rows.append({
                **base, "drift_type": BASELINE, "compared_with": None, "reference_rows": reference[column].rows,
                **distances.compare(reference[column], current, numeric=is_numeric, reference_std=std,
                                    settings=settings, min_rows=min_rows),
            })
            if column in previous_sides:
                rows.append({
                    **base, "drift_type": CONSECUTIVE, "compared_with": previous_start,
                    "reference_rows": previous_sides[column].rows,
                    **distances.compare(previous_sides[column], current, numeric=is_numeric, reference_std=std,
                                        settings=settings, min_rows=min_rows),
                })
    return _typed_drift(pd.DataFrame(rows, columns=DRIFT_COLUMNS))


def _sides(
    sketches: pd.DataFrame, keys: list[str], numeric: set[str]
) -> Iterator[tuple[tuple[Any, ...], distances.Side]]:
    """(key tuple, Side) per group of sketch rows, without a DataFrame per group."""
    ordered = sketches.sort_values(keys, kind="stable").reset_index(drop=True)
    codes = ordered.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    if not len(codes):
        return
    bounds = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(codes)]])
    key_values = ordered[keys].to_numpy(dtype=object)
    buckets = ordered["bucket"].to_numpy(dtype=object)
    counts = ordered["count"].to_numpy("float64")
    totals = ordered["total"].to_numpy("float64")
    for first, last in zip(starts, ends, strict=True):
        key = tuple(key_values[first])
        column = key[-1]
        yield key, distances.Side.of(buckets[first:last], counts[first:last], totals[first:last], column in numeric)


def _typed_drift(out: pd.DataFrame) -> pd.DataFrame:
    for column in ("window_start", "window_end", "compared_with"):
        out[column] = pd.to_datetime(out[column], utc=True).astype(_TIMESTAMP)
    for column in ("rows", "reference_rows"):
        out[column] = out[column].astype("Int64")
    for column in ("js_distance", "wasserstein_distance", "psi", "p_value", "threshold"):
        out[column] = out[column].astype("float64")
    out["drifted"] = out["drifted"].astype("boolean")
    for column in ("granularity", "model_version", "slice_key", "slice_value", "column_name", "drift_type",
                   "method", "status"):
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return _sorted(out, ["column_name", "drift_type"])


def _sorted(frame: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    order = ["granularity", "window_start", "model_version", "slice_key", "slice_value", *extra]
    return frame.sort_values(order, na_position="first", kind="stable").reset_index(drop=True)
