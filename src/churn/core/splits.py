"""Readers for what prep writes: the split sets, and raw records as a client sends them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from churn.config import Dataset
from churn.errors import ChurnError

INPUT_EXAMPLE_ROWS = 5


def read_split(
    path: str | Path, dataset: Dataset, columns: list[str] | None = None, *, sample: tuple[int, int] | None = None
) -> pd.DataFrame:
    """A split set written by prep, checked to hold every feature and the label (or, with
    `columns`, only those columns, checked to be there).

    `sample=(size, seed)`: at most `size` rows, the ones `DataFrame.sample(n=size,
    random_state=seed)` would take from the whole set, in its order; they are taken before
    the conversion to pandas, so a set of millions of rows costs the memory of its sample.
    """
    expected = [*dataset.feature_columns, dataset.label_column] if columns is None else list(columns)
    try:
        if columns is None and sample is None:
            frame = pd.read_parquet(path)
        else:
            present = set(pq.read_schema(path).names)
            table = pq.read_table(path, columns=[c for c in expected if c in present])
            positions = None if sample is None else sample_positions(table.num_rows, *sample)
            frame = (table if positions is None else table.take(positions)).to_pandas()
    except FileNotFoundError:
        raise ChurnError(f"{path} not found: run `dvc repro prep` first.") from None
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise ChurnError(f"{path} lacks columns {missing}: rerun `dvc repro prep`.")
    return frame


def sample_positions(rows: int, size: int, seed: int) -> np.ndarray | None:
    """The row positions `DataFrame.sample(n=size, random_state=seed)` takes from a frame of
    `rows` rows, in its order (they depend on the row count and the seed alone); None when
    there are no more than `size` rows, so nothing is sampled."""
    if rows <= size:
        return None
    return np.asarray(pd.RangeIndex(rows).to_series().sample(n=size, random_state=seed).to_numpy(), dtype=np.intp)


def raw_example(raw_path: str | Path, dataset: Dataset) -> pd.DataFrame:
    """The first few raw records as a client sends them (types as pandas reads those rows):
    the servable model takes raw records, not cleaned features. Only those rows are parsed:
    reading the whole snapshot for five rows took seconds at a million."""
    columns = [*dataset.key_columns, *dataset.feature_columns]
    return pd.read_csv(raw_path, usecols=columns, nrows=INPUT_EXAMPLE_ROWS)[columns]
