"""churn.prep.split: seeded, stratified train / validation / test split."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest

from churn.config import Split
from churn.errors import ChurnError
from churn.prep.split import split_dataset

N = 5000


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "id": [f"c{i:05d}" for i in range(N)],
        "x": rng.normal(size=N),
        "y": (rng.random(N) < 0.27).astype(int),
    })


def test_sizes_match_shares(frame):
    split = Split(seed=1, test_size=0.2, validation_size=0.15)
    parts = split_dataset(frame, "y", split)
    assert set(parts) == {"train", "validation", "test"}
    assert abs(len(parts["test"]) - N * split.test_size) <= 1
    assert abs(len(parts["validation"]) - N * split.validation_size) <= 1
    assert sum(len(p) for p in parts.values()) == N


def test_configured_shares(frame, params):
    split = params.prep.split
    parts = split_dataset(frame, "y", split)
    assert abs(len(parts["test"]) - N * split.test_size) <= 1
    assert abs(len(parts["validation"]) - N * split.validation_size) <= 1


def test_stratified(frame, params):
    parts = split_dataset(frame, "y", params.prep.split)
    overall = frame["y"].mean()
    for name, part in parts.items():
        assert abs(part["y"].mean() - overall) <= 0.01, name


def test_disjoint_and_complete(frame, params):
    parts = split_dataset(frame, "y", params.prep.split)
    ids = [set(p["id"]) for p in parts.values()]
    assert sum(len(s) for s in ids) == N
    assert set.union(*ids) == set(frame["id"])
    for part in parts.values():
        merged = part.merge(frame, on="id", suffixes=("", "_orig"))
        assert (merged["x"] == merged["x_orig"]).all() and (merged["y"] == merged["y_orig"]).all()
        assert list(part.index) == list(range(len(part)))
        assert list(part.columns) == list(frame.columns)


def test_deterministic_for_the_same_seed(frame):
    first = split_dataset(frame, "y", Split(seed=3))
    second = split_dataset(frame.copy(), "y", Split(seed=3))
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name])


def test_different_seed_gives_different_split(frame):
    first = split_dataset(frame, "y", Split(seed=3))
    second = split_dataset(frame, "y", Split(seed=4))
    assert set(first["test"]["id"]) != set(second["test"]["id"])
    assert set(first["validation"]["id"]) != set(second["validation"]["id"])


def test_input_not_mutated(frame):
    before = frame.copy()
    split_dataset(frame, "y", Split())
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize("positives", [0, 1, 2])
def test_too_few_rows_of_a_class(positives):
    df = pd.DataFrame({"id": range(100), "y": [1] * positives + [0] * (100 - positives)})
    with pytest.raises(ChurnError, match="'y'"):
        split_dataset(df, "y", Split())


def test_shares_summing_to_one_are_rejected(frame):
    with pytest.raises(ChurnError, match="below 1"):
        split_dataset(frame, "y", Split(test_size=0.5, validation_size=0.5))


def test_tiny_table_gives_churn_error_not_value_error():
    df = pd.DataFrame({"id": range(6), "y": [1, 1, 1, 0, 0, 0]})
    with contextlib.suppress(ChurnError):  # a clear refusal is fine; so would be a valid split
        split_dataset(df, "y", Split())
