"""Drift statistics between two sketches of one column (bucket counts and totals).

Every number comes from the sketches (see `aggregate.sketch`), never from raw rows:

* `js_distance`  Jensen-Shannon distance of the bucket shares (scipy, natural log).
* `psi`          population stability index, shares floored at 1e-4 (as evidently does).
* `wasserstein_distance` (numeric) the earth mover's distance between the two sides, each
  side's mass placed at its own mean value of every bucket, divided by the baseline's
  standard deviation ("normed", as evidently's default). Exact for columns with fewer
  distinct values than buckets, within about a bucket's width otherwise.
* `p_value`      two-sample KS on the bucket grid (numeric; the statistic is the largest
  CDF gap at the bucket edges) or chi-squared on the bucket counts (categorical).

Which one decides follows evidently's defaults: with at most `test_max_rows` rows on the
smaller side a test (drift when p < threshold), otherwise a distance (drift when it is at
least the threshold: Wasserstein for numeric, Jensen-Shannon for categorical columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats
from scipy.spatial import distance

from churn.config import MonitorDrift

INSUFFICIENT = "insufficient data"
DRIFT = "drift"
NO_DRIFT = "no drift"
_FLOOR = 1e-4
DIGITS = 6


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its buckets (sorted; bin numbers for numeric columns,
    levels for categorical ones), their counts and value totals (NaN for levels)."""

    buckets: np.ndarray
    counts: np.ndarray
    totals: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def of(cls, buckets: np.ndarray, counts: np.ndarray, totals: np.ndarray, numeric: bool) -> Side:
        keys = buckets.astype("int64") if numeric else buckets.astype(str)
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], counts[order].astype("float64"), totals[order].astype("float64"))


def compare(
    reference: Side, current: Side, *, numeric: bool, reference_std: float | None, settings: MonitorDrift, min_rows: int
) -> dict[str, Any]:
    """One drift row's statistics; status INSUFFICIENT (all null) when a side is too small."""
    out: dict[str, Any] = {
        "js_distance": None, "wasserstein_distance": None, "psi": None, "p_value": None,
        "method": None, "threshold": None, "drifted": None, "status": INSUFFICIENT,
    }
    if reference.rows < min_rows or current.rows < min_rows:
        return out
    buckets = np.union1d(reference.buckets, current.buckets)
    ref = _align(reference, buckets)
    cur = _align(current, buckets)
    p, q = ref[0] / ref[0].sum(), cur[0] / cur[0].sum()
    out["js_distance"] = _r(distance.jensenshannon(p, q))
    pf, qf = np.maximum(p, _FLOOR), np.maximum(q, _FLOOR)
    out["psi"] = _r(np.sum((qf - pf) * np.log(qf / pf)))
    small = min(reference.rows, current.rows) <= settings.test_max_rows
    if numeric:
        out["wasserstein_distance"] = _wasserstein(ref, cur, reference_std)
        gap = float(np.max(np.abs(np.cumsum(p) - np.cumsum(q))))
        n, m = reference.rows, current.rows
        # The asymptotic two-sample distribution (scipy's ks_2samp method="asymp").
        out["p_value"] = _r(special.kolmogorov(np.sqrt(n * m / (n + m)) * gap))
        method, value, threshold = (
            ("ks", out["p_value"], settings.ks) if small
            else ("wasserstein", out["wasserstein_distance"], settings.wasserstein)
        )
    else:
        seen = (ref[0] + cur[0]) > 0
        if seen.sum() > 1:
            out["p_value"] = _chi2_p(ref[0][seen], cur[0][seen])
        else:
            out["p_value"] = 1.0  # one level on both sides: nothing moved
        method, value, threshold = (
            ("chisquare", out["p_value"], settings.chisquare) if small
            else ("jensenshannon", out["js_distance"], settings.jensenshannon)
        )
    out["method"], out["threshold"] = method, threshold
    if value is None:
        return out | {"status": INSUFFICIENT}
    drifted = value < threshold if method in ("ks", "chisquare") else value >= threshold
    out["drifted"] = bool(drifted)
    out["status"] = DRIFT if drifted else NO_DRIFT
    return out


def _chi2_p(ref: np.ndarray, cur: np.ndarray) -> float | None:
    """Pearson's chi-squared test of homogeneity on the 2 x k table (chi2_contingency
    without its per-call overhead; no continuity correction, as for k > 2)."""
    table = np.vstack([ref, cur])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return _r(special.chdtrc(table.shape[1] - 1, statistic))


def _align(side: Side, buckets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    position = np.searchsorted(buckets, side.buckets)
    counts = np.zeros(len(buckets))
    totals = np.zeros(len(buckets))
    counts[position] = side.counts
    totals[position] = np.nan_to_num(side.totals)
    return counts, totals


def _wasserstein(ref: tuple[np.ndarray, np.ndarray], cur: tuple[np.ndarray, np.ndarray], std: float | None) -> float | None:
    if std is None:
        return None
    ref_at, cur_at = ref[0] > 0, cur[0] > 0
    ref_means = ref[1][ref_at] / ref[0][ref_at]
    cur_means = cur[1][cur_at] / cur[0][cur_at]
    value = stats.wasserstein_distance(ref_means, cur_means, ref[0][ref_at], cur[0][cur_at])
    # evidently floors the scale the same way, so constant columns do not divide by zero.
    return _r(value / max(float(std), 0.001))


def _r(value: float) -> float | None:
    value = float(value)
    return round(value, DIGITS) if np.isfinite(value) else None
