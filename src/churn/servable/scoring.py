"""Score raw records with the same contract and cleaning that prep uses."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churn.config import Dataset
from churn.core.clean import clean_features
from churn.core.contract import validate_rows

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

    model: Any  # the fitted pipeline, or the path of its skops archive (see `fitted`)
    dataset: Dataset
    threshold: float

    def score(self, raw: pd.DataFrame, source: str = "input") -> ScoredBatch:
        return score_records(self.model, self.dataset, self.threshold, raw, source=source)


def score_records(model: Any, dataset: Dataset, threshold: float, raw: pd.DataFrame, source: str = "input") -> ScoredBatch:
    valid, rejected = validate_rows(raw, dataset, source=source)
    features = clean_features(valid, dataset)
    if len(features):
        from churn.core.predict import positive_proba  # scikit-learn: only where a row is scored

        probability: Any = positive_proba(fitted(model), features[dataset.feature_columns])
    else:
        probability = []
    scored = features  # a new frame from clean_features: the scores join it without a copy
    scored[PROBABILITY] = probability
    scored[PREDICTION] = (scored[PROBABILITY] >= threshold).astype("int64")
    if dataset.label_column in valid.columns:
        # Kept for the inference log: a label that arrives with the request, or later.
        scored[dataset.label_column] = valid[dataset.label_column].to_numpy()
    return ScoredBatch(scored=scored, rejected=rejected)


def fitted(model: Any) -> Any:
    """The pipeline: `model` itself, or the skops archive at `model` (a path) loaded once
    per process. `churn predict` hands its worker processes the archive's path, so that
    each loads the pipeline while the command reads the input, instead of the command
    loading it (and importing scikit-learn) before the first batch and sending it over."""
    if isinstance(model, str | Path):
        found = os.stat(model)
        return _archive(str(model), found.st_mtime_ns, found.st_size)
    return model


@functools.lru_cache(maxsize=4)
def _archive(path: str, _mtime_ns: int, _size: int) -> Any:  # a changed file is another key
    from churn.core.model_file import load_model

    return load_model(path)
