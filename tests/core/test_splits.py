"""churn.core.splits: the split-set reader and the raw input example."""

from __future__ import annotations

import pandas as pd
import pytest

from churn.core.splits import INPUT_EXAMPLE_ROWS, raw_example, read_split, sample_positions
from churn.errors import ChurnError


def test_raw_example_is_the_first_records_with_key_and_feature_columns(tmp_path, raw_frame, dataset):
    path = tmp_path / "raw.csv"
    raw_frame.to_csv(path, index=False)
    example = raw_example(path, dataset)
    columns = [*dataset.key_columns, *dataset.feature_columns]
    assert list(example.columns) == columns
    assert len(example) == INPUT_EXAMPLE_ROWS
    whole = pd.read_csv(path, usecols=columns)[columns].head(INPUT_EXAMPLE_ROWS)
    assert example.astype(str).equals(whole.astype(str))


def test_raw_example_does_not_parse_rows_past_the_example(tmp_path, raw_frame, dataset):
    path = tmp_path / "raw.csv"
    text = raw_frame.head(INPUT_EXAMPLE_ROWS).to_csv(index=False)
    path.write_text(text + '"unterminated,' + "\n")  # a row the whole-file parser would choke on
    assert len(raw_example(path, dataset)) == INPUT_EXAMPLE_ROWS


def test_read_split_names_missing_columns_and_the_fix(tmp_path, raw_frame, dataset):
    path = tmp_path / "train.parquet"
    raw_frame.drop(columns=[dataset.feature_columns[0]]).to_parquet(path)
    with pytest.raises(ChurnError, match="dvc repro prep"):
        read_split(path, dataset)
    with pytest.raises(ChurnError, match="not found"):
        read_split(tmp_path / "missing.parquet", dataset)


@pytest.mark.parametrize(("size", "seed"), [(7, 0), (40, 42), (10**6, 1)])
def test_a_sampled_read_is_the_sample_pandas_takes_from_the_whole_set(tmp_path, raw_frame, dataset, size, seed):
    path = tmp_path / "train.parquet"
    raw_frame.to_parquet(path, index=False)
    columns = [dataset.feature_columns[1], dataset.feature_columns[0]]
    whole = read_split(path, dataset)[columns]
    expected = whole.sample(n=size, random_state=seed) if len(whole) > size else whole
    sampled = read_split(path, dataset, columns, sample=(size, seed))
    pd.testing.assert_frame_equal(sampled, expected.reset_index(drop=True))
    assert sample_positions(len(whole), size, seed) is None or len(sampled) == size


def test_a_read_of_some_columns_still_names_a_missing_one(tmp_path, raw_frame, dataset):
    path = tmp_path / "train.parquet"
    raw_frame.to_parquet(path, index=False)
    with pytest.raises(ChurnError, match=r"lacks columns \['no_such_column'\]"):
        read_split(path, dataset, [dataset.feature_columns[0], "no_such_column"], sample=(5, 0))
