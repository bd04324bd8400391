"""Window aggregates: the one place that turns logged rows into profile, sketch and quality rows.

Everything here is a group-by over `keys` (for the monitor: the model version within one
window and slice), written with pandas/numpy so it is vectorised. A Spark engine would
implement the same three functions with `groupBy(keys).agg(...)`: the output frames, not
the code, are the contract:

* `profile`  one row per group x column: count, nulls, distinct, mean, std, min, max,
  quantiles (numeric) or top values (categorical).
* `sketch`   one row per group x column x bucket: the bucket's row count and value total.
  Buckets are the baseline's quantile bins (numeric) or the levels (categorical). Sketches
  add up, and every drift statistic is computed from them, so drift between any two
  windows never re-reads the log.
* `table`    one row per group: row count, mean probability, predicted positive rate,
  realised quality on the labelled rows, and the label-free estimate from the calibrated
  probabilities (`CALIBRATED`, null where no calibration applies).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

# A DataFrame, or a mapping of column name to a 1-D array (categories as pd.Categorical).
Frame: TypeAlias = "pd.DataFrame | Mapping[str, Any]"

# Columns the caller adds to the logged rows before aggregating.
LABEL = "_label"  # 1.0 / 0.0 / NaN (not labelled yet)
CALIBRATED = "_calibrated"  # the champion's probability after calibration, or NaN
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
QUANTILE_COLUMNS = ["p05", "p25", "p50", "p75", "p95"]
TOP_VALUES = 5
DIGITS = 6


@dataclass(frozen=True)
class ColumnSpec:
    """Which columns to aggregate and how; `edges` are the numeric columns' inner bin edges."""

    numeric: list[str]
    categorical: list[str]
    probability: str
    prediction: str
    edges: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Aggregates:
    profile: pd.DataFrame
    sketch: pd.DataFrame
    table: pd.DataFrame


def aggregate(frame: Frame, keys: list[str], spec: ColumnSpec, *, where: np.ndarray | None = None) -> Aggregates:
    """All three aggregates of `frame`, grouped by `keys` (groups with no rows are absent).

    `frame` (here and in `profile`, `sketch`, `table`) may also be a mapping of column
    name to a 1-D array, categories as `pd.Categorical`: the monitor passes its windows so,
    because pandas copies every column again whenever frames are concatenated or sliced.
    `where` (a boolean mask, e.g. a slice of the window) restricts the aggregates to those
    rows, as if `frame` held only them, without copying the columns that are not needed."""
    groups = _split(frame, keys, where)
    profile_rows, sketch_parts = _columns(frame, groups, spec, profiles=True, sketches=True)
    return Aggregates(
        profile=_profile_frame(profile_rows, keys),
        sketch=_sketch_frame(sketch_parts, keys),
        table=_table_frame(frame, groups, keys, spec),
    )


Rows: TypeAlias = "np.ndarray | slice"  # a group's rows: positions, a boolean mask, or slice(None) for every row


def rows(frame: Frame) -> int:
    """The number of rows of a DataFrame or of a mapping of columns."""
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    return len(next(iter(frame.values()))) if len(frame) else 0


def _split(frame: Frame, keys: list[str], where: np.ndarray | None = None) -> list[tuple[dict[str, Any], Rows]]:
    """(key values, row positions) per group, in key order; only rows where `where` is true."""
    selected = None if where is None else np.flatnonzero(where)
    if not (rows(frame) if selected is None else len(selected)):
        return []
    # Every (selected) row: a view, or the mask itself (numpy compresses by a mask faster
    # than it gathers by positions).
    whole: Rows = slice(None) if where is None else np.asarray(where, dtype=bool)
    if len(keys) == 1:
        values = frame[keys[0]]
        values = values.array if isinstance(values, pd.Series) else values
        if isinstance(values, pd.Categorical):
            codes = values.codes if selected is None else values.codes[selected]
            if codes[0] >= 0 and bool((codes == codes[0]).all()):
                # One group (one model version, the usual case): no group-by, and a view of
                # each column, not a copy.
                return [({keys[0]: values.categories[codes[0]]}, whole)]
    by = frame[keys] if isinstance(frame, pd.DataFrame) else pd.DataFrame({key: frame[key] for key in keys})
    if selected is not None:
        by = by.iloc[selected].reset_index(drop=True)
    out: list[tuple[dict[str, Any], Rows]] = []
    for key, positions in by.groupby(keys, observed=True, sort=True, dropna=False).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        found = np.asarray(positions)
        out.append((dict(zip(keys, key, strict=True)), found if selected is None else selected[found]))
    if len(out) == 1:
        return [(out[0][0], whole)]
    return sorted(out, key=lambda item: tuple(str(v) for v in item[0].values()))


def _levels(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Category codes (-1 = null) and the levels as text, without copying a categorical."""
    values = values.array if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype) else values
    if isinstance(values, pd.Categorical):
        return np.asarray(values.codes), np.asarray(values.categories.astype(str))
    codes, uniques = pd.factorize(values, sort=True)
    return codes, np.asarray(pd.Index(uniques).astype(str))


def profile(frame: Frame, keys: list[str], spec: ColumnSpec) -> pd.DataFrame:
    found, _ = _columns(frame, _split(frame, keys), spec, profiles=True, sketches=False)
    return _profile_frame(found, keys)


def sketch(frame: Frame, keys: list[str], spec: ColumnSpec) -> pd.DataFrame:
    """Bucket counts and value totals per group and column (buckets as text)."""
    _, parts = _columns(frame, _split(frame, keys), spec, profiles=False, sketches=True)
    return _sketch_frame(parts, keys)


def table(frame: Frame, keys: list[str], spec: ColumnSpec) -> pd.DataFrame:
    return _table_frame(frame, _split(frame, keys), keys, spec)


def _columns(
    frame: Frame, groups: list[tuple[dict[str, Any], Rows]], spec: ColumnSpec, *, profiles: bool, sketches: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Profile rows and sketch parts of every column and group, in one pass per column.

    A numeric column's values are sorted once per group: quantiles, min, max and the
    distinct count are then read off the sorted values, and the sketch's bucket counts are
    binary searches of the bucket edges in them (instead of a hash of every value and a
    binary search per value)."""
    profile_rows: list[dict[str, Any]] = []
    sketch_parts: dict[str, list[dict[str, Any]]] = {}
    numeric = list(dict.fromkeys([*(spec.numeric if profiles else []), *(spec.edges if sketches else [])]))
    for column in numeric:
        values = np.asarray(frame[column], dtype="float64")
        edges = spec.edges.get(column) if sketches else None
        for key, positions in groups:
            part = values[positions]
            nulls = np.isnan(part)
            present = part[~nulls] if nulls.any() else part
            ordered = np.sort(present)
            if profiles and column in spec.numeric:
                profile_rows.append({**key, "column_name": column, **_numeric_profile(present, ordered, int(nulls.sum()))})
            if edges is not None:
                sketch_parts.setdefault(column, []).append({**key, "column_name": column, **_numeric_sketch(ordered, edges)})
    for column in spec.categorical:
        codes, levels = _levels(frame[column])
        for key, positions in groups:
            part = codes[positions]
            counts = np.bincount(part[part >= 0], minlength=len(levels))
            if profiles:
                order = np.lexsort((levels, -counts))[:TOP_VALUES]
                top = [[str(levels[i]), int(counts[i])] for i in order if counts[i] > 0]
                profile_rows.append({**key, "column_name": column, "count": int(counts.sum()),
                                     "num_nulls": int((part < 0).sum()), "distinct_count": int((counts > 0).sum()),
                                     "top_values": json.dumps(top)})
            if sketches:
                seen = np.nonzero(counts)[0]
                sketch_parts.setdefault(column, []).append({
                    **key, "column_name": column, "bucket": levels[seen],
                    "count": counts[seen], "total": np.full(len(seen), np.nan),
                })
    # Sketch rows in the order they always had: numeric columns as in `edges`, then categorical.
    ordered_parts = [part for column in [*spec.edges, *spec.categorical] for part in sketch_parts.get(column, [])]
    return profile_rows, ordered_parts


def _numeric_profile(present: np.ndarray, ordered: np.ndarray, nulls: int) -> dict[str, Any]:
    """`present`: the non-null values in row order (mean and std are summed in that order);
    `ordered`: the same values sorted."""
    count = len(ordered)
    distinct = int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1 if count else 0
    row: dict[str, Any] = {"count": count, "num_nulls": nulls, "distinct_count": distinct, "top_values": None}
    if count:
        quantiles = sorted_quantiles(ordered, QUANTILES)
        row.update(mean=present.mean(), stddev=present.std(ddof=1) if count > 1 else np.nan,
                   min=ordered[0], max=ordered[-1], **dict(zip(QUANTILE_COLUMNS, quantiles, strict=True)))
    return row


def sorted_quantiles(ordered: np.ndarray, quantiles: tuple[float, ...]) -> list[float]:
    """`np.quantile(values, quantiles)` (its default "linear" method) of sorted, non-empty
    values, read off by index: the same arithmetic as numpy's, without its partitioning.
    tests/monitoring/test_aggregate.py checks it against np.quantile value for value."""
    n = len(ordered)
    q = np.asarray(quantiles, dtype="float64")
    virtual = (n - 1) * q  # numpy's virtual index for "linear", written as numpy writes it
    previous = np.floor(virtual)
    following = previous + 1
    above, below = virtual >= n - 1, virtual < 0
    previous[above], following[above] = -1, -1
    previous[below], following[below] = 0, 0
    gamma = virtual - previous
    a, b = ordered[previous.astype(np.intp)], ordered[following.astype(np.intp)]
    difference = b - a
    value = a + difference * gamma
    upper = gamma >= 0.5
    value[upper] = (b - difference * (1 - gamma))[upper]
    return [float(v) for v in value]


def _numeric_sketch(ordered: np.ndarray, edges: np.ndarray) -> dict[str, Any]:
    """Bucket b holds the values with exactly b edges at or below them (`searchsorted(edges,
    value, side="right")`): its rows run from the first value >= edges[b-1] to the first
    value >= edges[b]."""
    cuts = np.concatenate([[0], np.searchsorted(ordered, edges, side="left"), [len(ordered)]])
    counts = np.diff(cuts)
    seen = np.nonzero(counts)[0]
    # Non-empty buckets are contiguous runs of the sorted values: one sum per run.
    totals = np.add.reduceat(ordered, cuts[seen]) if len(seen) else np.zeros(0)
    return {"bucket": seen.astype(str), "count": counts[seen], "total": totals}


def _profile_frame(rows: list[dict[str, Any]], keys: list[str]) -> pd.DataFrame:
    columns = [*keys, "column_name", "count", "num_nulls", "distinct_count", "mean", "stddev", "min", "max",
               *QUANTILE_COLUMNS, "top_values"]
    if not rows:
        return _empty(columns, keys)
    out = pd.DataFrame(rows).reindex(columns=columns)
    out[["count", "num_nulls", "distinct_count"]] = out[["count", "num_nulls", "distinct_count"]].astype("int64")
    floats = ["mean", "stddev", "min", "max", *QUANTILE_COLUMNS]
    out[floats] = out[floats].astype("float64").round(DIGITS)
    out["top_values"] = out["top_values"].astype(object).where(out["top_values"].notna(), None)
    return out


def _sketch_frame(parts: list[dict[str, Any]], keys: list[str]) -> pd.DataFrame:
    columns = [*keys, "column_name", "bucket", "count", "total"]
    if not parts:
        return _empty(columns, keys)
    out = pd.concat([pd.DataFrame(part) for part in parts], ignore_index=True).reindex(columns=columns)
    out["count"] = out["count"].astype("int64")
    out["total"] = out["total"].astype("float64")
    out["bucket"] = out["bucket"].astype(str)
    return out


def _table_frame(
    frame: Frame, groups: list[tuple[dict[str, Any], Rows]], keys: list[str], spec: ColumnSpec
) -> pd.DataFrame:
    columns = {
        "probability": np.asarray(frame[spec.probability], dtype="float64"),
        "predicted": np.asarray(frame[spec.prediction], dtype="int64"),
        "label": np.asarray(frame[LABEL], dtype="float64"),
        "calibrated": np.asarray(frame[CALIBRATED], dtype="float64"),
    }
    rows = [{**key, **_table_row(**{name: values[positions] for name, values in columns.items()})}
            for key, positions in groups]
    if not rows:
        return _empty([*keys, *TABLE_COLUMNS], keys)
    out = pd.DataFrame(rows)
    for column in TABLE_COLUMNS:
        if column not in ("count", "label_count"):
            out[column] = out[column].astype("float64")
    return out[[*keys, *TABLE_COLUMNS]]


TABLE_COLUMNS = [
    "count", "mean_probability", "predicted_positive_rate", "label_count", "labelled_share", "label_rate",
    "roc_auc", "pr_auc", "log_loss", "precision", "recall", "f1",
    "estimated_roc_auc", "estimated_precision", "estimated_recall", "estimated_f1",
]


def _table_row(probability: np.ndarray, predicted: np.ndarray, label: np.ndarray, calibrated: np.ndarray) -> dict[str, Any]:
    labelled = ~np.isnan(label)
    row: dict[str, Any] = {
        "count": len(probability),
        "mean_probability": _r(probability.mean()),
        "predicted_positive_rate": _r(predicted.mean()),
        "label_count": int(labelled.sum()),
        "labelled_share": _r(labelled.mean()),
        "label_rate": _r(label[labelled].mean()) if labelled.any() else None,
    }
    # One sort of the probabilities serves the realised and the estimated ROC AUC.
    order = np.argsort(probability)
    in_order = order[labelled[order]]  # the labelled rows, still in probability order
    row.update(_realised(label[in_order], probability[in_order], predicted[in_order]))
    row.update(_estimated(probability, predicted, calibrated, order))
    return row


def realised_quality(label: np.ndarray, probability: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Quality of the labelled rows; null where it is undefined (no labels, one class only).

    The same numbers as scikit-learn's log_loss, precision, recall, f1, average_precision
    and roc_auc scores (tests/monitoring/test_aggregate.py compares them), from one sort
    of the probabilities: scikit-learn's scorers check, sort and count again each time,
    which at millions of rows per window cost more than the rest of the monitor."""
    order = np.argsort(probability)
    return _realised(label[order], probability[order], predicted[order])


def _realised(label: np.ndarray, probability: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """`realised_quality` of rows sorted by probability (ascending)."""
    out: dict[str, Any] = dict.fromkeys(["roc_auc", "pr_auc", "log_loss", "precision", "recall", "f1"])
    if len(label) == 0:
        return out
    truth = label == 1
    clipped = np.clip(probability, 1e-15, 1 - 1e-15)
    out["log_loss"] = _r(-np.mean(np.where(truth, np.log(clipped), np.log1p(-clipped))))
    decided = predicted == 1
    tp = int(np.count_nonzero(truth & decided))
    fp = int(np.count_nonzero(decided)) - tp
    fn = int(np.count_nonzero(truth)) - tp
    if decided.any():
        out["precision"] = _r(tp / (tp + fp))
    if truth.any():
        out["recall"] = _r(tp / (tp + fn))
    if truth.any() or decided.any():
        out["f1"] = _r(2 * tp / (2 * tp + fp + fn))
    positive = truth.astype("float64")
    if truth.any():
        out["pr_auc"] = _r(_average_precision(probability, positive, 1 - positive))
    if 0 < tp + fn < len(truth):
        out["roc_auc"] = _r(_roc_auc(probability, positive, 1 - positive))
    return out


def _ties(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight per distinct score, scores sorted ascending."""
    starts = np.flatnonzero(np.concatenate([[True], scores[1:] != scores[:-1]]))
    if len(starts) == len(scores):  # no ties (the usual case for probabilities)
        return positive, negative
    return np.add.reduceat(positive, starts), np.add.reduceat(negative, starts)


def _roc_auc(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve (ties as diagonal steps, as scikit-learn draws them): the
    weight of positive-above-negative pairs, tied pairs counted half."""
    pos, neg = _ties(scores, positive, negative)
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + neg / 2)) / (pos.sum() * neg.sum()))


def _average_precision(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """scikit-learn's average precision: sum over thresholds (distinct scores, highest
    first) of the gain in recall times the precision there."""
    pos, neg = _ties(scores, positive, negative)
    tps, fps = np.cumsum(pos[::-1]), np.cumsum(neg[::-1])
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def estimated_quality(probability: np.ndarray, predicted: np.ndarray, calibrated: np.ndarray) -> dict[str, Any]:
    """CBPE: the expected confusion matrix and ROC AUC if each row's outcome were drawn with
    its calibrated probability. Null unless every row has a calibrated probability."""
    return _estimated(probability, predicted, calibrated, None)


def _estimated(
    probability: np.ndarray, predicted: np.ndarray, calibrated: np.ndarray, order: np.ndarray | None
) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(["estimated_roc_auc", "estimated_precision", "estimated_recall", "estimated_f1"])
    if len(calibrated) == 0 or np.isnan(calibrated).any():
        return out
    positive = predicted == 1
    tp = float(calibrated[positive].sum())
    fp = float((1 - calibrated[positive]).sum())
    fn = float(calibrated[~positive].sum())
    if tp + fp > 0:
        out["estimated_precision"] = _r(tp / (tp + fp))
    if tp + fn > 0:
        out["estimated_recall"] = _r(tp / (tp + fn))
    if 2 * tp + fp + fn > 0:
        out["estimated_f1"] = _r(2 * tp / (2 * tp + fp + fn))
    # Each row counts as a positive with weight c and as a negative with weight 1 - c.
    if 0 < calibrated.sum() < len(calibrated):
        order = np.argsort(probability) if order is None else order
        weight = calibrated[order]
        out["estimated_roc_auc"] = _r(_roc_auc(probability[order], weight, 1 - weight))
    return out


def _r(value: float) -> float | None:
    value = float(value)
    return round(value, DIGITS) if np.isfinite(value) else None


def _empty(columns: list[str], keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
