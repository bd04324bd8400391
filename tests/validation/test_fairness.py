"""churn.validation.fairness: parity, equal-opportunity and predictive-parity differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import Fairness, Slices
from churn.validation.fairness import attribute_fairness, fairness_checks, summary

SIZES = Slices(min_rows=100, min_class_rows=10)
LIMITS = Fairness(protected=["group"], max_statistical_parity_difference=0.1,
                  max_equal_opportunity_difference=0.1, max_predictive_parity_difference=0.1)


def _data(bias: float, n: int = 4000, seed: int = 0):
    """Same churn rate in both groups; `bias` is added to group B's scores."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], n)
    y = (rng.random(n) < 0.3).astype(int)
    proba = np.clip(0.2 + 0.4 * y + rng.normal(0, 0.15, n) + bias * (group == "B"), 0, 1)
    return pd.DataFrame({"group": group}), y, proba


def test_unbiased_scores_pass():
    frame, y, proba = _data(0.0)
    result = attribute_fairness(frame, y, proba, 0.4, "group", SIZES)
    assert result.groups == ["A", "B"]
    checks = fairness_checks([result], LIMITS)
    assert len(checks) == 3 and all(c.passed and c.kind == "fairness" for c in checks)


def test_biased_scores_fail_with_the_right_differences():
    frame, y, proba = _data(0.3)
    result = attribute_fairness(frame, y, proba, 0.4, "group", SIZES)
    predicted = proba >= 0.4
    a, b = (frame["group"] == "A").to_numpy(), (frame["group"] == "B").to_numpy()
    parity = abs(predicted[b].mean() - predicted[a].mean())
    recall = abs(predicted[b & (y == 1)].mean() - predicted[a & (y == 1)].mean())
    assert result.differences["statistical_parity_difference"] == pytest.approx(parity, abs=1e-6)
    assert result.differences["equal_opportunity_difference"] == pytest.approx(recall, abs=1e-6)
    failing = {c.name for c in fairness_checks([result], LIMITS) if not c.passed}
    assert {"statistical_parity_difference.group", "predictive_parity_difference.group"} <= failing


def test_small_groups_are_left_out_and_a_lone_group_fails_closed():
    frame, y, proba = _data(0.0, n=400)
    frame.loc[frame.index[:380], "group"] = "A"  # B keeps ~20 rows
    result = attribute_fairness(frame, y, proba, 0.4, "group", SIZES)
    assert result.groups == ["A"] and "B" in result.left_out and result.differences == {}
    checks = fairness_checks([result], LIMITS)
    assert checks and not any(c.passed for c in checks)
    assert "could not check" in checks[0].reason()


def test_summary_takes_the_largest_difference():
    frame, y, proba = _data(0.3)
    fair = attribute_fairness(frame, y, proba, 0.4, "group", SIZES)
    assert summary([fair])["max_statistical_parity_difference"] == fair.differences["statistical_parity_difference"]
    assert summary([])["max_statistical_parity_difference"] is None
