"""churn.monitoring.aggregate: group statistics checked against plain pandas/sklearn."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn.monitoring.aggregate import CALIBRATED, LABEL, ColumnSpec, aggregate, estimated_quality


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 2000
    probability = rng.uniform(size=n)
    x = rng.normal(10, 2, n)
    x[:7] = np.nan
    return pd.DataFrame({
        "version": np.where(np.arange(n) < 1500, "1", "2"),
        "x": x,
        "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n, p=[0.6, 0.3, 0.1])),
        "p": probability,
        "d": (probability >= 0.5).astype("int64"),
        LABEL: np.where(np.arange(n) % 3 == 0, np.nan, (rng.uniform(size=n) < probability).astype(float)),
        CALIBRATED: probability,
    })


SPEC = ColumnSpec(numeric=["x", "p"], categorical=["colour", "d"], probability="p", prediction="d",
                  edges={"x": np.array([8.0, 10.0, 12.0])})


def test_profile_matches_pandas(frame):
    result = aggregate(frame, ["version"], SPEC)
    row = result.profile.query("version == '1' and column_name == 'x'").iloc[0]
    part = frame.loc[frame.version == "1", "x"]
    assert row["count"] == part.count() and row["num_nulls"] == 7
    assert row["mean"] == pytest.approx(part.mean()) and row["stddev"] == pytest.approx(part.std())
    assert row["p50"] == pytest.approx(part.median()) and row["distinct_count"] == part.nunique()
    colour = result.profile.query("version == '2' and column_name == 'colour'").iloc[0]
    counts = frame.loc[frame.version == "2", "colour"].value_counts()
    assert json.loads(colour["top_values"])[0] == [counts.index[0], int(counts.iloc[0])]
    assert colour["distinct_count"] == 3


def test_sketch_counts_add_up(frame):
    sketch = aggregate(frame, ["version"], SPEC).sketch
    x = sketch[sketch.column_name == "x"]
    assert x["count"].sum() == frame["x"].notna().sum()
    assert x["total"].sum() == pytest.approx(frame["x"].sum())
    in_first = ((frame.version == "1") & (frame.x < 8)).sum()
    assert x.query("version == '1' and bucket == '0'")["count"].item() == in_first
    assert set(sketch.loc[sketch.column_name == "d", "bucket"]) == {"0", "1"}


def test_table_quality_only_on_labelled_rows(frame):
    table = aggregate(frame, ["version"], SPEC).table.set_index("version")
    part = frame[frame.version == "1"]
    labelled = part[part[LABEL].notna()]
    assert table.loc["1", "count"] == len(part)
    assert table.loc["1", "label_count"] == len(labelled)
    assert table.loc["1", "roc_auc"] == pytest.approx(roc_auc_score(labelled[LABEL], labelled["p"]), abs=1e-6)
    assert table.loc["1", "predicted_positive_rate"] == pytest.approx(part["d"].mean(), abs=1e-6)


def test_no_labels_means_null_quality(frame):
    frame[LABEL] = np.nan
    table = aggregate(frame, ["version"], SPEC).table
    assert table["label_count"].eq(0).all()
    assert table[["roc_auc", "precision", "recall", "f1", "log_loss", "label_rate"]].isna().all().all()
    assert table["estimated_roc_auc"].notna().all()  # the estimate needs no labels


def test_estimate_is_the_expected_confusion_matrix():
    calibrated = np.array([0.9, 0.8, 0.3, 0.1])
    predicted = np.array([1, 1, 0, 0])
    out = estimated_quality(calibrated, predicted, calibrated)
    tp, fp, fn = 1.7, 0.3, 0.4
    assert out["estimated_precision"] == pytest.approx(tp / (tp + fp))
    assert out["estimated_recall"] == pytest.approx(tp / (tp + fn))
    assert out["estimated_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    missing = estimated_quality(calibrated, predicted, np.array([0.9, np.nan, 0.3, 0.1]))
    assert all(value is None for value in missing.values())


# --- the fast paths: the same numbers as numpy, scikit-learn and a plain frame ------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 101, 1000])
def test_quantiles_read_off_sorted_values_are_numpys(n):
    from churn.monitoring.aggregate import QUANTILES, sorted_quantiles

    rng = np.random.default_rng(n)
    for values in (rng.normal(50, 30, n), rng.integers(0, 5, n).astype(float), np.full(n, 0.1)):
        expected = np.quantile(values, QUANTILES)
        assert sorted_quantiles(np.sort(values), QUANTILES) == expected.tolist()  # bit for bit


@pytest.mark.parametrize("seed", range(4))
def test_quality_metrics_match_scikit_learn_with_and_without_ties(seed):
    from sklearn import metrics as skm

    from churn.monitoring.aggregate import realised_quality

    rng = np.random.default_rng(seed)
    n = 500
    probability = rng.uniform(size=n)
    if seed % 2:  # coarse scores: many ties
        probability = np.round(probability, 1)
    label = (rng.uniform(size=n) < probability).astype(float)
    predicted = (probability >= 0.4).astype("int64")
    out = realised_quality(label, probability, predicted)
    truth = label.astype(int)
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, probability), abs=2e-6)
    assert out["pr_auc"] == pytest.approx(skm.average_precision_score(truth, probability), abs=2e-6)
    assert out["log_loss"] == pytest.approx(skm.log_loss(truth, probability, labels=[0, 1]), abs=2e-6)
    assert out["precision"] == pytest.approx(skm.precision_score(truth, predicted), abs=2e-6)
    assert out["recall"] == pytest.approx(skm.recall_score(truth, predicted), abs=2e-6)
    assert out["f1"] == pytest.approx(skm.f1_score(truth, predicted), abs=2e-6)
    calibrated = np.clip(probability * 0.9 + 0.05, 0, 1)
    estimated = estimated_quality(probability, predicted, calibrated)
    weights = np.concatenate([calibrated, 1 - calibrated])
    reference = skm.roc_auc_score(np.r_[np.ones(n), np.zeros(n)], np.r_[probability, probability], sample_weight=weights)
    assert estimated["estimated_roc_auc"] == pytest.approx(reference, abs=2e-6)


def test_one_class_or_no_decision_gives_nulls_not_errors():
    from churn.monitoring.aggregate import realised_quality

    out = realised_quality(np.zeros(5), np.linspace(0.1, 0.5, 5), np.zeros(5, dtype="int64"))
    assert out["roc_auc"] is None and out["pr_auc"] is None and out["precision"] is None and out["recall"] is None
    assert out["f1"] is None and out["log_loss"] is not None


def test_where_and_column_mappings_give_what_a_copied_frame_gives(frame):
    selected = (frame["x"] > 10).to_numpy()
    expected = aggregate(frame.loc[selected].reset_index(drop=True), ["version"], SPEC)
    columns = {name: (frame[name].array if name == "colour" else frame[name].to_numpy()) for name in frame.columns}
    for source in (frame, columns):
        got = aggregate(source, ["version"], SPEC, where=selected)
        pd.testing.assert_frame_equal(got.profile, expected.profile)
        pd.testing.assert_frame_equal(got.sketch, expected.sketch)
        pd.testing.assert_frame_equal(got.table, expected.table)
    whole = aggregate(columns, ["version"], SPEC)
    pd.testing.assert_frame_equal(whole.profile, aggregate(frame, ["version"], SPEC).profile)
