"""Score raw records with the same contract and cleaning that prep uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from churn.config import Dataset
from churn.core.clean import clean_features
from churn.core.contract import validate_rows
from churn.core.predict import positive_proba

PROBABILITY = "churn_probability"
PREDICTION = "churn_prediction"


@dataclass(frozen=True)
class ScoredBatch:
    """Valid rows with their features and scores, and every rejected row with its reasons."""

    scored: pd.DataFrame
    rejected: pd.DataFrame


def score_records(model: Any, dataset: Dataset, threshold: float, raw: pd.DataFrame, source: str = "input") -> ScoredBatch:
    valid, rejected = validate_rows(raw, dataset, source=source)
    features = clean_features(valid, dataset)
    probability: Any = positive_proba(model, features[dataset.feature_columns]) if len(features) else []
    scored = features.assign(**{PROBABILITY: probability})
    scored[PREDICTION] = (scored[PROBABILITY] >= threshold).astype("int64")
    if dataset.label_column in valid.columns:
        # Kept for the inference log: a label that arrives with the request, or later.
        scored[dataset.label_column] = valid[dataset.label_column].to_numpy()
    return ScoredBatch(scored=scored, rejected=rejected)
