"""One local SparkSession for every Spark test of the session; skipped without pyspark.

Spark tests score with the default engine's test registry (two small registered models, v1
@champion) and its per-test store, so both engines answer on the same models."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from tests.deployment.test_batch import registry, store  # noqa: F401 (fixtures, shared)


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark", reason="the spark extra is not installed (make test installs it)")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime (make test on CI installs openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession

    from churn.spark.session import CONF

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # as churn.spark.session does
    builder = SparkSession.builder.master("local[2]").appName("churn-tests")
    for key, value in {**CONF, "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()
