"""One local SparkSession for every Spark test of the session; skipped without pyspark."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark", reason="the spark extra is not installed (make test installs it)")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime (make test on CI installs openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession

    from churn.spark.session import CONF

    builder = SparkSession.builder.master("local[2]").appName("churn-tests")
    for key, value in {**CONF, "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()
