"""churn.validation.leakage: single-feature AUCs and the too-good-to-be-true ceiling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

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


# ------------------------------------------------ every part of the guard, one at a time (issue 14)

from sklearn.inspection import permutation_importance  # noqa: E402

from churn.validation.gates import Check  # noqa: E402
from churn.validation.leakage import TopFeature, top_permutation_feature  # noqa: E402


def test_missing_values_rank_lowest_even_below_negative_values():
    y = pd.Series([1, 1, 0, 0])
    # missing ranks below -5: no positive outranks a negative (AUC 0, i.e. 1 the other way round)
    assert single_feature_auc(pd.Series([-5.0, np.nan, -3.0, -4.0]), y, numeric=True) == 1.0
    # text that is no number is missing too
    assert single_feature_auc(pd.Series(["-5", "n/a", "-3", "-4"]), y, numeric=True) == 1.0
    # a column with no value at all ranks nobody
    assert single_feature_auc(pd.Series([np.nan] * 4), y, numeric=True) == 0.5


def test_a_categorical_scores_each_level_by_its_churn_rate():
    y = pd.Series([1, 1, 0, 1, 0, 0])
    values = pd.Series(["a", "a", "a", "b", "b", "b"])  # churn rates 2/3 and 1/3
    assert single_feature_auc(values, y, numeric=False) == pytest.approx(2 / 3)
    assert single_feature_auc(values, 1 - y, numeric=False) == pytest.approx(2 / 3)


def test_feature_aucs_are_rounded_to_six_places_and_null_for_one_class():
    dataset = Dataset(name="t", id_column="id", label_column="y", positive_label="1", negative_label="0",
                      numeric={"x": {}}, categorical={"plan": ["a", "b"]})
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 0.5, 2.5, 1.5], "plan": ["a", "a", "a", "b", "b", "b"],
                          "y": [1, 1, 0, 1, 0, 0]})
    assert feature_aucs(frame, dataset) == {"x": 0.888889, "plan": 0.666667}
    assert feature_aucs(frame.assign(y=1), dataset) == {"x": None, "plan": None}


def test_each_feature_check_is_a_leakage_check_against_the_limit():
    checks = feature_checks({"clean": 0.7, "leak": 0.97, "unknown": None}, LIMITS)
    assert checks == [
        Check("single_feature_auc.clean", "leakage", 0.7, "<=", 0.95, True, ""),
        Check("single_feature_auc.leak", "leakage", 0.97, "<=", 0.95, False,
              "leak alone separates the labels: a leak of the outcome?"),
        Check("single_feature_auc.unknown", "leakage", 1.0, "<=", 0.95, False, "could not check: one label class only"),
    ]
    # a feature exactly at the limit passes, with no note
    assert feature_checks({"edge": 0.95}, LIMITS) == [Check("single_feature_auc.edge", "leakage", 0.95, "<=", 0.95,
                                                            True, "")]


def test_the_ceiling_check_says_too_good_to_be_true_and_names_the_culprit_when_known():
    assert ceiling_check(0.995, LIMITS, TopFeature("leak", 0.41)) == [
        Check("validation_roc_auc_ceiling", "leakage", 0.995, "<=", 0.99, False,
              "too good to be true; top permutation-importance feature: leak (importance 0.41)")
    ]
    assert ceiling_check(0.995, LIMITS, None)[0].note == "too good to be true"
    assert ceiling_check(0.9, LIMITS, TopFeature("leak", 0.41))[0].note == ""


def test_permutation_importance_is_computed_only_when_the_ceiling_is_broken():
    dataset = _dataset()
    train, validation = _frame(300, 5), _frame(200, 6)
    # No model at all: computing importance would fail, so none is computed below the ceiling...
    checks, aucs = leakage_checks(None, train, validation, dataset, LIMITS, 0.9, seed=0)
    assert [c.name for c in checks][-1] == "validation_roc_auc_ceiling" and checks[-1].passed
    assert set(aucs) == {"signal", "leak", "plan"}
    # ...nor when the ceiling is switched off, whatever the AUC.
    off = LIMITS.model_copy(update={"max_validation_auc": None})
    checks, _ = leakage_checks(None, train, validation, dataset, off, 1.0, seed=0)
    assert "validation_roc_auc_ceiling" not in [c.name for c in checks]


def test_the_top_feature_is_sklearn_permutation_importance_on_at_most_the_sample_size():
    dataset = _dataset()
    train = _frame(600, 7, leak_noise=0.3)
    model = build_pipeline(dataset, Train(family="logistic_regression")).fit(train[dataset.feature_columns], train["y"])
    limits = LIMITS.model_copy(update={"importance_sample_size": 100, "importance_repeats": 1})
    exact = _frame(100, 8, leak_noise=0.3)  # exactly the sample size: every row, in its order
    expected = permutation_importance(model, exact[dataset.feature_columns], exact["y"], scoring="roc_auc",
                                      n_repeats=1, random_state=3, n_jobs=1)
    top = top_permutation_feature(model, exact, dataset, limits, seed=3)
    best = int(np.argmax(expected.importances_mean))
    assert top == TopFeature(dataset.feature_columns[best], round(float(expected.importances_mean[best]), 6))
    larger = _frame(300, 9, leak_noise=0.3)  # more rows: a seeded sample of 100 of them
    sample = larger.sample(n=100, random_state=3)
    expected = permutation_importance(model, sample[dataset.feature_columns], sample["y"], scoring="roc_auc",
                                      n_repeats=1, random_state=3, n_jobs=1)
    best = int(np.argmax(expected.importances_mean))
    assert top_permutation_feature(model, larger, dataset, limits, seed=3) == TopFeature(
        dataset.feature_columns[best], round(float(expected.importances_mean[best]), 6))


def test_ties_in_importance_go_to_the_first_name_in_alphabetical_order():
    class Constant:  # a model that ignores its input: every feature's importance is 0
        def fit(self, X, y):
            return self

        def predict_proba(self, X):
            return np.tile([0.5, 0.5], (len(X), 1))

        classes_ = np.array([0, 1])

    from sklearn.base import BaseEstimator, ClassifierMixin

    class Model(Constant, ClassifierMixin, BaseEstimator):
        pass

    dataset = _dataset()
    top = top_permutation_feature(Model(), _frame(120, 10), dataset, LIMITS, seed=0)
    assert top == TopFeature("leak", 0.0)  # "leak" < "plan" < "signal"


def test_a_categorical_is_scored_by_row_whatever_the_index():
    values = pd.Series(["a", "a", "a", "b", "b", "b"], index=[10, 11, 12, 13, 14, 15])  # a split keeps its index
    assert single_feature_auc(values, [1, 1, 0, 1, 0, 0], numeric=False) == pytest.approx(2 / 3)


def test_the_top_feature_is_the_most_important_not_the_first_by_name():
    dataset = _dataset()
    train = _frame(600, 11, leak_noise=50.0)  # "leak" is noise here: "signal" carries the label
    model = build_pipeline(dataset, Train(family="logistic_regression")).fit(train[dataset.feature_columns], train["y"])
    limits = LIMITS.model_copy(update={"importance_sample_size": 100, "importance_repeats": 1})
    assert top_permutation_feature(model, _frame(100, 12, leak_noise=50.0), dataset, limits, seed=0).name == "signal"


def test_at_the_ceiling_nothing_is_too_good_and_no_importance_is_computed():
    assert ceiling_check(0.99, LIMITS, TopFeature("leak", 0.41))[0].note == ""
    checks, _ = leakage_checks(None, _frame(300, 5), _frame(200, 6), _dataset(), LIMITS, 0.99, seed=0)
    assert checks[-1].passed and checks[-1].note == ""


def test_the_culprit_search_is_seeded():
    dataset = _dataset()
    train, validation = _frame(400, 13, leak_noise=0.01), _frame(300, 14, leak_noise=0.01)
    model = build_pipeline(dataset, Train(family="logistic_regression")).fit(train[dataset.feature_columns], train["y"])
    limits = LIMITS.model_copy(update={"importance_sample_size": 100, "importance_repeats": 1})
    first, _ = leakage_checks(model, train, validation, dataset, limits, 0.999, seed=0)
    second, _ = leakage_checks(model, train, validation, dataset, limits, 0.999, seed=0)
    assert first[-1].note == second[-1].note and "top permutation-importance feature: leak" in first[-1].note


@pytest.mark.parametrize("seed", range(5))
def test_auc_from_distinct_scores_is_scikit_learns_on_every_row(seed):
    # The AUC is computed once per distinct (score, label) pair, weighted by its rows: it
    # must be scikit-learn's figure on the rows themselves, bit for bit, ties and all.
    rng = np.random.default_rng(seed)
    n = 5_000
    y = pd.Series(rng.integers(0, 2, n))
    levels = pd.Series(rng.choice(["a", "b", "c", "d"], n))
    numbers = pd.Series(np.round(rng.normal(size=n), 1))  # many ties
    numbers[rng.random(n) < 0.05] = np.nan
    for values, numeric in ((levels, False), (numbers, True), (pd.Series(rng.normal(size=n)), True)):
        score = values.fillna(values.min() - 1.0) if numeric else values.map(y.groupby(values).mean())
        expected = roc_auc_score(y, score)
        assert single_feature_auc(values, y, numeric=numeric) == max(expected, 1.0 - expected)
