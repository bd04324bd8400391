"""churn.validation.leakage: single-feature AUCs and the too-good-to-be-true ceiling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import Dataset, Leakage, Train
from churn.training.pipeline import build_pipeline
from churn.validation.leakage import ceiling_check, feature_aucs, feature_checks, leakage_checks, single_feature_auc

LIMITS = Leakage(max_single_feature_auc=0.95, max_validation_auc=0.99, importance_repeats=2, importance_sample_size=500)


def _dataset() -> Dataset:
    return Dataset(
        name="t", id_column="id", label_column="y", positive_label="1", negative_label="0",
        numeric={"signal": {}, "leak": {}}, categorical={"plan": ["a", "b", "c"]},
    )


def _frame(n: int, seed: int, leak_noise: float = 0.05) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(int)
    return pd.DataFrame({
        "signal": signal,
        # Another model's output for the same outcome: the label plus a little noise.
        "leak": y + rng.normal(0, leak_noise, n),
        "plan": rng.choice(["a", "b", "c"], n),
        "y": y,
    })


def test_clean_features_pass_and_a_planted_leak_fails():
    aucs = feature_aucs(_frame(2000, 1), _dataset())
    assert 0.6 < aucs["signal"] < 0.85
    assert aucs["plan"] < 0.6
    assert aucs["leak"] > 0.99
    checks = {c.name: c for c in feature_checks(aucs, LIMITS)}
    assert checks["single_feature_auc.signal"].passed and checks["single_feature_auc.plan"].passed
    leak = checks["single_feature_auc.leak"]
    assert not leak.passed and leak.kind == "leakage" and "leak" in leak.reason()


def test_auc_is_direction_free_and_missing_values_rank_lowest():
    y = pd.Series([0, 0, 1, 1])
    assert single_feature_auc(pd.Series([4.0, 3.0, 2.0, 1.0]), y, numeric=True) == 1.0
    assert single_feature_auc(pd.Series([np.nan, np.nan, 1.0, 2.0]), y, numeric=True) == 1.0


def test_a_categorical_that_names_the_label_fails():
    y = pd.Series([0, 1] * 50)
    values = pd.Series(np.where(y == 1, "closed", "open"))
    assert single_feature_auc(values, y, numeric=False) == 1.0


def test_one_class_fails_closed():
    frame = _frame(100, 2).assign(y=0)
    checks = feature_checks(feature_aucs(frame, _dataset()), LIMITS)
    assert checks and not any(c.passed for c in checks)
    assert "could not check" in checks[0].reason()


def test_ceiling_names_the_top_permutation_feature():
    dataset = _dataset()
    train, validation = _frame(1500, 3, leak_noise=0.01), _frame(800, 4, leak_noise=0.01)
    config = Train(family="logistic_regression")
    model = build_pipeline(dataset, config).fit(train[dataset.feature_columns], train["y"])
    auc = 0.999
    checks, _ = leakage_checks(model, train, validation, dataset, LIMITS, auc, seed=0)
    ceiling = {c.name: c for c in checks}["validation_roc_auc_ceiling"]
    assert not ceiling.passed
    assert "top permutation-importance feature: leak" in ceiling.reason()


@pytest.mark.parametrize("auc, passes", [(0.86, True), (0.99, True), (0.995, False)])
def test_ceiling_threshold(auc, passes):
    [check] = ceiling_check(auc, LIMITS, None)
    assert check.passed is passes


def test_null_thresholds_switch_checks_off():
    off = Leakage(max_single_feature_auc=None, max_validation_auc=None)
    assert feature_checks({"x": 1.0}, off) == [] and ceiling_check(1.0, off, None) == []
