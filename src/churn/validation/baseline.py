"""A simpler model must lose: the candidate has to beat baselines fitted on the same data.

If a logistic regression on the same features (or the class prior) ranks churners as well
as the candidate, the candidate's extra complexity buys nothing and should not ship.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.metrics import roc_auc_score

from churn.config import Baseline, Dataset, Params, Train
from churn.core.splits import read_split
from churn.training.pipeline import build_pipeline
from churn.validation.gates import Check

KIND = "baseline"
LOGISTIC_MAX_ITER = 1000


@dataclass(frozen=True)
class BaselineResult:
    roc_auc: dict[str, float]  # baseline name -> validation ROC AUC
    skipped: dict[str, str] = field(default_factory=dict)  # baseline name -> why


def _baseline_model(name: str, dataset: Dataset, train: Train) -> Any:
    if name == "prior":
        return DummyClassifier(strategy="prior")
    # Same features and preprocessing as the candidate, default regularisation.
    config = Train(
        family="logistic_regression",
        seed=train.seed,
        hyperparameters={"logistic_regression": {"max_iter": LOGISTIC_MAX_ITER}},
        decision_threshold=train.decision_threshold,
    )
    return build_pipeline(dataset, config)


def fit_baselines(train_set: pd.DataFrame, validation: pd.DataFrame, dataset: Dataset,
                  candidate: Train, settings: Baseline) -> BaselineResult:
    features, label = dataset.feature_columns, dataset.label_column
    if len(train_set) > settings.sample_size:
        train_set = train_set.sample(n=settings.sample_size, random_state=candidate.seed)
    scores: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for name in settings.models:
        if name == candidate.family:
            skipped[name] = "the candidate is this family: not a simpler model"
            continue
        model = _baseline_model(name, dataset, candidate).fit(train_set[features], train_set[label])
        proba = model.predict_proba(validation[features])[:, 1]
        scores[name] = round(float(roc_auc_score(validation[label], proba)), 6)
    return BaselineResult(scores, skipped)


def fit_baselines_from_files(params: Params) -> BaselineResult:
    """`fit_baselines` on the files prep wrote, reading only the training rows it samples:
    it can then run in a process of its own (`churn.core.side_process`) beside the stage."""
    paths, dataset, settings = params.paths, params.dataset, params.validation.baseline
    columns = [*dataset.feature_columns, dataset.label_column]
    train_sample = read_split(paths.train_set, dataset, columns, sample=(settings.sample_size, params.train.seed))
    validation = read_split(paths.validation_set, dataset, columns)
    return fit_baselines(train_sample, validation, dataset, params.train, settings)


def baseline_checks(candidate_auc: float, result: BaselineResult, settings: Baseline) -> list[Check]:
    if settings.min_gain is None:
        return []
    return [
        Check.compare(
            f"roc_auc_gain_over.{name}", KIND, candidate_auc - auc, ">=", settings.min_gain,
            note=f"candidate {candidate_auc:.4f} vs {name} {auc:.4f}",
        )
        for name, auc in result.roc_auc.items()
    ]
