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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

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


def aggregate(frame: pd.DataFrame, keys: list[str], spec: ColumnSpec) -> Aggregates:
    """All three aggregates of `frame`, grouped by `keys` (groups with no rows are absent)."""
    return Aggregates(
        profile=profile(frame, keys, spec),
        sketch=sketch(frame, keys, spec),
        table=table(frame, keys, spec),
    )


def _groups(frame: pd.DataFrame, keys: list[str]) -> Any:
    return frame.groupby(keys, observed=True, sort=True, dropna=False)


def _split(frame: pd.DataFrame, keys: list[str]) -> list[tuple[dict[str, Any], np.ndarray]]:
    """(key values, row positions) per group, in key order."""
    if not len(frame):
        return []
    out = []
    for key, positions in _groups(frame, keys).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        out.append((dict(zip(keys, key, strict=True)), np.asarray(positions)))
    return sorted(out, key=lambda item: tuple(str(v) for v in item[0].values()))


def _levels(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Category codes (-1 = null) and the levels as text, without copying a categorical."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), np.asarray(values.cat.categories.astype(str))
    codes, uniques = pd.factorize(values, sort=True)
    return codes, np.asarray(pd.Index(uniques).astype(str))


def profile(frame: pd.DataFrame, keys: list[str], spec: ColumnSpec) -> pd.DataFrame:
    rows = []
    groups = _split(frame, keys)
    for column in spec.numeric:
        values = frame[column].to_numpy("float64")
        for key, positions in groups:
            part = values[positions]
            present = part[~np.isnan(part)]
            row = {**key, "column_name": column, "count": len(present), "num_nulls": len(part) - len(present),
                   "distinct_count": int(pd.unique(present).size), "top_values": None}
            if len(present):
                quantiles = np.quantile(present, QUANTILES)
                row.update(mean=present.mean(), stddev=present.std(ddof=1) if len(present) > 1 else np.nan,
                           min=present.min(), max=present.max(), **dict(zip(QUANTILE_COLUMNS, quantiles, strict=True)))
            rows.append(row)
    for column in spec.categorical:
        codes, levels = _levels(frame[column])
        for key, positions in groups:
            part = codes[positions]
            counts = np.bincount(part[part >= 0], minlength=len(levels))
            order = np.lexsort((levels, -counts))[:TOP_VALUES]
            top = [[str(levels[i]), int(counts[i])] for i in order if counts[i] > 0]
            rows.append({**key, "column_name": column, "count": int(counts.sum()),
                         "num_nulls": int((part < 0).sum()), "distinct_count": int((counts > 0).sum()),
                         "top_values": json.dumps(top)})
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


def sketch(frame: pd.DataFrame, keys: list[str], spec: ColumnSpec) -> pd.DataFrame:
    """Bucket counts and value totals per group and column (buckets as text)."""
    columns = [*keys, "column_name", "bucket", "count", "total"]
    groups = _split(frame, keys)
    parts: list[dict[str, Any]] = []
    for column, edges in spec.edges.items():
        values = frame[column].to_numpy("float64")
        n_buckets = len(edges) + 1
        for key, positions in groups:
            part = values[positions]
            part = part[~np.isnan(part)]
            bucket = np.searchsorted(edges, part, side="right")
            counts = np.bincount(bucket, minlength=n_buckets)
            totals = np.bincount(bucket, weights=part, minlength=n_buckets)
            seen = np.nonzero(counts)[0]
            parts.append({**key, "column_name": column, "bucket": seen.astype(str),
                          "count": counts[seen], "total": totals[seen]})
    for column in spec.categorical:
        codes, levels = _levels(frame[column])
        for key, positions in groups:
            part = codes[positions]
            counts = np.bincount(part[part >= 0], minlength=len(levels))
            seen = np.nonzero(counts)[0]
            parts.append({**key, "column_name": column, "bucket": levels[seen],
                          "count": counts[seen], "total": np.full(len(seen), np.nan)})
    if not parts:
        return _empty(columns, keys)
    out = pd.concat([pd.DataFrame(part) for part in parts], ignore_index=True).reindex(columns=columns)
    out["count"] = out["count"].astype("int64")
    out["total"] = out["total"].astype("float64")
    out["bucket"] = out["bucket"].astype(str)
    return out


def table(frame: pd.DataFrame, keys: list[str], spec: ColumnSpec) -> pd.DataFrame:
    rows = [{**key, **_table_row(frame.iloc[positions], spec)} for key, positions in _split(frame, keys)]
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


def _table_row(part: pd.DataFrame, spec: ColumnSpec) -> dict[str, Any]:
    probability = part[spec.probability].to_numpy(dtype="float64")
    predicted = part[spec.prediction].to_numpy(dtype="int64")
    label = part[LABEL].to_numpy(dtype="float64")
    labelled = ~np.isnan(label)
    row: dict[str, Any] = {
        "count": len(part),
        "mean_probability": _r(probability.mean()),
        "predicted_positive_rate": _r(predicted.mean()),
        "label_count": int(labelled.sum()),
        "labelled_share": _r(labelled.mean()),
        "label_rate": _r(label[labelled].mean()) if labelled.any() else None,
    }
    row.update(realised_quality(label[labelled], probability[labelled], predicted[labelled]))
    calibrated = part[CALIBRATED].to_numpy(dtype="float64")
    row.update(estimated_quality(probability, predicted, calibrated))
    return row


def realised_quality(label: np.ndarray, probability: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Quality of the labelled rows; null where it is undefined (no labels, one class only)."""
    out: dict[str, Any] = dict.fromkeys(["roc_auc", "pr_auc", "log_loss", "precision", "recall", "f1"])
    if len(label) == 0:
        return out
    truth = label.astype("int64")
    out["log_loss"] = _r(skm.log_loss(truth, np.clip(probability, 1e-15, 1 - 1e-15), labels=[0, 1]))
    if predicted.any():
        out["precision"] = _r(skm.precision_score(truth, predicted, zero_division=0))
    if truth.any():
        out["recall"] = _r(skm.recall_score(truth, predicted, zero_division=0))
        out["pr_auc"] = _r(skm.average_precision_score(truth, probability))
    if truth.any() or predicted.any():
        out["f1"] = _r(skm.f1_score(truth, predicted, zero_division=0))
    if 0 < truth.sum() < len(truth):
        out["roc_auc"] = _r(skm.roc_auc_score(truth, probability))
    return out


def estimated_quality(probability: np.ndarray, predicted: np.ndarray, calibrated: np.ndarray) -> dict[str, Any]:
    """CBPE: the expected confusion matrix and ROC AUC if each row's outcome were drawn with
    its calibrated probability. Null unless every row has a calibrated probability."""
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
        n = len(probability)
        truth = np.concatenate([np.ones(n), np.zeros(n)])
        scores = np.concatenate([probability, probability])
        weights = np.concatenate([calibrated, 1 - calibrated])
        out["estimated_roc_auc"] = _r(skm.roc_auc_score(truth, scores, sample_weight=weights))
    return out


def _r(value: float) -> float | None:
    value = float(value)
    return round(value, DIGITS) if np.isfinite(value) else None


def _empty(columns: list[str], keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
