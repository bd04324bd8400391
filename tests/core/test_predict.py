"""churn.core.predict: the column-major scoring path gives predict_proba's numbers exactly."""

from __future__ import annotations

import numpy as np
import pytest

from churn.core.clean import clean_features, encode_labels
from churn.core.contract import validate_raw
from churn.core.predict import positive_proba
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
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_a_model_that_is_not_a_pipeline_is_scored_by_predict_proba(features_and_labels):
    features, _labels = features_and_labels

    class Constant:
        def predict_proba(self, frame):
            return np.tile([0.25, 0.75], (len(frame), 1))

    assert (positive_proba(Constant(), features) == 0.75).all()
