"""Deterministic, seeded, stratified train / validation / test split."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from churn.config import Split
from churn.errors import ChurnError


def split_dataset(df: pd.DataFrame, label: str, split: Split) -> dict[str, pd.DataFrame]:
    if split.test_size + split.validation_size >= 1:
        raise ChurnError("prep.split: test_size + validation_size must be below 1.")
    counts = df[label].value_counts()
    if len(counts) < 2 or counts.min() < 3:
        raise ChurnError(
            f"cannot stratify on {label!r}: each class needs at least 3 rows, got {counts.to_dict()}."
        )
    # validation_size is a share of the whole table, so rescale it to what is left.
    validation_share = split.validation_size / (1 - split.test_size)
    # The split is made on row positions and each part taken once: splitting the frame
    # itself copied the rest and each part again (and once more to renumber), seconds of
    # copying at a million rows. scikit-learn's split depends only on the row count and
    # the labels, so the parts hold the same rows in the same order.
    labels = df[label].to_numpy()
    try:
        rest, test = train_test_split(
            np.arange(len(df)), test_size=split.test_size, stratify=labels, random_state=split.seed
        )
        train, validation = train_test_split(
            rest, test_size=validation_share, stratify=labels[rest], random_state=split.seed
        )
    except ValueError as exc:
        raise ChurnError(f"cannot split {len(df)} rows stratified on {label!r}: {exc}") from None
    return {"train": _rows(df, train), "validation": _rows(df, validation), "test": _rows(df, test)}


def _rows(df: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    part = df.take(positions)  # a new frame: renumbered in place, not copied again
    part.index = pd.RangeIndex(len(part))
    return part
