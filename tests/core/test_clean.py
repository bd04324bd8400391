"""churn.core.clean: contract-valid raw rows -> model-ready features and 0/1 labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.core.clean import clean_features, encode_labels
from churn.core.contract import validate_raw


@pytest.fixture
def typed(raw_frame, dataset):
    return validate_raw(raw_frame, dataset)


def _row(frame, dataset, key):
    return frame.set_index(dataset.id_column).loc[key]


def test_blank_total_charges_becomes_configured_fill(typed, dataset, special_ids):
    features = clean_features(typed, dataset)
    fill = dataset.numeric["TotalCharges"].fill_missing
    assert fill is not None
    assert _row(features, dataset, special_ids["tenure_zero"])["TotalCharges"] == fill
    assert features["TotalCharges"].notna().all()
    # the other values are untouched
    others = features[dataset.id_column] != special_ids["tenure_zero"]
    np.testing.assert_array_equal(
        features.loc[others, "TotalCharges"].to_numpy(),
        typed.loc[typed[dataset.id_column] != special_ids["tenure_zero"], "TotalCharges"].to_numpy(),
    )


def test_numeric_columns_are_float64(typed, dataset):
    features = clean_features(typed, dataset)
    for column in dataset.numeric:
        assert features[column].dtype == np.float64


def test_structural_levels_folded_to_no(typed, dataset, special_ids):
    features = clean_features(typed, dataset)
    internet_dependent = ["OnlineSecurity", "OnlineBackup", "DeviceProtection",
                          "TechSupport", "StreamingTV", "StreamingMovies"]
    no_internet = _row(features, dataset, special_ids["no_internet"])
    assert no_internet["InternetService"] == "No"
    assert all(no_internet[c] == "No" for c in internet_dependent)
    assert _row(features, dataset, special_ids["no_phone"])["MultipleLines"] == "No"
    for column in dataset.categorical:
        assert not features[column].isin(list(dataset.structural_levels)).any(), column


def test_non_structural_values_are_kept(typed, dataset):
    features = clean_features(typed, dataset)
    structural = set(dataset.structural_levels)
    for column in dataset.categorical:
        keep = ~typed[column].isin(structural).to_numpy()
        assert features[column].to_numpy()[keep].tolist() == typed[column].to_numpy()[keep].tolist()


def test_output_columns_are_keys_then_features_in_params_order(typed, dataset):
    features = clean_features(typed, dataset)
    assert list(features.columns) == [*dataset.key_columns, *dataset.numeric, *dataset.categorical]
    assert dataset.label_column not in features.columns


def test_extra_raw_columns_are_dropped(raw_frame, dataset):
    raw_frame["note"] = "free text"
    features = clean_features(validate_raw(raw_frame, dataset), dataset)
    assert "note" not in features.columns


def test_output_has_fresh_index(typed, dataset):
    shuffled = typed.iloc[::-1]
    features = clean_features(shuffled, dataset)
    assert list(features.index) == list(range(len(typed)))
    assert features[dataset.id_column].tolist() == shuffled[dataset.id_column].tolist()


def test_input_is_not_mutated(typed, dataset):
    before = typed.copy(deep=True)
    clean_features(typed, dataset)
    encode_labels(typed, dataset)
    pd.testing.assert_frame_equal(typed, before)


def test_labels_encoded_one_for_positive(typed, dataset, raw_frame):
    labels = encode_labels(typed, dataset)
    assert list(labels.columns) == [*dataset.key_columns, dataset.label_column]
    assert labels[dataset.label_column].dtype == np.int64
    expected = [1 if v == dataset.positive_label else 0 for v in raw_frame[dataset.label_column]]
    assert labels[dataset.label_column].tolist() == expected
    assert set(expected) == {0, 1}  # the fixture has both labels
    assert labels[dataset.id_column].tolist() == raw_frame[dataset.id_column].tolist()


def test_filled_values_are_counted_per_column(raw_frame, dataset, special_ids):
    from churn.core.clean import filled_counts

    typed = validate_raw(raw_frame, dataset)
    # The fixture has one blank TotalCharges, at tenure 0.
    assert filled_counts(typed, dataset) == {"TotalCharges": 1}
    raw_frame.loc[raw_frame["customerID"] == special_ids["tenure_zero"], "TotalCharges"] = "0"
    assert filled_counts(validate_raw(raw_frame, dataset), dataset) == {"TotalCharges": 0}
