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


@dataclass(frozen=True)
class RecordScorer:
    """A fitted pipeline with its contract and decision threshold: what scoring a batch of
    raw records needs, without MLflow, so a worker process can be sent one (pickled)."""

    model: Any
    dataset: Dataset
    threshold: float

    def score(self, raw: pd.DataFrame, source: str = "input") -> ScoredBatch:
        return score_records(self.model, self.dataset, self.threshold, raw, source=source)


def score_records(model: Any, dataset: Dataset, threshold: float, raw: pd.DataFrame, source: str = "input") -> ScoredBatch:
    valid, rejected = validate_rows(raw, dataset, source=source)
    features = clean_features(valid, dataset)
    probability: Any = positive_proba(model, features[dataset.feature_columns]) if len(features) else []
    scored = features  # a new frame from clean_features: the scores join it without a copy
    scored[PROBABILITY] = probability
    scored[PREDICTION] = (scored[PROBABILITY] >= threshold).astype("int64")
    if dataset.label_column in valid.columns:
        # Kept for the inference log: a label that arrives with the request, or later.
        scored[dataset.label_column] = valid[dataset.label_column].to_numpy()
    return ScoredBatch(scored=scored, rejected=rejected)
