"""churn.monitoring.distances: drift statistics from sketches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from churn.config import MonitorDrift
from churn.monitoring.aggregate import ColumnSpec, sketch
from churn.monitoring.distances import DRIFT, INSUFFICIENT, NO_DRIFT, Side, compare

SETTINGS = MonitorDrift()


def side(values, edges=None, categorical=False):
    frame = pd.DataFrame({"k": "a", "v": values})
    spec = ColumnSpec(numeric=[] if categorical else ["v"], categorical=["v"] if categorical else [],
                      probability="v", prediction="v", edges={} if categorical else {"v": edges})
    part = sketch(frame, ["k"], spec)
    return Side.of(part["bucket"].to_numpy(object), part["count"].to_numpy(), part["total"].to_numpy(), not categorical)


@pytest.fixture
def reference():
    return np.random.default_rng(1).normal(0, 1, 20000)


def edges_of(values, bins=50):
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def test_same_distribution_is_no_drift(reference):
    edges = edges_of(reference)
    current = np.random.default_rng(2).normal(0, 1, 5000)
    out = compare(side(reference, edges), side(current, edges), numeric=True, reference_std=1.0, settings=SETTINGS, min_rows=100)
    assert out["status"] == NO_DRIFT and out["method"] == "wasserstein" and out["drifted"] is False
    assert out["wasserstein_distance"] < 0.05 and out["psi"] < 0.02


def test_shift_is_drift_and_wasserstein_is_close_to_exact(reference):
    edges = edges_of(reference)
    current = np.random.default_rng(2).normal(0.5, 1, 5000)
    out = compare(side(reference, edges), side(current, edges), numeric=True, reference_std=1.0, settings=SETTINGS, min_rows=100)
    assert out["status"] == DRIFT and out["drifted"] is True
    exact = stats.wasserstein_distance(reference, current)
    assert out["wasserstein_distance"] == pytest.approx(exact, abs=0.05)
    assert out["p_value"] < 1e-6


def test_small_windows_use_a_test(reference):
    edges = edges_of(reference)
    current = np.random.default_rng(3).normal(0, 1, 300)
    out = compare(side(reference, edges), side(current, edges), numeric=True, reference_std=1.0, settings=SETTINGS, min_rows=100)
    assert out["method"] == "ks" and out["threshold"] == SETTINGS.ks and out["status"] == NO_DRIFT
    exact = stats.ks_2samp(reference, current).pvalue
    assert out["p_value"] == pytest.approx(exact, abs=0.1)  # on the bucket grid: a little less power


def test_categorical(reference):
    rng = np.random.default_rng(4)
    base = side(rng.choice(["a", "b", "c"], 20000, p=[0.5, 0.3, 0.2]), categorical=True)
    same = side(rng.choice(["a", "b", "c"], 5000, p=[0.5, 0.3, 0.2]), categorical=True)
    moved = side(rng.choice(["a", "b", "c", "d"], 5000, p=[0.2, 0.3, 0.2, 0.3]), categorical=True)
    assert compare(base, same, numeric=False, reference_std=None, settings=SETTINGS, min_rows=100)["status"] == NO_DRIFT
    out = compare(base, moved, numeric=False, reference_std=None, settings=SETTINGS, min_rows=100)
    assert out["method"] == "jensenshannon" and out["status"] == DRIFT and out["js_distance"] > 0.1


def test_too_few_rows_is_insufficient_never_a_verdict(reference):
    edges = edges_of(reference)
    out = compare(side(reference, edges), side(reference[:50] + 5, edges), numeric=True, reference_std=1.0,
                  settings=SETTINGS, min_rows=100)
    assert out["status"] == INSUFFICIENT and out["drifted"] is None and out["js_distance"] is None
