"""churn.monitoring.slices: only plain comparisons are evaluated."""

from __future__ import annotations

import pandas as pd
import pytest

from churn.errors import ChurnError
from churn.monitoring.slices import check_expression, mask


@pytest.fixture
def frame():
    return pd.DataFrame({"Contract": pd.Categorical(["Month-to-month", "One year", None]), "tenure": [1.0, 10.0, 3.0]})


def test_mask(frame):
    assert mask(frame, 'Contract == "Month-to-month"').tolist() == [True, False, False]
    assert mask(frame, "tenure < 6").tolist() == [True, False, True]
    assert mask(frame, 'tenure < 6 and Contract in ["One year"]').tolist() == [False, False, False]
    assert mask(frame, "(tenure < 6) | (tenure > 9)").tolist() == [True, True, True]


@pytest.mark.parametrize("expression", [
    "__import__('os').system('true')", "tenure.mean() > 1", "@x > 1", "tenure + 1 > 2", "tenure <", "1 < 2",
])
def test_anything_but_a_comparison_is_refused(expression):
    with pytest.raises(ValueError, match="slice"):
        check_expression(expression)


def test_unknown_column_is_a_short_error(frame):
    with pytest.raises(ChurnError, match="unknown columns \\['Tenure'\\]"):
        mask(frame, "Tenure < 6")
