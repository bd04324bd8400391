"""churn.prep.identifiers: identifier-like feature columns are refused at prep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import Dataset
from churn.errors import ChurnError
from churn.prep.identifiers import identifier_like_columns, reject_identifier_features

DATASET = Dataset(name="t", id_column="id", label_column="y", positive_label="1", negative_label="0",
                  numeric={"account_no": {}, "charges": {}, "age": {}}, categorical={"plan": ["a", "b"]})


def _features(n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "account_no": rng.permutation(n).astype(float) + 100000,  # unique integers
        "charges": rng.normal(70, 20, n),                          # unique but continuous
        "age": rng.integers(18, 90, n).astype(float),
        "plan": rng.choice(["a", "b"], n),
    })


def test_unique_integer_column_is_rejected_with_a_fix():
    with pytest.raises(ChurnError, match=r"\['account_no'\] are identifier-like.*dataset.id_column"):
        reject_identifier_features(_features(), DATASET)


def test_continuous_repeated_and_tiny_columns_pass():
    features = _features().assign(account_no=lambda f: f["age"])
    assert identifier_like_columns(features, DATASET) == []
    assert identifier_like_columns(_features(50), DATASET) == []  # too few rows to tell


def test_unique_text_column_is_rejected():
    dataset = DATASET.model_copy(update={"categorical": {"plan": ["a", "b"], "email": []}})
    features = _features().assign(email=[f"user{i}@example.invalid" for i in range(500)])
    assert identifier_like_columns(features, dataset) == ["account_no", "email"]
