"""`churn monitor --engine spark`: the monitor's window aggregates computed by Spark.

The default engine reads the log partition by partition on one machine; this one hands
the heavy part to Spark and keeps every statistic that compares or judges in the shared
pandas code (`monitoring.comparison`: the baseline, its bins and the drift), so both
engines write the same tables (tests/spark/test_monitor.py):

1. Spark reads the log (`date=*/part-*.parquet`, a local path or an object store), joins
   the latest attached label per id (latest `labelled_at`, then the later file, as
   `inference_log.read_labels`), drops rows stamped after now, puts every row in its window
   of each granularity and in each slice it belongs to, and aggregates per window x model
   version x slice x column: counts, nulls, distinct values, mean, standard deviation,
   minimum, maximum and exact quantiles (Spark's `percentile`, numpy's linear
   interpolation) of the numeric columns; row counts per level of the categorical ones;
   counts and value totals per baseline quantile bin (the drift sketches); and the rows per
   distinct (probability, decision, label) for the quality figures.
2. The driver receives only those aggregates. Top values and the sketches are read off the
   level counts; `aggregate.table` computes the table rows (realised quality, the
   label-free estimate) from one window at a time, its distinct scores repeated by their
   counts; `tables.finish_profile` and `tables.drift_table` (distances, tests, status)
   then run exactly as for the default engine.

It recomputes every window on each run (the default engine's incremental state in
`monitor.paths.state_dir` is left as it is: that engine checks the state against the log's
files, so the two can alternate). The evidently drill-down reads a window in pandas, so
this engine skips it (the dashboard links the last one written).

pyspark is imported inside the functions: the default engine never loads it.
"""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from churn.config import Dataset, Params
from churn.deployment import inference_log
from churn.errors import ChurnError
from churn.io import write_parquet
from churn.monitoring import comparison, estimate, tables
from churn.monitoring.aggregate import CALIBRATED, DIGITS, LABEL, QUANTILE_COLUMNS, QUANTILES, TOP_VALUES, table
from churn.monitoring.run import MonitorResult
from churn.monitoring.settings import check as check_settings
from churn.monitoring.slices import check_expression
from churn.monitoring.windows import parse_granularity, windows_of_days
from churn.servable.scoring import PREDICTION, PROBABILITY

MODEL_VERSION = inference_log.MODEL_VERSION
SCORED_AT = inference_log.SCORED_AT
# Spark cannot read Parquet's nanosecond timestamps (the default engine writes them, through
# pandas); its own files hold microseconds. Both are read as their raw 64-bit integers and
# told apart by size: any instant after 1973 in nanoseconds is above 1e17, an instant in
# microseconds reaches it only in the year 5138.
NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
_NANOS_FROM = 10**17
_NS = 1_000_000_000
# Column names of the intermediate frames (never in the log).
_NS_COLUMN, _FUTURE, _START, _SLICE, _ID, _ATTACHED, _COUNT = (
    "__ns", "__future", "__window_start", "__slice", "__id", "__attached", "__rows",
)
_KEYS = ["granularity", _START, MODEL_VERSION, _SLICE]


@dataclass(frozen=True)
class SparkAggregates:
    """What Spark hands the driver: small frames, one row per group x column (x level/bin)."""

    numeric: pd.DataFrame  # keys, column_name, count, num_nulls, distinct_count, mean, stddev, min, max, quantiles
    levels: pd.DataFrame  # keys, column_name, value (null: the nulls), rows
    bins: pd.DataFrame  # keys, column_name, bucket, rows, total
    scores: pd.DataFrame  # keys, probability, decision, label (null: none yet), rows
    days: list[date]  # the log's date partitions
    rows: int  # rows aggregated (not in the future)
    future_rows: int
    duplicate_labels: int
    unknown_label_ids: int


def run_spark(params: Params, *, now: datetime | None = None, spark: Any = None) -> MonitorResult:
    """`churn monitor` on Spark: the same profile and drift tables as `monitoring.run.run`."""
    settings = params.monitor
    now_ts = pd.Timestamp(now or datetime.now(UTC)).tz_convert("UTC")
    check_settings(params)
    if spark is None:
        from churn.spark.session import spark_session

        spark = spark_session()  # a clear ChurnError without pyspark or Java
    root = str(params.paths.inference_log).rstrip("/")

    against = comparison.load(params)
    aggregates = aggregate_log(spark, root, params, against.spec.edges, now_ts)
    if aggregates.rows == 0:
        raise ChurnError(
            f"no rows to monitor in {root}: {aggregates.future_rows} rows are stamped after now "
            f"({now_ts:%Y-%m-%d %H:%M} UTC); check the scoring clock or --as-of"
        )
    profile_parts, sketch_parts = _assemble(aggregates, params, against.calibration, against.spec)
    profile = tables.finish_profile(tables.concat(profile_parts), settings.min_rows)
    drift = comparison.drift(params, against, tables.concat(sketch_parts))
    write_parquet(settings.paths.profile, profile)
    write_parquet(settings.paths.drift, drift)
    windows = len(windows_of_days(settings.granularities, aggregates.days))
    warnings = comparison.warnings(
        against.summary, future_rows=aggregates.future_rows, unknown_label_ids=aggregates.unknown_label_ids,
        duplicate_labels=aggregates.duplicate_labels,
    )
    return MonitorResult(
        profile, drift, against.summary, windows, windows, aggregates.rows, aggregates.future_rows,
        aggregates.duplicate_labels, aggregates.unknown_label_ids, False, warnings,
        against.baseline.frame if against.baseline else None, None, None,
    )


# ------------------------------------------------------------------------------ Spark side


def aggregate_log(
    spark: Any, root: str, params: Params, edges: dict[str, np.ndarray], now: pd.Timestamp
) -> SparkAggregates:
    """Every window's aggregates of the log under `root`, computed by Spark."""
    from pyspark.sql import functions as F
    from pyspark.storagelevel import StorageLevel

    settings, dataset = params.monitor, params.dataset
    previous = spark.conf.get(NANOS_AS_LONG, "false")
    spark.conf.set(NANOS_AS_LONG, "true")
    cached: list[Any] = []
    try:
        log = _read(spark, f"{root}/{inference_log.DATE}=*/part-*.parquet", _log_schema(dataset), root, root)
        if log is None:
            raise ChurnError(
                f"the inference log {root} holds no scored rows: score a batch with `churn predict` first "
                "(or set paths.inference_log); there is nothing to monitor"
            )
        label_files = _read(
            spark, f"{root}/{inference_log.LABELS_DIR}/{inference_log.DATE}=*/part-*.parquet",
            _labels_schema(dataset), f"{root}/{inference_log.LABELS_DIR}", None,
        )
        rows = log.select(
            *[F.nanvl(F.col(c), F.lit(None).cast("double")).alias(c) for c in dataset.numeric],
            *[F.col(c) for c in dataset.categorical],
            F.col(PROBABILITY), F.col(PREDICTION), F.col(MODEL_VERSION), F.col(inference_log.DATE),
            F.col(dataset.id_column).cast("string").alias(_ID),
            _encode(F.col(dataset.label_column), dataset).alias(LABEL),
            _nanoseconds(F.col(SCORED_AT)).alias(_NS_COLUMN),
        ).withColumn(_FUTURE, F.col(_NS_COLUMN) > F.lit(int(now.value)))

        duplicates, unknown = 0, 0
        if label_files is not None:
            # The latest label per id: latest labelled_at, then the later file (date, then name).
            latest = label_files.groupBy(F.col(dataset.id_column).cast("string").alias(_ID)).agg(
                F.max_by(
                    _encode(F.col(dataset.label_column), dataset),
                    F.struct(_nanoseconds(F.col(inference_log.LABELLED_AT)), F.col("_metadata.file_path")),
                ).alias(_ATTACHED),
                F.count(F.lit(1)).alias(_COUNT),
            )
            logged = rows.select(_ID).distinct().withColumn("__logged", F.lit(True))
            every, distinct, unmatched = (
                latest.join(logged, _ID, "left")
                .agg(F.sum(_COUNT), F.count(F.lit(1)), F.sum(F.col("__logged").isNull().cast("long")))
                .first()
            )
            duplicates, unknown = int(every or 0) - int(distinct or 0), int(unmatched or 0)
            # An attached label wins over one that came with the request.
            rows = rows.join(latest.select(_ID, _ATTACHED), _ID, "left").withColumn(
                LABEL, F.coalesce(F.col(_ATTACHED), F.col(LABEL))
            ).drop(_ATTACHED)
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(rows)

        per_day = rows.groupBy(inference_log.DATE).agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(F.col(_FUTURE).cast("long")).alias("future"),
            F.sum((F.col(PROBABILITY).isNull() | F.col(MODEL_VERSION).isNull()).cast("long")).alias("broken"),
        ).toPandas()
        broken = per_day.loc[per_day["broken"] > 0, inference_log.DATE]
        if len(broken):
            raise ChurnError(
                f"partitions {', '.join(str(d) for d in sorted(broken))} of {root} hold rows without "
                f"{PROBABILITY} or {MODEL_VERSION}: a log written for another contract cannot be monitored "
                "against this one; move those partitions to another log root"
            )
        future = int(per_day["future"].sum())
        present = int(per_day["rows"].sum()) - future
        days = sorted(pd.Timestamp(d).date() for d in per_day[inference_log.DATE])
        if present == 0:
            empty = pd.DataFrame()
            return SparkAggregates(empty, empty, empty, empty, days, 0, future, duplicates, unknown)

        grouped = _windowed(rows.filter(~F.col(_FUTURE)), settings.granularities, settings.slices, dataset)
        grouped = grouped.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(grouped)
        numeric, bins = _numeric(grouped, [*dataset.numeric, PROBABILITY], edges)
        levels = _levels(grouped, [*dataset.categorical, PREDICTION])
        scores = grouped.groupBy(*_KEYS, PROBABILITY, PREDICTION, LABEL).agg(F.count(F.lit(1)).alias(_COUNT))
        return SparkAggregates(
            numeric.toPandas(), levels.toPandas(), bins.toPandas(), scores.toPandas(),
            days, present, future, duplicates, unknown,
        )
    finally:
        for frame in cached:
            frame.unpersist()
        spark.conf.set(NANOS_AS_LONG, previous)


def _read(spark: Any, pattern: str, schema: Any, where: str, base: str | None) -> Any:
    """The Parquet files matching `pattern` (None when there are none); `base`: the folder
    whose `date=` subfolders give the partition column."""
    reader = spark.read.schema(schema)
    if base is not None:
        reader = reader.option("basePath", base)
    try:
        return reader.parquet(pattern)
    except Exception as exc:
        if "PATH_NOT_FOUND" in str(exc) or "Path does not exist" in str(exc):
            return None
        raise ChurnError(f"cannot read {where}: {str(exc).splitlines()[0][:300]}") from None


def _log_schema(dataset: Dataset) -> Any:
    from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType

    fields = [StructField(c, DoubleType()) for c in dataset.numeric]
    fields += [StructField(c, StringType()) for c in [dataset.id_column, *dataset.categorical]]
    fields += [
        StructField(PROBABILITY, DoubleType()), StructField(PREDICTION, LongType()),
        StructField(MODEL_VERSION, StringType()), StructField(SCORED_AT, LongType()),
        StructField(dataset.label_column, StringType()), StructField(inference_log.DATE, DateType()),
    ]
    return StructType(fields)


def _labels_schema(dataset: Dataset) -> Any:
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    return StructType([
        StructField(dataset.id_column, StringType()), StructField(dataset.label_column, StringType()),
        StructField(inference_log.LABELLED_AT, LongType()),
    ])


def _nanoseconds(raw: Any) -> Any:
    """A Parquet timestamp read as its integer: nanoseconds since the epoch, from ns or µs."""
    from pyspark.sql import functions as F

    return F.when(F.abs(raw) >= F.lit(_NANOS_FROM), raw).otherwise(raw * F.lit(1000))


def _encode(text: Any, dataset: Dataset) -> Any:
    """Labels as 1.0 / 0.0 / null: `baseline.encode`'s mapping (the dataset's labels win)."""
    from pyspark.sql import functions as F

    return (
        F.when(text == F.lit(dataset.positive_label), F.lit(1.0))
        .when(text == F.lit(dataset.negative_label), F.lit(0.0))
        .when(text == F.lit("1"), F.lit(1.0))
        .when(text == F.lit("0"), F.lit(0.0))
        .otherwise(F.lit(None).cast("double"))
    )


def _windowed(rows: Any, granularities: list[str], slices: list[str], dataset: Dataset) -> Any:
    """Each row once per window it falls in (one per granularity) and per slice it is in
    (0: the whole table, i: the i-th slice); windows as `Granularity.starts` computes them."""
    from pyspark.sql import functions as F

    shifted_starts = []
    for text in granularities:
        granularity = parse_granularity(text)
        width, anchor = granularity.seconds * _NS, granularity.anchor_seconds * _NS
        shifted = F.col(_NS_COLUMN) - F.lit(anchor)
        start = shifted - F.pmod(shifted, F.lit(width)) + F.lit(anchor)
        shifted_starts.append(F.struct(F.lit(granularity.text).alias("granularity"), start.alias(_START)))
    member = [F.lit(0), *[F.when(_slice_condition(s, dataset), F.lit(i + 1)) for i, s in enumerate(slices)]]
    return (
        rows.withColumn("__window", F.explode(F.array(*shifted_starts)))
        .withColumn(_SLICE, F.explode(F.filter(F.array(*member), lambda index: index.isNotNull())))
        .select("*", "__window.*")
        .drop("__window")
    )


def _numeric(grouped: Any, columns: list[str], edges: dict[str, np.ndarray]) -> tuple[Any, Any]:
    """Profile statistics per group x numeric column, and bucket counts/totals on the
    baseline's quantile bins (a value's bucket: how many inner edges are at or below it)."""
    from pyspark.sql import functions as F

    entries = []
    for column in columns:
        value = F.col(column).cast("double")
        if column in edges:
            inner = F.array(*[F.lit(float(e)) for e in edges[column]])
            bucket = F.when(value.isNotNull(), F.size(F.filter(inner, _at_or_below(value))))
        else:
            bucket = F.lit(None).cast("int")
        entries.append(F.struct(F.lit(column).alias("column_name"), value.alias("value"), bucket.alias("bucket")))
    long = grouped.select(*_KEYS, F.explode(F.array(*entries)).alias("__entry")).select(*_KEYS, "__entry.*")
    value = F.col("value")
    profile = long.groupBy(*_KEYS, "column_name").agg(
        F.count(value).alias("count"),
        F.sum(value.isNull().cast("long")).alias("num_nulls"),
        F.countDistinct(value).alias("distinct_count"),
        F.avg(value).alias("mean"),
        F.stddev_samp(value).alias("stddev"),
        F.min(value).alias("min"),
        F.max(value).alias("max"),
        F.percentile(value, [float(q) for q in QUANTILES]).alias("quantiles"),
    )
    bins = (
        long.filter(F.col("bucket").isNotNull())
        .groupBy(*_KEYS, "column_name", "bucket")
        .agg(F.count(F.lit(1)).alias(_COUNT), F.sum(value).alias("total"))
    )
    return profile, bins


def _at_or_below(value: Any) -> Any:
    return lambda edge: edge <= value


def _levels(grouped: Any, columns: list[str]) -> Any:
    """Rows per group x categorical column x level (the null level counts the nulls)."""
    from pyspark.sql import functions as F

    entries = [F.struct(F.lit(c).alias("column_name"), F.col(c).cast("string").alias("value")) for c in columns]
    long = grouped.select(*_KEYS, F.explode(F.array(*entries)).alias("__entry")).select(*_KEYS, "__entry.*")
    return long.groupBy(*_KEYS, "column_name", "value").agg(F.count(F.lit(1)).alias(_COUNT))


# ------------------------------------------------------------------------------ slices


def _slice_condition(expression: str, dataset: Dataset) -> Any:
    """A slice expression (checked by `slices.check_expression`) as a Spark condition with
    pandas' answer for nulls: a comparison with a null is false, except `!=` and `not in`,
    which are true; the row is in the slice only when the whole expression is true."""
    from pyspark.sql import functions as F

    try:
        check_expression(expression, dataset.feature_columns)
    except ValueError as exc:
        raise ChurnError(f"monitor.slices: {exc}") from None
    tree = ast.parse(expression.strip(), mode="eval").body
    return F.coalesce(_condition(tree, expression, dataset), F.lit(False))


def _condition(node: ast.AST, expression: str, dataset: Dataset) -> Any:
    if isinstance(node, ast.BoolOp):
        parts = [_condition(v, expression, dataset) for v in node.values]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if isinstance(node.op, ast.And) else (out | part)
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
        left, right = _condition(node.left, expression, dataset), _condition(node.right, expression, dataset)
        return (left & right) if isinstance(node.op, ast.BitAnd) else (left | right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
        return ~_condition(node.operand, expression, dataset)
    if isinstance(node, ast.Compare):
        out = None
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
            part = _comparison(op, left, right, expression, dataset)
            out = part if out is None else out & part
        return out
    raise ChurnError(f"monitor.slices: {expression!r}: the Spark engine evaluates comparisons joined by and/or/not only")


def _comparison(op: ast.cmpop, left: ast.AST, right: ast.AST, expression: str, dataset: Dataset) -> Any:
    from pyspark.sql import functions as F

    _check_types(left, right, expression, dataset)
    _check_types(right, left, expression, dataset)
    a, b = _operand(left, expression, dataset), _operand(right, expression, dataset)
    true_on_null = isinstance(op, (ast.NotEq, ast.NotIn))
    if isinstance(op, (ast.In, ast.NotIn)):
        if not isinstance(right, (ast.List, ast.Tuple)):
            raise ChurnError(f"monitor.slices: {expression!r}: `in` needs a list of constants")
        inside = a.isin(*b)
        result = inside if isinstance(op, ast.In) else ~inside
    else:
        result = _COMPARE[type(op)](a, b)
    return F.coalesce(result, F.lit(true_on_null))


_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}


def _check_types(column: ast.AST, other: ast.AST, expression: str, dataset: Dataset) -> None:
    """Text columns compare with text, numeric ones with numbers: Spark would cast one side
    silently where pandas answers differently."""
    if not isinstance(column, ast.Name) or isinstance(other, ast.Name):
        return
    values = [_constant(e, expression) for e in other.elts] if isinstance(other, (ast.List, ast.Tuple)) else [
        _constant(other, expression)
    ]
    text = column.id not in dataset.numeric
    if any(isinstance(v, str) != text for v in values):
        kind = "text" if text else "numbers"
        raise ChurnError(f"monitor.slices: {expression!r}: compare {column.id} with {kind}")


def _operand(node: ast.AST, expression: str, dataset: Dataset) -> Any:
    from pyspark.sql import functions as F

    if isinstance(node, ast.Name):
        return F.col(node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_constant(e, expression) for e in node.elts]
    return F.lit(_constant(node, expression))


def _constant(node: ast.AST, expression: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
    raise ChurnError(f"monitor.slices: {expression!r}: compare columns with constants")


# ------------------------------------------------------------------------------ driver side


def _assemble(
    aggregates: SparkAggregates, params: Params, calibration: estimate.Calibration, spec: Any
) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Profile and sketch parts in the default engine's layout, from Spark's aggregates."""
    settings = params.monitor
    slices: list[str | None] = [None, *settings.slices]
    widths = {text: parse_granularity(text).width for text in settings.granularities}

    def constants(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        out["window_start"] = pd.to_datetime(out[_START].astype("int64"), utc=True)
        out["window_end"] = out["window_start"] + out["granularity"].map(widths)
        out["slice_key"] = [slices[int(i)] for i in out[_SLICE]]
        out["slice_value"] = [None if i == 0 else "true" for i in out[_SLICE]]
        return out.drop(columns=[_START, _SLICE])

    profile_parts: list[pd.DataFrame] = []
    sketch_parts: list[pd.DataFrame] = []

    numeric = aggregates.numeric.copy()
    quantiles = np.array([q if q is not None else [np.nan] * len(QUANTILES) for q in numeric.pop("quantiles")])
    for i, name in enumerate(QUANTILE_COLUMNS):
        numeric[name] = quantiles[:, i] if len(numeric) else []
    floats = ["mean", "stddev", "min", "max", *QUANTILE_COLUMNS]
    numeric[floats] = numeric[floats].astype("float64").round(DIGITS)
    numeric["top_values"] = None
    profile_parts.append(constants(numeric))

    levels = aggregates.levels
    categorical_rows = []
    for key, part in levels.groupby([*_KEYS, "column_name"], sort=False, dropna=False):
        known = part[part["value"].notna()]
        counts = known[_COUNT].to_numpy("int64")
        categorical_rows.append({
            **dict(zip([*_KEYS, "column_name"], key, strict=True)),
            "count": int(counts.sum()), "num_nulls": int(part.loc[part["value"].isna(), _COUNT].sum()),
            "distinct_count": int((counts > 0).sum()),
            "top_values": _top_values(known["value"].to_numpy(dtype=str), counts),
        })
    if categorical_rows:
        profile_parts.append(constants(pd.DataFrame(categorical_rows)))
    known_levels = levels[levels["value"].notna()]
    sketch_parts.append(constants(pd.DataFrame({
        **{k: known_levels[k] for k in [*_KEYS, "column_name"]},
        "bucket": known_levels["value"].astype(str), "count": known_levels[_COUNT].astype("int64"),
        "total": np.nan,
    })))
    bins = aggregates.bins
    sketch_parts.append(constants(pd.DataFrame({
        **{k: bins[k] for k in [*_KEYS, "column_name"]},
        "bucket": bins["bucket"].astype("int64").astype(str), "count": bins[_COUNT].astype("int64"),
        "total": bins["total"].astype("float64"),
    })))
    profile_parts.append(constants(_table(aggregates.scores, calibration, spec)))
    return profile_parts, sketch_parts


def _top_values(levels: np.ndarray, counts: np.ndarray) -> str:
    """`aggregate.profile`'s top values: by count, then by level, as JSON [[level, count], ...]."""
    order = np.lexsort((levels, -counts))[:TOP_VALUES]
    return json.dumps([[str(levels[i]), int(counts[i])] for i in order if counts[i] > 0])


def _table(scores: pd.DataFrame, calibration: estimate.Calibration, spec: Any) -> pd.DataFrame:
    """The whole-table rows: `aggregate.table` on each group's rows, rebuilt from the
    distinct (probability, decision, label) counts one group at a time."""
    parts = []
    for key, part in scores.groupby(_KEYS, sort=False, dropna=False):
        counts = part[_COUNT].to_numpy("int64")
        probability = part[PROBABILITY].to_numpy("float64")
        version = str(key[2])
        calibrated = estimate.calibrate(calibration, probability, np.full(len(probability), version, dtype=object))
        rows = pd.DataFrame({
            MODEL_VERSION: version,
            PROBABILITY: np.repeat(probability, counts),
            PREDICTION: np.repeat(part[PREDICTION].to_numpy("int64"), counts),
            LABEL: np.repeat(part[LABEL].to_numpy("float64"), counts),
            CALIBRATED: np.repeat(calibrated, counts),
        })
        result = table(rows, [MODEL_VERSION], spec)
        parts.append(result.assign(**{
            "granularity": key[0], _START: key[1], _SLICE: key[3], "column_name": tables.TABLE,
            "note": estimate.note_for(calibration, version),
        }))
    return pd.concat(parts, ignore_index=True)
