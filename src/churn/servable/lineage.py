"""Dataset lineage for MLflow runs, declared instead of inferred.

`mlflow.data.from_pandas` infers the schema lazily by walking every value of every
object column in Python: about a minute per million rows, the largest cost of training
at scale. The split files are Parquet, so their column types are already declared in the
file's own schema; only whether a column holds nulls needs the data, and that is one
vectorised pass. The logged dataset carries the same name, digest (the DVC md5), source,
schema and profile as before.

mlflow is imported at module level: import this module only where a run is logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.types.schema import ColSpec, DataType, Schema

from churn.errors import ChurnError


def _mlflow_type(arrow_type: pa.DataType) -> DataType:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return DataType.string
    if pa.types.is_float64(arrow_type):
        return DataType.double
    if pa.types.is_float32(arrow_type):
        return DataType.float
    if pa.types.is_int64(arrow_type):
        return DataType.long
    if pa.types.is_integer(arrow_type):
        return DataType.integer
    if pa.types.is_boolean(arrow_type):
        return DataType.boolean
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return DataType.datetime
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return DataType.binary
    raise ChurnError(f"no MLflow column type for Parquet type {arrow_type}")


def declared_schema(frame: pd.DataFrame, parquet_path: str | Path) -> Schema:
    """The frame's MLflow schema: types from the Parquet file it was read from, `required`
    where the column holds no null (what inference would say, without the walk)."""
    try:
        file_schema = pq.read_schema(parquet_path)
    except (OSError, pa.ArrowException):
        file_schema = None
    if file_schema is None or any(column not in file_schema.names for column in frame.columns):
        # A frame that is not (exactly) the file: pyarrow types it from the values, in C++.
        file_schema = pa.Schema.from_pandas(frame, preserve_index=False)
    has_nulls = frame.isna().any()
    return Schema(
        [
            ColSpec(
                _mlflow_type(file_schema.field(column).type),
                name=column,
                required=not bool(has_nulls[column]),
            )
            for column in frame.columns
        ]
    )


class DeclaredPandasDataset(PandasDataset):
    """A PandasDataset whose schema is given, not inferred value by value."""

    def __init__(self, df: pd.DataFrame, *, schema: Schema, **kwargs: Any) -> None:
        self._declared_schema = schema
        super().__init__(df, **kwargs)

    @property
    def schema(self) -> Schema:  # a cached_property in the base
        return self._declared_schema


def parquet_dataset(
    frame: pd.DataFrame, *, path: str | Path, name: str, digest: str, targets: str | None
) -> DeclaredPandasDataset:
    """The MLflow dataset for a split read from `path`, with `digest` (its DVC md5)."""
    return DeclaredPandasDataset(
        frame,
        schema=declared_schema(frame, path),
        source=resolve_dataset_source(str(path)),
        targets=targets,
        name=name,
        digest=digest,
    )
