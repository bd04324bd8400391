"""`churn predict --engine spark` gives the default engine's answer on the same records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.data.simulate import simulate
from churn.deployment import batch
from churn.deployment.inference_log import read_log
from churn.errors import ChurnError
from churn.spark.predict import REASONS, predict_spark, rejected_dir_for
from tests.deployment.test_batch import NOW

pytestmark = pytest.mark.spark


def records(tmp_path) -> pd.DataFrame:
    """Client-typed records with rejects: a bad range, an unknown level, a repeated id."""
    raw = simulate(400, seed=21).drop(columns=["Churn"])
    raw["TotalCharges"] = pd.to_numeric(raw["TotalCharges"], errors="coerce")
    raw.loc[3, "tenure"] = -5
    raw.loc[10, "Contract"] = "Weekly"
    raw.loc[300, "customerID"] = raw.loc[7, "customerID"]
    directory = tmp_path / "in"
    directory.mkdir()
    raw.iloc[:200].to_parquet(directory / "a.parquet", index=False)
    raw.iloc[200:].to_parquet(directory / "b.parquet", index=False)
    return raw


def test_spark_scores_like_the_default_engine(store, spark, tmp_path):
    raw = records(tmp_path)
    result = predict_spark(store.params, str(tmp_path / "in"), str(tmp_path / "out"),
                           log_root=str(tmp_path / "spark-log"), now=NOW, spark=spark)
    raw.to_parquet(tmp_path / "all.parquet", index=False)
    default = batch.predict(store.params, tmp_path / "all.parquet", tmp_path / "default.parquet",
                            log_root=tmp_path / "default-log", now=NOW)

    assert (result.scored_rows, result.rejected_rows) == (default.scored_rows, default.rejected_rows) == (396, 4)
    assert result.model_version == default.model_version == "1"
    ours = pd.read_parquet(tmp_path / "out").sort_values("customerID").reset_index(drop=True)
    theirs = pd.read_parquet(tmp_path / "default.parquet").sort_values("customerID").reset_index(drop=True)
    assert list(ours.columns) == list(theirs.columns)
    assert ours["customerID"].tolist() == theirs["customerID"].tolist()
    np.testing.assert_allclose(ours["churn_probability"], theirs["churn_probability"], rtol=0, atol=1e-12)
    assert (ours["churn_prediction"] == theirs["churn_prediction"]).all()

    rejected = pd.read_parquet(rejected_dir_for(str(tmp_path / "out")))
    default_rejected = pd.read_csv(tmp_path / "default.rejected.csv", dtype=str, keep_default_na=False)
    assert sorted(rejected["customerID"]) == sorted(default_rejected["customerID"])
    assert sorted(rejected[REASONS]) == sorted(default_rejected[REASONS])

    # The same log rows, in the same partitioned layout, read by the same reader.
    spark_log = read_log(tmp_path / "spark-log", dataset=store.params.dataset)
    default_log = read_log(tmp_path / "default-log", dataset=store.params.dataset)
    key = ["customerID"]
    pd.testing.assert_frame_equal(
        spark_log.sort_values(key).reset_index(drop=True), default_log.sort_values(key).reset_index(drop=True),
        check_exact=False, rtol=0, atol=1e-12,
    )
    # One log file per batch through churn.storage, named like the default engine's; the
    # hidden staging folder Spark wrote into is gone.
    spark_files = sorted(p.relative_to(tmp_path / "spark-log") for p in (tmp_path / "spark-log").rglob("*"))
    default_files = sorted(p.relative_to(tmp_path / "default-log") for p in (tmp_path / "default-log").rglob("*"))
    assert [p.parent for p in spark_files] == [p.parent for p in default_files]
    assert len(spark_files) == 2 and spark_files[1].name.startswith("part-2026")


def test_missing_column_writes_nothing(store, spark, tmp_path):
    raw = records(tmp_path)
    raw.drop(columns=["Contract"]).to_parquet(tmp_path / "short.parquet", index=False)
    with pytest.raises(ChurnError, match="Contract"):
        predict_spark(store.params, str(tmp_path / "short.parquet"), str(tmp_path / "out"),
                      log_root=str(tmp_path / "log"), now=NOW, spark=spark)
    assert not (tmp_path / "out").exists() and not (tmp_path / "log").exists()
