"""churn.prep.identifiers: identifier-like feature columns are refused at prep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import Dataset
from churn.errors import ChurnError
from churn.prep.identifiers import FIRST_ROWS, identifier_like_columns, is_identifier_like, reject_identifier_features

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


@pytest.mark.parametrize("where", ["first rows", "after the first rows", "missing after the first rows"])
def test_one_repeat_or_blank_anywhere_means_not_an_identifier(where):
    """A repeat among the first rows answers at once; past them the whole column decides."""
    n = FIRST_ROWS * 3
    values = pd.Series([f"C{i:06d}" for i in range(n)], dtype=object)
    assert is_identifier_like(values, numeric=False)
    position = {"first rows": 5, "after the first rows": n - 1, "missing after the first rows": n - 2}[where]
    values.iloc[position] = None if where.startswith("missing") else values.iloc[position - 3]
    assert not is_identifier_like(values, numeric=False)
    assert not is_identifier_like(values.str[1:].astype(float), numeric=True)  # the same, as numbers
