"""Identifier-like feature columns: unique per row, so a model can only memorise them.

A customer number among the features lets a model learn "this id churned" on the training
rows and nothing that transfers; on a table sorted by churn date it even leaks the label.
Continuous measurements (charges, balances) are often unique per row too, so only text
columns and integer-valued numbers count as identifiers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.config import Dataset
from churn.errors import ChurnError

# Below this many rows, distinct values in every row happen by chance.
MIN_ROWS = 100


# A repeat among this many first rows settles most columns (every category) without
# hashing the whole column: at a million rows that is most of the check's time.
FIRST_ROWS = 1_000


def is_identifier_like(values: pd.Series, numeric: bool) -> bool:
    if len(values) < MIN_ROWS or values.iloc[:FIRST_ROWS].duplicated().any():
        return False
    if values.isna().any() or values.nunique() != len(values):
        return False
    if not numeric:
        return True
    numbers = values.astype(float)
    return bool((numbers == np.floor(numbers)).all())


def identifier_like_columns(features: pd.DataFrame, dataset: Dataset) -> list[str]:
    return [
        column
        for column in dataset.feature_columns
        if is_identifier_like(features[column], numeric=column in dataset.numeric)
    ]


def reject_identifier_features(features: pd.DataFrame, dataset: Dataset) -> None:
    columns = identifier_like_columns(features, dataset)
    if columns:
        raise ChurnError(
            f"feature columns {columns} are identifier-like (a different value in each of the "
            f"{len(features)} rows): a model would memorise them. Remove them from dataset.numeric / "
            f"dataset.categorical in params.yaml (the row key belongs in dataset.id_column)."
        )
