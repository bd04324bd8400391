"""churn.monitoring.estimate: CBPE lands near the realised quality on the training distribution."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from churn.core.clean import clean_features, encode_labels
from churn.core.contract import validate_raw
from churn.data.simulate import simulate
from churn.monitoring import estimate
from churn.monitoring.aggregate import estimated_quality
from churn.monitoring.baseline import Reference


def scored(model, dataset, rows, seed, drift=None):
    typed = validate_raw(simulate(rows, seed=seed, drift=drift), dataset)
    features = clean_features(typed, dataset)[dataset.feature_columns]
    label = encode_labels(typed, dataset)[dataset.label_column].to_numpy()
    return model.predict_proba(features)[:, 1], label


@pytest.fixture(scope="module")
def calibration(fitted, params):
    probability, label = scored(fitted[0], params.dataset, 4000, seed=21)
    return estimate.fit(Reference(probability, label.astype(float), "1"))


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_estimate_is_within_a_few_hundredths_of_the_realised_auc(fitted, params, calibration, seed):
    probability, label = scored(fitted[0], params.dataset, 5000, seed=seed)
    predicted = (probability >= 0.35).astype(int)
    calibrated = estimate.calibrate(calibration, probability, np.full(len(probability), "1"))
    out = estimated_quality(probability, predicted, calibrated)
    assert abs(out["estimated_roc_auc"] - roc_auc_score(label, probability)) < 0.03
    assert abs(out["estimated_precision"] - precision_score(label, predicted)) < 0.05
    assert abs(out["estimated_recall"] - recall_score(label, predicted)) < 0.05


def test_concept_shift_is_invisible_to_the_estimate(fitted, params, calibration):
    """The stated limit: the same customers churning more often leaves the estimate where it was."""
    from churn.config import DriftScenario

    shift = DriftScenario(price_increase=0.0, fiber_shift=0.0, month_to_month_shift=0.0, churn_logit_shift=1.5)
    probability, label = scored(fitted[0], params.dataset, 2500, seed=104, drift=shift)
    predicted = (probability >= 0.35).astype(int)
    calibrated = estimate.calibrate(calibration, probability, np.full(len(probability), "1"))
    out = estimated_quality(probability, predicted, calibrated)
    assert abs(out["estimated_precision"] - precision_score(label, predicted)) > 0.05


def test_no_reference_means_no_estimate_with_a_reason():
    calibration = estimate.fit(None, "baseline file x has no churn_probability")
    assert calibration.model is None and "churn_probability" in calibration.note
    calibrated = estimate.calibrate(calibration, np.array([0.2, 0.7]), np.array(["1", "1"]))
    assert np.isnan(calibrated).all()
    assert estimate.note_for(calibration, "1") == calibration.note


def test_too_small_or_one_class_reference_is_refused():
    calibration = estimate.fit(Reference(np.linspace(0, 1, 500), np.zeros(500), "1"))
    assert calibration.model is None and "both classes" in calibration.note


def test_other_model_versions_are_not_estimated(calibration):
    calibrated = estimate.calibrate(calibration, np.array([0.2, 0.7]), np.array(["1", "2"]))
    assert not np.isnan(calibrated[0]) and np.isnan(calibrated[1])
    assert "calibrated for model version 1" in estimate.note_for(calibration, "2")
