"""Classification metrics shared by training, validation and evaluation."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as skm

DIGITS = 6  # rounding keeps metric files byte-stable across float noise in the last bits


def classification_metrics(y_true: ArrayLike, proba: ArrayLike, threshold: float) -> dict[str, float]:
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=float)
    predicted = (proba >= threshold).astype(int)
    values = {
        "roc_auc": skm.roc_auc_score(y_true, proba),
        "pr_auc": skm.average_precision_score(y_true, proba),
        "f1": skm.f1_score(y_true, predicted, zero_division=0),
        "precision": skm.precision_score(y_true, predicted, zero_division=0),
        "recall": skm.recall_score(y_true, predicted, zero_division=0),
        "accuracy": skm.accuracy_score(y_true, predicted),
        "log_loss": skm.log_loss(y_true, np.clip(proba, 1e-15, 1 - 1e-15), labels=[0, 1]),
        "brier": skm.brier_score_loss(y_true, proba),
    }
    return {name: round(float(value), DIGITS) for name, value in values.items()}
