"""churn.core.metrics: the shared metric set, checked against scikit-learn directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from churn.core.metrics import classification_metrics

NAMES = {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier"}


def _sklearn(y, p, threshold):
    predicted = (p >= threshold).astype(int)
    return {
        "roc_auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
        "f1": skm.f1_score(y, predicted),
        "precision": skm.precision_score(y, predicted, zero_division=0),
        "recall": skm.recall_score(y, predicted),
        "accuracy": skm.accuracy_score(y, predicted),
        "log_loss": skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)),
        "brier": skm.brier_score_loss(y, p),
    }


def test_metric_names():
    result = classification_metrics([0, 1, 0, 1], [0.1, 0.8, 0.4, 0.6], 0.5)
    assert set(result) == NAMES
    assert all(isinstance(v, float) for v in result.values())


def test_perfect_predictions():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = y.astype(float)
    result = classification_metrics(y, p, 0.5)
    for name in ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy"):
        assert result[name] == 1.0, name
    assert result["brier"] == 0.0
    assert result["log_loss"] == pytest.approx(0.0, abs=1e-6)


def test_random_predictions_match_sklearn():
    rng = np.random.default_rng(42)
    y = rng.integers(0, 2, 2000)
    p = rng.random(2000)
    result = classification_metrics(y, p, 0.35)
    expected = _sklearn(y, p, 0.35)
    for name in NAMES:
        assert result[name] == pytest.approx(expected[name], abs=5e-7), name
    assert abs(result["roc_auc"] - 0.5) < 0.05  # sanity: random scores are uninformative


def test_threshold_is_inclusive():
    result = classification_metrics([1, 0], [0.35, 0.1], 0.35)
    assert result["recall"] == 1.0


def test_extreme_probabilities_give_finite_log_loss():
    result = classification_metrics([1, 0], [0.0, 1.0], 0.5)
    assert math.isfinite(result["log_loss"]) and result["log_loss"] > 10


def test_no_positive_predictions_do_not_warn_or_crash():
    result = classification_metrics([0, 1, 1], [0.1, 0.2, 0.3], 0.9)
    assert result["precision"] == 0.0 and result["recall"] == 0.0 and result["f1"] == 0.0


def test_rounded_to_six_digits():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 333)
    p = rng.random(333)
    result = classification_metrics(y, p, 0.5)
    expected = _sklearn(y, p, 0.5)
    for name, value in result.items():
        assert value == round(float(expected[name]), 6), name
        assert round(value, 6) == value
    assert any(round(float(v), 6) != float(v) for v in expected.values())  # rounding did something


def test_accepts_lists_and_pandas():
    import pandas as pd
    y, p = [0, 1, 1, 0], [0.2, 0.7, 0.4, 0.5]
    assert classification_metrics(pd.Series(y), pd.Series(p), 0.5) == classification_metrics(y, p, 0.5)
