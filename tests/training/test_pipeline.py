"""churn.training.pipeline: one sklearn Pipeline per model family."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from churn.core.clean import clean_features, encode_labels
from churn.core.contract import validate_raw
from churn.errors import ChurnError
from churn.training.pipeline import CLASSIFIERS, build_pipeline

FAMILIES = ["hist_gradient_boosting", "gradient_boosting", "random_forest", "logistic_regression"]


@pytest.fixture(scope="module")
def training_data(raw_csv_text, dataset):
    """~260 Telco-like rows: the raw fixture repeated with jittered numbers."""
    raw_frame = pd.read_csv(io.StringIO(raw_csv_text), dtype=str, keep_default_na=False, na_values=[""])
    typed = validate_raw(raw_frame, dataset)
    features = clean_features(typed, dataset)
    labels = encode_labels(typed, dataset)
    rng = np.random.default_rng(0)
    X = pd.concat([features] * 20, ignore_index=True)
    for column in dataset.numeric:
        X[column] = X[column] * rng.uniform(0.9, 1.1, len(X))
    y = pd.concat([labels[dataset.label_column]] * 20, ignore_index=True)
    return X[dataset.feature_columns], y


def _train(params, family, **hyperparameters):
    hp = dict(params.train.hyperparameters)
    if hyperparameters:
        hp[family] = hyperparameters
    return params.train.model_copy(update={"family": family, "hyperparameters": hp})


def test_all_families_covered():
    assert sorted(CLASSIFIERS) == sorted(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_fits_and_predicts_probabilities(family, params, dataset, training_data):
    X, y = training_data
    train = _train(params, family)
    pipeline = build_pipeline(dataset, train)
    assert isinstance(pipeline, Pipeline)
    classifier = pipeline.named_steps["classifier"]
    assert isinstance(classifier, CLASSIFIERS[family])
    assert classifier.random_state == train.seed
    for key, value in train.model_params.items():
        assert classifier.get_params()[key] == value
    pipeline.fit(X, y)
    proba = pipeline.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # it learned something: churners score higher on average
    assert proba[y.to_numpy() == 1, 1].mean() > proba[y.to_numpy() == 0, 1].mean()


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_hyperparameter_key(family, params, dataset):
    with pytest.raises(ChurnError, match=family):
        build_pipeline(dataset, _train(params, family, no_such_knob=1))


def test_random_state_in_hyperparameters_is_a_churn_error(params, dataset):
    with pytest.raises(ChurnError):
        build_pipeline(dataset, _train(params, "random_forest", random_state=3))


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "logistic_regression"])
def test_unknown_categories_and_missing_numbers_at_predict_time(family, params, dataset, training_data):
    X, y = training_data
    pipeline = build_pipeline(dataset, _train(params, family)).fit(X, y)
    new = X.head(3).copy()
    new.loc[new.index[0], "Contract"] = "Three year"
    new.loc[new.index[1], "PaymentMethod"] = "Bitcoin"
    new.loc[new.index[2], "TotalCharges"] = np.nan
    proba = pipeline.predict_proba(new)
    assert proba.shape == (3, 2) and np.isfinite(proba).all()


def test_extra_columns_are_ignored_and_order_does_not_matter(params, dataset, training_data):
    X, y = training_data
    pipeline = build_pipeline(dataset, _train(params, "logistic_regression")).fit(X, y)
    shuffled = X[X.columns[::-1]].assign(customerID="x")
    np.testing.assert_allclose(pipeline.predict_proba(shuffled), pipeline.predict_proba(X))


def test_same_seed_same_model(params, dataset, training_data):
    X, y = training_data
    first = build_pipeline(dataset, _train(params, "random_forest")).fit(X, y).predict_proba(X)
    second = build_pipeline(dataset, _train(params, "random_forest")).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)


def test_iteration_probe_counts_boosting_iterations_without_changing_the_model(params, dataset, training_data):
    from threadpoolctl import threadpool_limits

    from churn import progress
    from churn.core.model_file import model_to_bytes
    from churn.training.pipeline import iteration_probe

    X, y = training_data
    train = _train(params, "hist_gradient_boosting", max_iter=15, early_stopping=False)
    watched = build_pipeline(dataset, train)
    total, probe = iteration_probe(watched)
    assert (total, probe()) == (15, None)  # not fitting yet: no count, and no failure
    # One OpenMP thread: on a busy machine, spinning threads make a tiny fit take seconds.
    with threadpool_limits(1):
        with progress.task("fitting", total=total) as fitting, progress.watch(fitting, probe, every=0.01):
            watched.fit(X, y)
        unwatched = build_pipeline(dataset, train).fit(X, y)
    assert fitting.completed == watched.named_steps["classifier"].n_iter_ == 15
    assert model_to_bytes(watched) == model_to_bytes(unwatched)


def test_iteration_probe_is_a_spinner_for_other_families(params, dataset):
    from churn.training.pipeline import iteration_probe

    total, probe = iteration_probe(build_pipeline(dataset, _train(params, "random_forest")))
    assert total is None and probe() is None
