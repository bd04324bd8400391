"""What `churn predict` writes for scored rows: the score file's rows and the inference log's.

Kept apart from `batch` (which loads models through MLflow) so that a scoring worker
process can shape its batch's rows into Arrow tables without importing MLflow.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pyarrow as pa

from churn.config import Dataset
from churn.deployment import inference_log
from churn.servable.scoring import PREDICTION, PROBABILITY


def output_frame(scored: pd.DataFrame, dataset: Dataset, model_version: str, scored_at: datetime) -> pd.DataFrame:
    """The score file's rows for scored records: key, probability, decision, version, time, label."""
    output = scored[dataset.key_columns].reset_index(drop=True).copy()
    output[dataset.id_column] = output[dataset.id_column].astype(str)
    output[PROBABILITY] = scored[PROBABILITY].to_numpy(dtype="float64")
    output[PREDICTION] = scored[PREDICTION].to_numpy(dtype="int64")
    output[inference_log.MODEL_VERSION] = model_version
    output[inference_log.SCORED_AT] = pd.Series(pd.Timestamp(scored_at), index=output.index).astype(
        "datetime64[ns, UTC]"
    )
    if dataset.label_column in scored.columns:
        label = scored[dataset.label_column].reset_index(drop=True)
        output[dataset.label_column] = label.astype(object).where(label.notna(), None).astype("string")
    return output


def no_scores(dataset: Dataset, model_version: str, scored_at: datetime) -> pd.DataFrame:
    """The score file of a batch without a scored row: the columns, typed, and no rows."""
    columns = {column: pd.Series(dtype=object) for column in dataset.key_columns}
    empty = pd.DataFrame({**columns, PROBABILITY: pd.Series(dtype="float64"), PREDICTION: pd.Series(dtype="int64")})
    return output_frame(empty, dataset, model_version, scored_at)


def written_tables(
    scored: pd.DataFrame, *, dataset: Dataset, model_version: str, model_uri: str, scored_at: datetime
) -> tuple[pa.Table, pa.Table]:
    """The score file's rows and the inference log's rows for `scored`, as Arrow tables
    (what a worker hands back: buffers, not a Python object per value)."""
    scores = output_frame(scored, dataset, model_version, scored_at)
    logged = inference_log.log_rows(
        scored, dataset=dataset, model_version=model_version, model_uri=model_uri, scored_at=scored_at
    )
    return (pa.Table.from_pandas(scores, preserve_index=False), pa.Table.from_pandas(logged, preserve_index=False))
