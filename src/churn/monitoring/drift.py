"""Data drift between a reference and a current frame, computed by evidently.

One evidently run (`compare`) gives two outputs with different contracts:

* `DriftComparison.summary`: the numbers as a small, fully deterministic, JSON-ready dict
  (a DVC metric): each column's drift score, method and threshold, and the dataset verdict.
* `DriftComparison.write_html`: evidently's full HTML report (not byte-deterministic).

Both come from `DataDriftPreset`, whose snapshot holds one `ValueDrift` per column and a
`DriftedColumnsCount`, with their tests: reading the numbers from the same snapshot the
HTML renders costs nothing extra, where a second, summary-only report would compute
every column again.

Both sides are sampled down to at most `sample_size` rows with `seed`, keep only the
listed columns, and evidently gets an explicit `DataDefinition` (otherwise it guesses
types, and ID-like columns become text columns it trains a classifier on).

evidently takes seconds to import, so it is imported inside the functions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churn.core.splits import sample_positions
from churn.errors import ChurnError
from churn.io import atomic_path

if TYPE_CHECKING:  # pragma: no cover - typing only, never imported at runtime
    from evidently import DataDefinition, Dataset

_DECIMALS = 6


@dataclass(frozen=True)
class DriftComparison:
    summary: dict[str, Any]  # the deterministic numbers: per-column drift and the dataset verdict
    snapshot: Any  # evidently's Snapshot, for the HTML

    def write_html(self, path: str | Path) -> None:
        """Write evidently's HTML report to `path` (atomically)."""
        with atomic_path(path) as tmp:
            # save_html silently writes nothing unless given a str; it does not need a .html suffix.
            self.snapshot.save_html(str(tmp))
            if tmp.stat().st_size == 0:
                raise RuntimeError(f"evidently wrote an empty HTML report for {path}")


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    sample_size: int,
    seed: int,
    drift_share: float = 0.5,
) -> DriftComparison:
    """Run evidently's data-drift preset once; its numbers and its report.

    In the summary, `reference_rows` / `current_rows` are the rows actually compared (after
    sampling, so at most `sample_size`); `sample_size` is the cap that was applied.
    """
    if not 0.0 < drift_share <= 1.0:
        raise ChurnError(f"drift_share must be in (0, 1], got {drift_share!r}")
    ref, cur = _prepare(reference, current, numeric=numeric, categorical=categorical,
                        sample_size=sample_size, seed=seed)
    columns = list(numeric) + list(categorical)

    from evidently import Report
    from evidently.presets import DataDriftPreset

    # include_tests: each column's drift flag comes as its ValueDrift test's status.
    report = Report([DataDriftPreset(columns=columns, drift_share=drift_share)], include_tests=True)
    snapshot = _run(report, ref, cur, numeric=numeric, categorical=categorical)
    summary = _summarise(snapshot.dict(), columns, drift_share, sample_size)
    summary = {"reference_rows": len(ref), "current_rows": len(cur), **summary}
    return DriftComparison(summary, snapshot)


def _summarise(result: dict[str, Any], columns: list[str], drift_share: float, sample_size: int) -> dict[str, Any]:
    status_by_metric = {
        test["metric_config"]["metric_id"]: _status(test["status"])
        for test in result["tests"]
        if test.get("id") == "drift"
    }
    per_column: dict[str, dict[str, Any]] = {}
    counted: tuple[int, float] | None = None
    for metric in result["metrics"]:
        config = metric["config"]
        kind = config.get("type", "")
        if kind.endswith(":ValueDrift"):
            col = config["column"]
            status = status_by_metric.get(metric["id"])
            if status not in ("SUCCESS", "FAIL"):
                raise RuntimeError(f"evidently gave no drift verdict for column {col!r} (test status {status!r})")
            per_column[col] = {
                "method": str(config["method"]),
                "score": _round(metric["value"]),
                "threshold": _round(config["threshold"]),
                "drifted": status == "FAIL",
            }
        elif kind.endswith(":DriftedColumnsCount"):
            counted = (round(metric["value"]["count"]), float(metric["value"]["share"]))

    if sorted(per_column) != sorted(columns) or counted is None:
        raise RuntimeError(f"evidently returned results for {sorted(per_column)}, expected {sorted(columns)}")
    flagged = sum(entry["drifted"] for entry in per_column.values())
    if counted[0] != flagged:
        raise RuntimeError(
            f"evidently disagrees with itself: DriftedColumnsCount={counted[0]} but "
            f"{flagged} ValueDrift tests failed ({sorted(c for c, e in per_column.items() if e['drifted'])})"
        )

    share = flagged / len(columns)
    return {
        "sample_size": int(sample_size),
        "columns_total": len(columns),
        "columns_drifted": flagged,
        "share_drifted": _round(share),
        "dataset_drift": bool(share >= drift_share),
        "columns": {col: per_column[col] for col in sorted(per_column)},
    }


# --- helpers -----------------------------------------------------------------------


def _prepare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    sample_size: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate the inputs; return each side restricted to the listed columns and sampled."""
    columns = list(numeric) + list(categorical)
    if not columns:
        raise ChurnError("drift needs at least one numeric or categorical column; both lists are empty")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ChurnError(f"drift columns listed more than once (or as both numeric and categorical): {duplicated}")
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < 1:
        raise ChurnError(f"drift sample_size must be a positive integer, got {sample_size!r}")

    out = []
    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ChurnError(
                f"drift: the {name} frame has no column(s) {missing}; "
                f"check the numeric/categorical column lists against the feature table"
            )
        if len(frame) == 0:
            raise ChurnError(f"drift: the {name} frame is empty (0 rows); nothing to compare")
        for col in numeric:
            dtype = frame[col].dtype
            if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                raise ChurnError(
                    f"drift: numeric column {col!r} in the {name} frame has dtype {dtype}; "
                    f"list it as categorical or fix its type"
                )
        subset = frame[columns]
        positions = sample_positions(len(subset), int(sample_size), seed)
        if positions is not None:  # the rows `subset.sample(n=sample_size, random_state=seed)` takes
            subset = subset.iloc[positions]
        subset = subset.reset_index(drop=True)
        for col in columns:
            values = subset[col]
            if col in numeric:
                values = values.replace([np.inf, -np.inf], np.nan)
            if not values.notna().any():
                raise ChurnError(f"drift: column {col!r} has no non-missing values in the {name} sample")
        out.append(subset)
    return out[0], out[1]


def _definition(numeric: list[str], categorical: list[str]) -> DataDefinition:
    from evidently import DataDefinition

    return DataDefinition(numerical_columns=list(numeric), categorical_columns=list(categorical))


def _dataset(frame: pd.DataFrame, definition: DataDefinition) -> Dataset:
    from evidently import Dataset

    return Dataset.from_pandas(frame, data_definition=definition)


def _run(report: Any, ref: pd.DataFrame, cur: pd.DataFrame, *, numeric: list[str], categorical: list[str]) -> Any:
    definition = _definition(numeric, categorical)
    # evidently's order is (current, reference).
    return report.run(_dataset(cur, definition), _dataset(ref, definition))


def _status(status: Any) -> str:
    return str(getattr(status, "value", status))


def _round(value: Any) -> float | None:
    """Round to a fixed number of decimals; a non-finite score becomes None (JSON has no NaN)."""
    number = float(value)
    if not math.isfinite(number):
        return None
    return round(number, _DECIMALS)
