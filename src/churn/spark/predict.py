"""`churn predict --engine spark`: score Parquet at any scale with the registered pyfunc.

1. Records are grouped by a hash of their id (so repeated ids meet in one group) and each
   group goes through the data contract (`validate_rows`) and the cleaning
   (`clean_features`) in pandas, on the executors: rows that break the contract leave
   here with their reasons, exactly as with the default engine.
2. Valid rows are scored by `mlflow.pyfunc.spark_udf` on the same registry version the
   default engine loads (an alias is resolved to its version first): the same pyfunc,
   contract, cleaning and probabilities.
3. The scored rows are appended to the inference log as one new file in its
   `date=YYYY-MM-DD` partition, moved in through `churn.storage` (whole or not at all,
   local or object store, as the default engine's), then the scores
   are written; the log first, so scores never stand without their log entry. Rejected
   rows go to `<output>.rejected/` with their reasons.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from churn.config import Dataset, Params
from churn.deployment import inference_log
from churn.errors import ChurnError
from churn.servable.scoring import PREDICTION, PROBABILITY
from churn.storage import Folder

REASONS = "rejection_reasons"
CLEAN_PREFIX = "__clean__"
BUCKET = "__churn_bucket__"
SCORE = "__churn_score__"
ROWS_PER_GROUP = 50_000  # pandas rows one executor task validates at once


@dataclass(frozen=True)
class SparkPredictResult:
    output: str
    scored_rows: int
    rejected_rows: int
    rejected_path: str | None
    log_root: str
    model_uri: str
    model_version: str


def rejected_dir_for(output: str) -> str:
    return output.rstrip("/") + ".rejected"


def _clean_type(column: str, dataset: Dataset) -> str:
    if column == dataset.timestamp_column:
        return "timestamp"
    return "double" if column in dataset.numeric else "string"


def _validate_and_clean(dataset: Dataset, raw_columns: list[str]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The pandas function each group runs: raw values kept, reasons or cleaned features added."""
    clean_columns = [*dataset.key_columns, *dataset.feature_columns]

    def run(group: pd.DataFrame) -> pd.DataFrame:
        from churn.core.clean import clean_features
        from churn.core.contract import validate_rows

        raw = group[raw_columns].reset_index(drop=True)
        valid, rejected = validate_rows(raw, dataset, source="spark input")
        out = raw.copy()
        out[REASONS] = None
        if len(rejected):
            # validate_rows keeps the labels of the rows it accepts: the rest were rejected.
            rejected_at = raw.index.difference(valid.index)
            out.loc[rejected_at, REASONS] = rejected[REASONS].to_numpy()
        cleaned = clean_features(valid, dataset)
        for column in clean_columns:
            values = pd.Series(None, index=out.index, dtype=object)
            if len(valid):
                values.loc[valid.index] = cleaned[column].to_numpy()
            if column == dataset.id_column:
                values = values.map(lambda v: v if v is None else str(v))
            out[CLEAN_PREFIX + column] = values
        return out

    return run


def predict_spark(
    params: Params,
    input_path: str,
    output_path: str,
    *,
    alias: str | None = None,
    version: str | None = None,
    log_root: str | None = None,
    now: datetime | None = None,
    spark: Any = None,
) -> SparkPredictResult:
    import mlflow.pyfunc
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType
    from pyspark.storagelevel import StorageLevel

    from churn.core.tracking import connect
    from churn.deployment.batch import load_scorer, resolve_model_uri
    from churn.spark.session import spark_session
    from churn.timestamps import aware_utc, refuse_future

    scored_at = aware_utc(datetime.now(UTC) if now is None else now, "now")
    refuse_future(scored_at, "the batch's time (--as-of)")
    log_root = str(params.paths.inference_log if log_root is None else log_root)
    if output_path.rstrip("/") == input_path.rstrip("/"):
        raise ChurnError(f"output {output_path} would overwrite the input: choose another path")

    connect(params)
    model_uri = resolve_model_uri(params, alias, version)
    # The alias resolved to its version, and that version loaded: its contract is the one the
    # executors apply, and the same version is what spark_udf scores with.
    scorer, model_version = load_scorer(model_uri)
    pinned = f"models:/{params.registry.model_name}/{model_version}"
    dataset: Dataset = scorer.dataset
    spark = spark or spark_session()

    try:
        raw = spark.read.parquet(input_path)
    except Exception as exc:  # AnalysisException: path does not exist / not Parquet
        raise ChurnError(f"cannot read Parquet records from {input_path}: {str(exc).splitlines()[0][:300]}") from None
    raw_columns = list(raw.columns)
    needed = [*dataset.key_columns, *dataset.feature_columns]
    missing = [c for c in needed if c not in raw_columns]
    if missing:
        raise ChurnError(f"{input_path} breaks the data contract: columns {missing} are missing; nothing was written")
    total = raw.count()
    if total == 0:
        raise ChurnError(f"{input_path} has no rows to score; nothing was written")

    kinds = {"double": DoubleType(), "timestamp": TimestampType(), "string": StringType()}
    checked_schema = StructType(
        [
            *raw.schema.fields,
            StructField(REASONS, StringType(), True),
            *[StructField(CLEAN_PREFIX + c, kinds[_clean_type(c, dataset)], True) for c in needed],
        ]
    )
    groups = max(1, math.ceil(total / ROWS_PER_GROUP))
    checked = (
        raw.withColumn(BUCKET, F.pmod(F.xxhash64(F.col(dataset.id_column).cast("string")), F.lit(groups)))
        .groupBy(BUCKET)
        .applyInPandas(_validate_and_clean(dataset, raw_columns), schema=checked_schema)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    rejected = checked.filter(F.col(REASONS).isNotNull()).select(*raw_columns, REASONS)
    valid = checked.filter(F.col(REASONS).isNull())

    result_type = f"`{dataset.id_column}` string, {PROBABILITY} double, {PREDICTION} long"
    udf = mlflow.pyfunc.spark_udf(spark, pinned, result_type=result_type, env_manager="local")
    inputs = [c for c in [*needed, dataset.label_column] if c in raw_columns]
    stamp = F.lit(scored_at.strftime("%Y-%m-%d %H:%M:%S.%f")).cast("timestamp")
    scored = (
        valid.withColumn(SCORE, udf(F.struct(*[F.col(c) for c in inputs])))
        .withColumn(PROBABILITY, F.col(f"{SCORE}.{PROBABILITY}"))
        .withColumn(PREDICTION, F.col(f"{SCORE}.{PREDICTION}"))
        .withColumn(inference_log.MODEL_VERSION, F.lit(model_version))
        .withColumn(inference_log.MODEL_URI, F.lit(model_uri))
        .withColumn(inference_log.SCORED_AT, stamp)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    label = (
        F.col(dataset.label_column).cast("string") if dataset.label_column in raw_columns else F.lit(None).cast("string")
    )
    try:
        scored_rows = scored.count()
        rejected_rows = total - scored_rows
        log_rows = scored.select(
            *[F.col(CLEAN_PREFIX + c).alias(c) for c in needed],
            PROBABILITY,
            PREDICTION,
            inference_log.MODEL_VERSION,
            inference_log.MODEL_URI,
            inference_log.SCORED_AT,
            label.alias(dataset.label_column),
            F.lit(scored_at.date().isoformat()).alias(inference_log.DATE),
        )
        if scored_rows:
            _append_log(log_rows.drop(inference_log.DATE), log_root, scored_at)
        output_columns = [
            F.col(CLEAN_PREFIX + c).alias(c) for c in dataset.key_columns
        ] + [F.col(PROBABILITY), F.col(PREDICTION), F.col(inference_log.MODEL_VERSION), F.col(inference_log.SCORED_AT)]
        if dataset.label_column in raw_columns:
            output_columns.append(label.alias(dataset.label_column))
        scored.select(*output_columns).write.mode("overwrite").parquet(output_path)
        rejected_dir = rejected_dir_for(output_path)
        if rejected_rows:
            rejected.write.mode("overwrite").parquet(rejected_dir)
        else:
            _remove_stale(spark, rejected_dir)
    finally:
        scored.unpersist()
        checked.unpersist()
    return SparkPredictResult(
        output=output_path,
        scored_rows=scored_rows,
        rejected_rows=rejected_rows,
        rejected_path=rejected_dir if rejected_rows else None,
        log_root=log_root,
        model_uri=model_uri,
        model_version=model_version,
    )


def _remove_stale(spark: Any, directory: str) -> None:
    """A rejected set from an earlier run of the same output would describe other data."""
    if "://" not in directory:
        import shutil

        shutil.rmtree(Path(directory), ignore_errors=True)
        return
    jvm = spark.sparkContext._jvm  # object stores: through Hadoop's FileSystem
    path = jvm.org.apache.hadoop.fs.Path(directory)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if fs.exists(path):
        fs.delete(path, True)


def _append_log(rows: Any, log_root: str, scored_at: datetime) -> None:
    """Append the batch's log rows as ONE new log file through `churn.storage`, the way the
    default engine does: Spark writes it into a hidden staging folder inside the date
    partition (readers list only `part-*` files of a partition, so they never see it), then
    the finished file is moved in under the log's own name (a rename locally, a server-side
    copy in an object store), so the batch appears whole or not at all."""
    directory, name = inference_log.new_log_file(log_root, scored_at)
    staging: Folder = directory.child(f".spark-{uuid.uuid4().hex}")
    try:
        # One file: `scored` is persisted, so only this write runs in one task, not the scoring.
        rows.coalesce(1).write.mode("errorifexists").parquet(str(staging))
        parts = staging.files("part-", ".parquet")
        if len(parts) != 1:
            raise ChurnError(
                f"Spark wrote {len(parts)} files for the log batch in {staging}, expected 1: nothing was "
                "logged and no scores were written"
            )
        directory.put_file(name, parts[0])
    finally:
        staging.remove()
