"""Readers for what prep writes: the split sets, and raw records as a client sends them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from churn.config import Dataset
from churn.errors import ChurnError

INPUT_EXAMPLE_ROWS = 5


def read_split(path: str | Path, dataset: Dataset, columns: list[str] | None = None) -> pd.DataFrame:
    """A split set written by prep, checked to hold every feature and the label (or, with
    `columns`, only those columns, checked to be there)."""
    expected = [*dataset.feature_columns, dataset.label_column] if columns is None else list(columns)
    try:
        if columns is None:
            frame = pd.read_parquet(path)
        else:
            present = set(pq.read_schema(path).names)
            frame = pd.read_parquet(path, columns=[c for c in expected if c in present])
    except FileNotFoundError:
        raise ChurnError(f"{path} not found: run `dvc repro prep` first.") from None
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
