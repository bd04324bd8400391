"""Churn probabilities from a fitted pipeline: the same numbers as `predict_proba`, faster.

scikit-learn's HistGradientBoosting predictor walks each tree over every row, reading the
row's feature from the transformed matrix. The pipeline's encoder hands it a row-major
matrix, so for a tree every row is a different cache line; the configured model has
hundreds of small trees, and that memory traffic was half of its scoring time. Handing the
classifier the same matrix column-major (Fortran order) makes each tree read one column
contiguously. The arithmetic (same trees, same order of sums) does not change, so the
probabilities are bit-for-bit those of `pipeline.predict_proba` (tests/core/test_predict.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline


def positive_proba(model: Any, features: Any) -> np.ndarray:
    """P(churn) for each row of `features` (the pipeline's input columns)."""
    if isinstance(model, Pipeline) and isinstance(model.steps[-1][1], HistGradientBoostingClassifier):
        matrix = model[:-1].transform(features)
        if isinstance(matrix, np.ndarray):
            matrix = np.asfortranarray(matrix)  # the row-major one is freed here
            return np.asarray(model.steps[-1][1].predict_proba(matrix)[:, 1])
    return np.asarray(model.predict_proba(features)[:, 1])
