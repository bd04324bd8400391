"""Metrics per slice (a level of a column, or a band of a numeric one) and their gates.

A model can be good on average and poor for a segment the business cares about (new
customers, month-to-month contracts). Slices too small to give a stable ROC AUC are
reported with their size and left unscored rather than gated on noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from churn.config import Slices
from churn.validation.gates import Check

KIND = "slice"
DIGITS = 6
MISSING = "missing"


@dataclass(frozen=True)
class SliceMetrics:
    column: str
    value: str
    rows: int
    positives: int
    positive_rate: float
    predicted_positive_rate: float
    roc_auc: float | None  # None when not scored
    recall: float | None
    precision: float | None
    scored: bool
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.column}={self.value}"

    def as_dict(self) -> dict[str, Any]:
        return {"slice": self.name, **asdict(self)}


def _edge(value: float) -> str:
    return f"{value:g}"


def band_names(edges: list[float]) -> list[str]:
    """(-inf, e0), [e0, e1), ..., [en, inf): half-open, so every value has one band."""
    bounds = [-np.inf, *edges, np.inf]
    return [
        f"({_edge(low)}, {_edge(high)})" if low == -np.inf else f"[{_edge(low)}, {_edge(high)})"
        for low, high in pairwise(bounds)
    ]


def band_labels(values: pd.Series, edges: list[float]) -> pd.Series:
    """Each value's band name; missing values: "missing"."""
    bounds = [-np.inf, *edges, np.inf]
    bands = pd.cut(pd.to_numeric(values, errors="coerce"), bounds, right=False, labels=band_names(edges))
    return bands.astype(object).where(bands.notna(), MISSING).astype(str)


def slice_keys(frame: pd.DataFrame, column: str, settings: Slices) -> tuple[pd.Series, list[str]]:
    """The slice label of every row, and the labels in display order."""
    if column in settings.bins:
        keys = band_labels(frame[column], settings.bins[column])
        order = [*band_names(settings.bins[column]), MISSING]
    else:
        keys = frame[column].astype(str).where(frame[column].notna(), MISSING)
        order = sorted(keys.unique())
    present = set(keys.unique())
    return keys.reset_index(drop=True), [label for label in order if label in present]


def why_unscored(rows: int, positives: int, settings: Slices) -> str:
    negatives = rows - positives
    if rows < settings.min_rows:
        return f"too small: {rows} rows < min_rows {settings.min_rows}"
    if min(positives, negatives) < settings.min_class_rows:
        return f"too small: {positives} positive / {negatives} negative rows, min_class_rows {settings.min_class_rows}"
    return ""


def by_group(metrics: dict[str, Callable[[Any, Any], Any]], y_true: np.ndarray, y_pred: np.ndarray,
             keys: pd.Series) -> pd.DataFrame:
    """Each metric on each group's rows (in their input order): a row per group (sorted), a
    column per metric, as fairlearn's `MetricFrame(...).by_group` lays it out.

    A pandas groupby of row positions rather than MetricFrame: fairlearn 0.15 re-stacks every
    value of a group in Python (`np.stack` over a 1-D column) for each metric call, which cost
    minutes per stage at a million rows; the metric functions and the rows they see are the same.
    """
    positions = keys.reset_index(drop=True).groupby(keys.reset_index(drop=True), sort=True).indices
    table = {group: {name: metric(y_true[index], y_pred[index]) for name, metric in metrics.items()}
             for group, index in positions.items()}
    return pd.DataFrame.from_dict(table, orient="index")


def _auc(y_true: Any, proba: Any) -> float:
    return float(roc_auc_score(y_true, proba)) if len(np.unique(y_true)) == 2 else float("nan")


def slice_metrics(frame: pd.DataFrame, y_true: Any, proba: Any, threshold: float, settings: Slices) -> list[SliceMetrics]:
    """Every configured slice of `frame`, scored or marked too small."""
    y = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)

    def predicted(p: Any) -> Any:
        return (np.asarray(p) >= threshold).astype(int)

    metrics = {
        "rows": lambda t, p: len(t),
        "positives": lambda t, p: int(np.sum(t)),
        "positive_rate": lambda t, p: float(np.mean(t)),
        "predicted_positive_rate": lambda t, p: float(np.mean(predicted(p))),
        "roc_auc": _auc,
        "recall": lambda t, p: float(recall_score(t, predicted(p), zero_division=0)),
        "precision": lambda t, p: float(precision_score(t, predicted(p), zero_division=0)),
    }
    out = []
    for column in [*settings.columns, *[c for c in settings.bins if c not in settings.columns]]:
        keys, order = slice_keys(frame, column, settings)
        groups = by_group(metrics, y, proba, keys)
        for value in order:
            row = groups.loc[value]
            rows, positives = int(row["rows"]), int(row["positives"])
            note = why_unscored(rows, positives, settings)
            scored = not note

            out.append(
                SliceMetrics(
                    column=column,
                    value=value,
                    rows=rows,
                    positives=positives,
                    positive_rate=round(float(row["positive_rate"]), DIGITS),
                    predicted_positive_rate=round(float(row["predicted_positive_rate"]), DIGITS),
                    roc_auc=round(float(row["roc_auc"]), DIGITS) if scored else None,
                    recall=round(float(row["recall"]), DIGITS) if scored else None,
                    precision=round(float(row["precision"]), DIGITS) if scored else None,
                    scored=scored,
                    note=note,
                )
            )
    return out


def slice_checks(slices: list[SliceMetrics], overall_auc: float, settings: Slices) -> list[Check]:
    if settings.min_roc_auc is None and settings.max_roc_auc_gap is None:
        return []
    scored = [s for s in slices if s.scored]
    if slices and not scored:  # fail closed: configured slices that cannot be scored are unchecked
        return [Check.compare("slices_scored", KIND, 0, ">=", 1, note="no slice is large enough to score: lower validate.slices.min_rows or use more data")]
    checks = []
    for s in scored:
        assert s.roc_auc is not None
        if settings.min_roc_auc is not None:
            checks.append(Check.compare(f"slice_roc_auc.{s.name}", KIND, s.roc_auc, ">=", settings.min_roc_auc))
        if settings.max_roc_auc_gap is not None:
            checks.append(Check.compare(
                f"slice_roc_auc_gap.{s.name}", KIND, overall_auc - s.roc_auc, "<=", settings.max_roc_auc_gap,
                note=f"overall {overall_auc:.4f}, slice {s.roc_auc:.4f}",
            ))
    return checks


def summary(slices: list[SliceMetrics], overall_auc: float) -> dict[str, float | int | None]:
    """The few numbers metrics files carry; the per-slice detail lives in a report file."""
    aucs = [s.roc_auc for s in slices if s.roc_auc is not None]
    return {
        "slice_min_roc_auc": min(aucs) if aucs else None,
        "slice_max_roc_auc_gap": round(overall_auc - min(aucs), DIGITS) if aucs else None,
        "slices_scored": len(aucs),
        "slices_too_small": sum(1 for s in slices if not s.scored),
    }
