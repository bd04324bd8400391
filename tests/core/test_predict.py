"""churn.core.predict: the column-major scoring path gives predict_proba's numbers exactly."""

from __future__ import annotations

import numpy as np
import pytest

from churn.core.clean import clean_features, encode_labels
from churn.core.contract import validate_raw
from churn.core.predict import _trees, positive_proba
from churn.training.pipeline import build_pipeline


@pytest.fixture
def features_and_labels(raw_frame, dataset):
    typed = validate_raw(raw_frame, dataset)
    features = clean_features(typed, dataset)[dataset.feature_columns]
    return features, encode_labels(typed, dataset)[dataset.label_column]


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "logistic_regression"])
def test_equals_predict_proba_bit_for_bit(params, features_and_labels, family):
    features, labels = features_and_labels
    train = params.train.model_copy(update={"family": family})
    model = build_pipeline(params.dataset, train).fit(features, labels)
    expected = model.predict_proba(features)[:, 1]
    got = positive_proba(model, features)
    if family == "hist_gradient_boosting":  # the configured family takes the tree walk, not the fallback
        assert _trees(model.steps[-1][1], np.asfortranarray(model[:-1].transform(features))) is not None
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_a_model_that_is_not_a_pipeline_is_scored_by_predict_proba(features_and_labels):
    features, _labels = features_and_labels

    class Constant:
        def predict_proba(self, frame):
            return np.tile([0.25, 0.75], (len(frame), 1))

    assert (positive_proba(Constant(), features) == 0.75).all()


def _noisy_matrix(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(rows, 6))
    matrix[:, 5] = rng.integers(0, 2, size=rows)  # a 0/1 column, like the one-hot ones
    labels = (matrix[:, 0] + matrix[:, 5] + rng.normal(scale=0.5, size=rows) > 0.5).astype(int)
    matrix[rng.random(size=matrix.shape) < 0.05] = np.nan  # missing values go where each split says
    return matrix, labels


@pytest.mark.parametrize("leaves", [2, 15])
def test_the_tree_walk_equals_predict_proba_with_missing_values(leaves):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    matrix, labels = _noisy_matrix(2000, seed=1)
    classifier = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=leaves, random_state=0)
    model = Pipeline([("identity", FunctionTransformer()), ("classifier", classifier)]).fit(matrix, labels)
    scored, _ = _noisy_matrix(3000, seed=2)
    assert _trees(classifier, np.asfortranarray(scored)) is not None  # the walk, not the fallback
    np.testing.assert_array_equal(positive_proba(model, scored), model.predict_proba(scored)[:, 1])


def test_categorical_splits_fall_back_to_predict_proba():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    matrix, labels = _noisy_matrix(500, seed=3)
    matrix[:, 5] = np.nan_to_num(matrix[:, 5])
    classifier = HistGradientBoostingClassifier(max_iter=5, categorical_features=[5], random_state=0)
    model = Pipeline([("identity", FunctionTransformer()), ("classifier", classifier)]).fit(matrix, labels)
    assert _trees(classifier, np.asfortranarray(matrix)) is None
    np.testing.assert_array_equal(positive_proba(model, matrix), model.predict_proba(matrix)[:, 1])


def _few_trees(params):
    return params.train.model_copy(update={"hyperparameters": {"hist_gradient_boosting": {"max_iter": 5}}})


def test_the_one_hot_shortcut_equals_the_pipelines_transform(params, features_and_labels):
    from churn.core.predict import _column_parts, _transformed

    features, labels = features_and_labels
    model = build_pipeline(params.dataset, _few_trees(params)).fit(features, labels)
    preprocess = model[:-1]
    odd = features.head(50).copy()
    odd.loc[odd.index[0], "Contract"] = "Weekly"  # unknown: an all-zero block
    odd.loc[odd.index[1], "gender"] = None  # missing: the same
    odd.loc[odd.index[2], "tenure"] = np.nan  # imputed by the numeric part
    assert _column_parts(preprocess, odd) is not None  # the shortcut, not the fallback
    np.testing.assert_array_equal(_transformed(preprocess, odd), preprocess.transform(odd))
    np.testing.assert_array_equal(_transformed(preprocess, features), preprocess.transform(features))


def test_other_encoders_are_left_to_scikit_learn(params, features_and_labels):
    from churn.core.predict import _plain_one_hot, _transformed

    features, labels = features_and_labels
    model = build_pipeline(params.dataset, _few_trees(params))
    model.set_params(preprocess__categorical__drop="first").fit(features, labels)
    preprocess = model[:-1]
    assert not _plain_one_hot(preprocess.steps[0][1].named_transformers_["categorical"])
    np.testing.assert_array_equal(_transformed(preprocess, features), preprocess.transform(features))
    np.testing.assert_array_equal(positive_proba(model, features), model.predict_proba(features)[:, 1])
