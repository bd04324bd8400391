"""churn.evaluation.plots: the CSV tables behind the DVC plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from churn.evaluation import plots
from churn.evaluation.plots import (
    calibration_table,
    confusion_table,
    importance_table,
    precision_recall_table,
    roc_table,
)


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    p = np.clip(0.3 * y + rng.random(3000) * 0.7, 0, 1)
    return y, p


def test_roc_table_endpoints_and_no_inf(scored):
    table = roc_table(*scored)
    assert list(table.columns) == ["fpr", "tpr", "chance", "threshold"]
    assert (table["chance"] == table["fpr"]).all()
    assert (table.iloc[0]["fpr"], table.iloc[0]["tpr"]) == (0.0, 0.0)
    assert (table.iloc[-1]["fpr"], table.iloc[-1]["tpr"]) == (1.0, 1.0)
    assert np.isfinite(table.to_numpy()).all()
    assert table["threshold"].max() <= 1.0
    assert table["fpr"].is_monotonic_increasing and table["tpr"].is_monotonic_increasing
    # the CSV round-trips without inf
    assert "inf" not in table.to_csv(index=False)


def test_pr_table_capped(scored):
    y, p = scored
    table = precision_recall_table(y, p, max_points=50)
    assert len(table) == 50
    assert list(table.columns) == ["recall", "precision", "threshold"]
    full = precision_recall_table(y, p, max_points=10**6)
    assert len(full) > 50
    # subsample keeps both ends of the curve
    assert table.iloc[0].equals(full.iloc[0]) and table.iloc[-1].equals(full.iloc[-1])
    assert table["threshold"].is_monotonic_increasing


def test_pr_table_small_input_not_padded():
    table = precision_recall_table([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.3], max_points=1000)
    assert len(table) <= 4
    assert np.isfinite(table.to_numpy()).all()


def test_confusion_labels():
    table = confusion_table(np.array([0, 1, 1, 0]), np.array([0.2, 0.9, 0.3, 0.6]), 0.5)
    assert list(table.columns) == ["actual", "predicted"]
    assert table["actual"].tolist() == ["no_churn", "churn", "churn", "no_churn"]
    assert table["predicted"].tolist() == ["no_churn", "churn", "no_churn", "churn"]


def test_confusion_threshold_inclusive():
    assert confusion_table([1], [0.35], 0.35)["predicted"].tolist() == ["churn"]


@pytest.mark.parametrize("bins", [3, 10])
def test_calibration_rows_at_most_bins(scored, bins):
    table = calibration_table(*scored, bins=bins)
    assert list(table.columns) == ["mean_predicted", "fraction_positive", "perfectly_calibrated"]
    assert 1 <= len(table) <= bins
    assert table["mean_predicted"].between(0, 1).all() and table["fraction_positive"].between(0, 1).all()


def test_calibration_with_few_distinct_scores():
    table = calibration_table([0, 1, 0, 1, 1, 0], [0.2, 0.2, 0.2, 0.8, 0.8, 0.8], bins=10)
    assert len(table) <= 10


def _informative_frame(n=600, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    noise = rng.normal(size=n)
    y = (signal + 0.3 * rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame({"noise": noise, "signal": signal}), y


def test_importance_ranks_informative_feature_first():
    X, y = _informative_frame()
    model = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]).fit(X, y)
    table = importance_table(model, X, y, n_repeats=3, sample_size=5000, seed=0)
    assert list(table.columns) == ["feature", "importance", "std"]
    assert table["feature"].tolist() == ["signal", "noise"]
    assert table.loc[0, "importance"] > 0.1
    assert abs(table.loc[1, "importance"]) < 0.05


def test_importance_with_sampling_is_deterministic():
    X, y = _informative_frame(n=800)
    X.index = X.index + 1000  # non-default index must still align labels
    model = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]).fit(X, y)
    first = importance_table(model, X, pd.Series(y, index=X.index), n_repeats=2, sample_size=300, seed=1)
    second = importance_table(model, X, pd.Series(y, index=X.index), n_repeats=2, sample_size=300, seed=1)
    pd.testing.assert_frame_equal(first, second)
    assert first["feature"].tolist()[0] == "signal"


def test_drift_table_lists_drifted_columns_first():
    columns = {
        "b": {"score": 0.2, "threshold": 0.05, "method": "K-S p_value", "drifted": False},
        "a": {"score": 0.01, "threshold": 0.05, "method": "K-S p_value", "drifted": True},
        "c": {"score": 0.3, "threshold": 0.1, "method": "Jensen-Shannon distance", "drifted": True},
    }
    table = plots.drift_table(columns)
    assert list(table["column"]) == ["a", "c", "b"]
    assert list(table["drifted"]) == [1, 1, 0]
    assert list(table.columns) == ["column", "score", "threshold", "method", "drifted"]


def test_importance_is_scikit_learns_roc_auc_permutation_importance_on_the_configured_model(params):
    """The table scores through the fast path (`positive_proba`); the figures must be what
    scikit-learn's own "roc_auc" scorer gives on the configured HistGradientBoosting pipeline."""
    from sklearn.inspection import permutation_importance

    from churn.core.clean import clean_features, encode_labels
    from churn.core.contract import validate_raw
    from churn.data.simulate import simulate
    from churn.training.pipeline import build_pipeline

    dataset = params.dataset
    typed = validate_raw(simulate(1500, seed=4), dataset)
    frame = clean_features(typed, dataset).merge(encode_labels(typed, dataset), on=dataset.id_column)
    x, y = frame[dataset.feature_columns], frame[dataset.label_column].to_numpy()
    model = build_pipeline(dataset, params.train).fit(x, y)
    table = importance_table(model, x, y, n_repeats=2, sample_size=700, seed=3)
    sample = x.sample(n=700, random_state=3)
    expected = permutation_importance(model, sample, y[sample.index], scoring="roc_auc", n_repeats=2, random_state=3)
    by_feature = table.set_index("feature")
    for column, mean, std in zip(x.columns, expected.importances_mean, expected.importances_std, strict=True):
        assert by_feature.loc[column, "importance"] == round(mean, 6)
        assert by_feature.loc[column, "std"] == round(std, 6)
