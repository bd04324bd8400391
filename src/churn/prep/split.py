"""Deterministic, seeded, stratified train / validation / test split."""

from __future__ import annotations

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
    try:
        rest, test = train_test_split(
            df, test_size=split.test_size, stratify=df[label], random_state=split.seed
        )
        train, validation = train_test_split(
            rest, test_size=validation_share, stratify=rest[label], random_state=split.seed
        )
    except ValueError as exc:
        raise ChurnError(f"cannot split {len(df)} rows stratified on {label!r}: {exc}") from None
    return {
        "train": train.reset_index(drop=True),
        "validation": validation.reset_index(drop=True),
        "test": test.reset_index(drop=True),
    }
