"""The SparkSession the Spark engine runs on: whatever the environment provides.

* `SPARK_REMOTE` set (Spark Connect, e.g. `sc://host:15002`, Databricks Connect): a remote
  session.
* Started by `spark-submit` or inside a Databricks job: the session that launch configured.
* Otherwise local mode on every core (`CHURN_SPARK_MASTER` overrides the master URL).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from churn.errors import ChurnError

APP_NAME = "churn"
# Parquet timestamps as Parquet's own type, not Spark's legacy INT96: pandas and pyarrow read
# them as UTC instants, like the files the default engine writes.
CONF = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def spark_session() -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ChurnError(
            "--engine spark needs pyspark: pip install 'churn[spark]' (or `make test`, which installs it), "
            "and Java 17 or newer"
        ) from None
    builder = SparkSession.builder.appName(APP_NAME)
    if os.environ.get("SPARK_REMOTE"):
        builder = builder.remote(os.environ["SPARK_REMOTE"])
    elif "PYSPARK_GATEWAY_PORT" not in os.environ:  # not launched by spark-submit
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        builder = builder.master(os.environ.get("CHURN_SPARK_MASTER", "local[*]"))
        # Local workers must run this interpreter (it has churn and the model's packages),
        # not whichever `python3` comes first on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in CONF.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # no Java, unreachable Connect server, bad master URL
        raise ChurnError(
            f"cannot start a Spark session ({exc.__class__.__name__}: {str(exc)[:500]}): check that Java 17+ "
            "is installed (java -version), or SPARK_REMOTE / CHURN_SPARK_MASTER"
        ) from None
