"""Readers for what prep writes: the split sets, and raw records as a client sends them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churn.config import Dataset
from churn.errors import ChurnError

INPUT_EXAMPLE_ROWS = 5


def read_split(path: str | Path, dataset: Dataset) -> pd.DataFrame:
    """A split set written by prep, checked to hold every feature and the label."""
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise ChurnError(f"{path} not found: run `dvc repro prep` first.") from None
    expected = [*dataset.feature_columns, dataset.label_column]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise ChurnError(f"{path} lacks columns {missing}: rerun `dvc repro prep`.")
    return frame


def raw_example(raw_path: str | Path, dataset: Dataset) -> pd.DataFrame:
    """The first few raw records as a client sends them (types as pandas reads those rows):
    the servable model takes raw records, not cleaned features. Only those rows are parsed:
    reading the whole snapshot for five rows took seconds at a million."""
    columns = [*dataset.key_columns, *dataset.feature_columns]
    return pd.read_csv(raw_path, usecols=columns, nrows=INPUT_EXAMPLE_ROWS)[columns]
