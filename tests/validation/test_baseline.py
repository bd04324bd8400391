"""churn.validation.baseline: the candidate must beat simpler models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.config import Baseline, Dataset, Train
from churn.core.clean import clean_features, encode_labels
from churn.core.contract import validate_raw
from churn.core.splits import read_split
from churn.data.simulate import simulate
from churn.validation.baseline import BaselineResult, baseline_checks, fit_baselines, fit_baselines_from_files

SETTINGS = Baseline(min_gain=0.001, models=["prior", "logistic_regression"])


def _dataset() -> Dataset:
    return Dataset(name="t", id_column="id", label_column="y", positive_label="1", negative_label="0",
                   numeric={"x1": {}, "x2": {}}, categorical={"plan": ["a", "b"]})


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x1 - x2)))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "plan": rng.choice(["a", "b"], n), "y": y})


def test_baselines_score_on_validation():
    result = fit_baselines(_frame(1500, 1), _frame(600, 2), _dataset(), Train(family="hist_gradient_boosting"), SETTINGS)
    assert result.roc_auc["prior"] == 0.5
    assert result.roc_auc["logistic_regression"] > 0.75  # the true model is logistic


def test_constant_score_model_loses_to_the_baseline():
    result = fit_baselines(_frame(1500, 1), _frame(600, 2), _dataset(), Train(family="hist_gradient_boosting"), SETTINGS)
    checks = {c.name: c for c in baseline_checks(0.5, result, SETTINGS)}  # a constant score has AUC 0.5
    assert not checks["roc_auc_gain_over.prior"].passed
    assert not checks["roc_auc_gain_over.logistic_regression"].passed
    assert checks["roc_auc_gain_over.logistic_regression"].kind == "baseline"
    assert "candidate 0.5000 vs logistic_regression" in checks["roc_auc_gain_over.logistic_regression"].reason()


def test_a_better_candidate_passes_and_the_gain_is_inclusive():
    result = BaselineResult({"prior": 0.5, "logistic_regression": 0.80})
    assert all(c.passed for c in baseline_checks(0.85, result, SETTINGS))
    [_, lr] = baseline_checks(0.801, result, SETTINGS)
    assert lr.passed and lr.value == 0.001
    [_, lr] = baseline_checks(0.8005, result, SETTINGS)
    assert not lr.passed


def test_the_candidates_own_family_is_skipped_and_null_gain_switches_off():
    result = fit_baselines(_frame(500, 1), _frame(200, 2), _dataset(), Train(family="logistic_regression"), SETTINGS)
    assert set(result.roc_auc) == {"prior"} and "logistic_regression" in result.skipped
    assert baseline_checks(0.5, result, Baseline(min_gain=None)) == []


def test_a_large_training_set_is_sampled_to_sample_size():
    train, validation, candidate = _frame(6000, 1), _frame(600, 2), Train(family="hist_gradient_boosting", seed=7)
    settings = Baseline(min_gain=0.001, models=["logistic_regression"], sample_size=1000)
    sampled = fit_baselines(train, validation, _dataset(), candidate, settings)
    by_hand = fit_baselines(train.sample(n=1000, random_state=7), validation, _dataset(), candidate, settings)
    whole = fit_baselines(train, validation, _dataset(), candidate, settings.model_copy(update={"sample_size": 10_000}))
    assert sampled.roc_auc == by_hand.roc_auc
    assert sampled.roc_auc != whole.roc_auc
    # At or below the size, every row is used.
    assert fit_baselines(train, validation, _dataset(), candidate,
                         Baseline(min_gain=0.001, models=["logistic_regression"], sample_size=6000)).roc_auc == whole.roc_auc


def test_from_files_fits_on_the_same_sample_as_from_the_whole_frames(tmp_path, params):
    dataset = params.dataset
    typed = validate_raw(simulate(2000, seed=3).astype(str), dataset, source="raw")
    split = clean_features(typed, dataset).assign(**{dataset.label_column: encode_labels(typed, dataset)[dataset.label_column]})
    paths = params.paths.model_copy(update={"train_set": tmp_path / "train.parquet",
                                            "validation_set": tmp_path / "validation.parquet"})
    cut = len(split) * 3 // 4
    split.iloc[:cut].to_parquet(paths.train_set, index=False)
    split.iloc[cut:].to_parquet(paths.validation_set, index=False)
    settings = params.validation.baseline.model_copy(update={"sample_size": cut // 2})  # fewer rows than the set
    project = params.model_copy(update={"paths": paths,
                                        "validation": params.validation.model_copy(update={"baseline": settings})})
    from_files = fit_baselines_from_files(project)
    whole = fit_baselines(read_split(paths.train_set, dataset), read_split(paths.validation_set, dataset),
                          dataset, params.train, settings)
    assert from_files == whole
    assert from_files.roc_auc["logistic_regression"] > 0.6
