"""Confidence-based performance estimation (CBPE): quality without labels.

The champion's probabilities are calibrated on a labelled reference (its validation set,
scored by it) with isotonic regression, scikit-learn's non-parametric calibrator. If the
calibrated probability c of a row is right, its outcome is positive with probability c,
so a window's expected confusion matrix and ROC AUC follow from the c's alone
(`aggregate.estimated_quality`).

The premise is that P(churn | score) is the same in the window as in the reference:
covariate shift is fine, concept shift (the same customer now churns more or less
often) is not, and the estimate then silently stays where it was. The realised metrics,
once labels arrive, are the check on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from churn.monitoring.baseline import Reference

MIN_REFERENCE_ROWS = 100


@dataclass(frozen=True)
class Calibration:
    model: IsotonicRegression | None
    model_version: str | None  # the version whose probabilities it calibrates; None: any
    reference_rows: int
    reference_roc_auc: float | None
    note: str | None  # why there is no estimate, when there is none


def fit(reference: Reference | None, note: str | None = None) -> Calibration:
    if reference is None:
        return Calibration(None, None, 0, None, note or "no labelled reference to calibrate the estimate on")
    label, probability = reference.label, reference.probability
    rows = len(label)
    positives = int(label.sum())
    if rows < MIN_REFERENCE_ROWS or positives == 0 or positives == rows:
        return Calibration(
            None, reference.model_version, rows, None,
            f"the labelled reference has {rows} rows and {positives} positives: at least "
            f"{MIN_REFERENCE_ROWS} rows of both classes are needed to calibrate",
        )
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probability, label)
    auc = round(float(roc_auc_score(label, probability)), 6)
    return Calibration(model, reference.model_version, rows, auc, None)


def calibrate(calibration: Calibration, probability: np.ndarray, model_version: np.ndarray) -> np.ndarray:
    """Calibrated probabilities; NaN for rows of another model version (or no calibration)."""
    out = np.full(len(probability), np.nan)
    if calibration.model is None or len(probability) == 0:
        return out
    applies = (
        np.ones(len(probability), dtype=bool) if calibration.model_version is None
        else np.asarray(model_version).astype(str) == calibration.model_version
    )
    if applies.any():
        out[applies] = calibration.model.predict(probability[applies])
    return out


def note_for(calibration: Calibration, model_version: str) -> str | None:
    """Why a window of this model version has no estimate (None: it has one)."""
    if calibration.model is None:
        return calibration.note
    if calibration.model_version is not None and str(model_version) != calibration.model_version:
        return (
            f"the estimate is calibrated for model version {calibration.model_version}; "
            f"this window was scored by version {model_version}"
        )
    return None
