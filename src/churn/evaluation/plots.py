"""Plot data as small CSV tables that `dvc plots show/diff` render with its templates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

from churn.core.predict import positive_proba

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

DIGITS = 6

# file name -> the dvc.yaml plot properties that render it
PLOT_FILES = {
    "roc": "roc.csv",
    "precision_recall": "precision_recall.csv",
    "confusion": "confusion.csv",
    "calibration": "calibration.csv",
    "feature_importance": "feature_importance.csv",
    "drift_by_column": "drift_by_column.csv",
    "slices": "slices.csv",
}


def roc_table(y_true: ArrayLike, proba: ArrayLike) -> pd.DataFrame:
    fpr, tpr, thresholds = roc_curve(y_true, proba, drop_intermediate=True)
    # roc_curve's first threshold is +inf, which JSON and CSV readers disagree on.
    thresholds = np.minimum(thresholds, 1.0)
    # `chance` is the diagonal a random score draws, as a second series of the same plot.
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "chance": fpr, "threshold": thresholds}).round(DIGITS)


def precision_recall_table(y_true: ArrayLike, proba: ArrayLike, max_points: int = 1000) -> pd.DataFrame:
    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    table = pd.DataFrame(
        {"recall": recall[:-1], "precision": precision[:-1], "threshold": thresholds}
    )
    # One row per distinct score is too many to plot for large test sets; an even subsample
    # keeps the curve's shape.
    if len(table) > max_points:
        table = table.iloc[np.linspace(0, len(table) - 1, max_points).round().astype(int)]
    return table.round(DIGITS).reset_index(drop=True)


def confusion_table(y_true: ArrayLike, proba: ArrayLike, threshold: float) -> pd.DataFrame:
    labels = np.array(["no_churn", "churn"])
    return pd.DataFrame(
        {
            "actual": labels[np.asarray(y_true, dtype=int)],
            "predicted": labels[(np.asarray(proba) >= threshold).astype(int)],
        }
    )


def calibration_table(y_true: ArrayLike, proba: ArrayLike, bins: int) -> pd.DataFrame:
    fraction_positive, mean_predicted = calibration_curve(y_true, proba, n_bins=bins, strategy="quantile")
    # `perfectly_calibrated` is the diagonal, drawn beside the curve.
    return pd.DataFrame(
        {"mean_predicted": mean_predicted, "fraction_positive": fraction_positive, "perfectly_calibrated": mean_predicted}
    ).round(DIGITS)


def importance_table(model: Pipeline, features: pd.DataFrame, y_true: ArrayLike, *, n_repeats: int, sample_size: int, seed: int) -> pd.DataFrame:
    """Permutation importance of each raw input column: model-agnostic and deterministic."""
    if len(features) > sample_size:
        sample = features.sample(n=sample_size, random_state=seed)
        y_sample = pd.Series(np.asarray(y_true), index=features.index).loc[sample.index]
    else:
        sample, y_sample = features, y_true
    # scikit-learn's "roc_auc" scorer, on the same probabilities from the fast scoring path:
    # one call per column and repeat, each through the whole pipeline.
    def roc_auc(estimator: Pipeline, x: pd.DataFrame, y: ArrayLike) -> float:
        return float(roc_auc_score(y, positive_proba(estimator, x)))

    result = permutation_importance(
        model, sample, y_sample, scoring=roc_auc, n_repeats=n_repeats, random_state=seed, n_jobs=1
    )
    table = pd.DataFrame(
        {"feature": features.columns, "importance": result.importances_mean, "std": result.importances_std}
    )
    return table.sort_values(["importance", "feature"], ascending=[False, True]).round(DIGITS).reset_index(drop=True)


def drift_table(columns: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Per-column drift (score, threshold, method, drifted), most drifted first."""
    table = pd.DataFrame(
        [
            {"column": name, "score": entry["score"], "threshold": entry["threshold"],
             "method": entry["method"], "drifted": int(entry["drifted"])}
            for name, entry in columns.items()
        ],
        columns=["column", "score", "threshold", "method", "drifted"],
    )
    return table.sort_values(["drifted", "column"], ascending=[False, True]).reset_index(drop=True)
