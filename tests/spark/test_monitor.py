"""`churn monitor --engine spark` writes the default engine's tables on the same log."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from churn import cli
from churn.errors import ChurnError
from churn.monitoring import tables
from churn.monitoring.run import MonitorResult, run
from tests.monitoring.conftest import DAY0, NOW, World, fit_model, world_params, write_baseline

SLICES = ['Contract == "Month-to-month"', "tenure < 6 and not (PaymentMethod != \"Electronic check\")"]
PROFILE_KEY = [*tables.KEYS, "column_name"]
DRIFT_KEY = [*tables.KEYS, "column_name", "drift_type"]


@dataclass
class Runs:
    world: World
    local: MonitorResult
    spark: MonitorResult
    tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]]  # engine -> (profile, drift)


def build_log(world: World) -> None:
    """Labelled, unlabelled and half-labelled days, two model versions, a gap, a small
    (insufficient) day, sub-day windows, rows in the future, superseded and unknown labels."""
    first = world.log_day(0, 300)
    world.label(first)  # day 0: every label attached later
    relabel = first.iloc[:40].copy()
    relabel["Churn"] = relabel["Churn"].map({"Yes": "No", "No": "Yes"})
    world.label(relabel, at_day=45)  # the later label wins for 40 ids
    world.label(pd.DataFrame({"customerID": ["ghost-1", "ghost-2"], "Churn": ["Yes", "No"]}), at_day=46)
    world.log_day(1, 150, hour=3, with_label=True)  # labels that came with the request
    world.log_day(1, 150, seed=77, hour=20)  # ... and none for the evening's rows
    world.log_day(2, 220)
    world.log_day(2, 60, seed=78, version="2", hour=15)  # another model version, too few rows
    world.log_day(4, 50)  # after a day with nothing logged: "insufficient data"
    world.log_day(80, 30)  # stamped after NOW: left out, counted


@pytest.fixture(scope="module")
def runs(spark, params, tmp_path_factory) -> Runs:
    from churn.spark.monitor import run_spark

    root = tmp_path_factory.mktemp("spark-monitor")
    model = fit_model(params, rows=1000)[0]
    baseline = write_baseline(model, params, root / "baseline.parquet", rows=2000)
    world = World(model, world_params(params, root, baseline, slices=SLICES,
                                      granularities=["1 day", "1 week", "6 hours"]), root)
    build_log(world)
    paths = world.params.monitor.paths
    results, written = {}, {}
    for engine, function in (("local", run), ("spark", run_spark)):
        kwargs = {"spark": spark} if engine == "spark" else {}
        results[engine] = function(world.params, now=NOW, **kwargs)
        written[engine] = (pd.read_parquet(paths.profile), pd.read_parquet(paths.drift))
    return Runs(world, results["local"], results["spark"], written)


@pytest.mark.spark
def test_both_engines_write_the_same_tables(runs):
    (profile, drift), (spark_profile, spark_drift) = runs.tables["local"], runs.tables["spark"]
    assert len(profile) > 300 and len(drift) > 300
    pd.testing.assert_frame_equal(spark_profile, profile, check_exact=False, rtol=0, atol=2e-6)
    pd.testing.assert_frame_equal(spark_drift, drift, check_exact=False, rtol=0, atol=2e-6)
    # Counts and levels exactly, not only within tolerance.
    for column in ("count", "num_nulls", "distinct_count", "label_count", "top_values", "status"):
        assert spark_profile[column].equals(profile[column]), column
    for column in ("rows", "reference_rows", "drifted", "status", "method"):
        assert spark_drift[column].equals(drift[column]), column


@pytest.mark.spark
def test_the_spark_run_reports_what_the_default_run_reports(runs):
    ours, theirs = runs.spark, runs.local
    assert (ours.rows_read, ours.future_rows, ours.duplicate_labels, ours.unknown_label_ids) == (
        theirs.rows_read, theirs.future_rows, theirs.duplicate_labels, theirs.unknown_label_ids
    ) == (930, 30, 40, 2)
    assert ours.windows == theirs.windows
    assert ours.warnings == theirs.warnings and len(ours.warnings) == 3
    assert ours.baseline == theirs.baseline
    assert ours.latest_window is None  # no evidently drill-down from this engine


@pytest.mark.spark
def test_the_compared_tables_cover_slices_unlabelled_and_insufficient_windows(runs):
    """What the equality above covers (so that it is not vacuous)."""
    profile, drift = runs.tables["spark"]
    whole = profile[(profile.column_name == tables.TABLE) & profile.slice_key.isna()]
    daily = whole[whole.granularity == "1 day"].set_index(["window_start", "model_version"], drop=False)
    day = lambda n: pd.Timestamp(DAY0 + timedelta(days=n))  # noqa: E731
    assert daily.loc[(day(0), "1"), "labelled_share"] == 1.0 and daily.loc[(day(0), "1"), "roc_auc"] > 0.5
    assert daily.loc[(day(1), "1"), "labelled_share"] == 0.5
    assert pd.isna(daily.loc[(day(2), "1"), "roc_auc"]) and daily.loc[(day(2), "1"), "estimated_roc_auc"] > 0.5
    assert daily.loc[(day(2), "2"), "status"] == tables.INSUFFICIENT
    assert daily.loc[(day(4), "1"), "status"] == tables.INSUFFICIENT
    gap = whole[(whole.granularity == "1 day") & (whole.window_start == day(3))]
    assert gap["count"].tolist() == [0]
    assert set(profile.slice_key.dropna()) == set(SLICES)
    assert (profile[profile.slice_key.notna()]["count"] > 0).all()
    assert {"6 hours", "1 day", "1 week"} == set(profile.granularity)
    insufficient = drift[drift.status == tables.INSUFFICIENT]
    assert len(insufficient) and insufficient[["js_distance", "psi", "drifted"]].isna().all().all()
    assert drift.status.isin(["drift", "no drift"]).any()


@pytest.mark.spark
def test_an_empty_log_is_a_clear_error(spark, runs, tmp_path):
    from churn.spark.monitor import run_spark

    params = runs.world.params.model_copy(
        update={"paths": runs.world.params.paths.model_copy(update={"inference_log": tmp_path / "nothing"})}
    )
    with pytest.raises(ChurnError, match="holds no scored rows"):
        run_spark(params, now=NOW, spark=spark)


@pytest.mark.spark
def test_without_java_the_engine_says_so(params):
    script = (
        "from churn.config import load_params\n"
        "from churn.errors import ChurnError\n"
        "from churn.spark.monitor import run_spark\n"
        "try:\n"
        "    run_spark(load_params('params.yaml'))\n"
        "except ChurnError as exc:\n"
        "    print('ChurnError:', exc)\n"
    )
    env = {**os.environ, "JAVA_HOME": "/nonexistent-java", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    env.pop("SPARK_REMOTE", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert "ChurnError: cannot start a Spark session" in done.stdout and "Java 17" in done.stdout, done.stderr[-2000:]


def test_without_pyspark_the_engine_says_so(params, monkeypatch):
    for name in [m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")] + ["pyspark"]:
        monkeypatch.setitem(sys.modules, name, None)
    from churn.spark.monitor import run_spark

    with pytest.raises(ChurnError, match=r"needs pyspark: pip install 'churn\[spark\]'"):
        run_spark(params)


def test_the_default_engine_needs_no_pyspark():
    """Importing the monitor, the CLI and the Spark engine's module loads no pyspark module of
    ours: with pyspark unimportable (pandera probes for it when it is installed), all import."""
    script = (
        "import sys\n"
        "sys.modules['pyspark'] = None\n"
        "import churn.cli, churn.monitoring.command, churn.monitoring.run, churn.spark.monitor\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pyspark' and sys.modules[m] is not None))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_the_cli_routes_engine_spark_to_the_spark_engine(params, monkeypatch, tmp_path, capsys):
    import churn.spark.monitor as spark_monitor

    calls = []

    def fake(params, now=None):
        calls.append(params.monitor.paths.verdict)
        raise ChurnError("the Spark engine was called")

    monkeypatch.setattr(spark_monitor, "run_spark", fake)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "params.yaml"
    import yaml

    path.write_text(yaml.safe_dump(params.model_dump(mode="json", by_alias=True)))
    assert cli.main(["monitor", "--engine", "spark", "--check", "--params", str(path)]) == 2
    assert len(calls) == 1 and "the Spark engine was called" in capsys.readouterr().err
    # --check fails closed with the reason, whichever engine.
    assert "the Spark engine was called" in (tmp_path / params.monitor.paths.verdict).read_text()
    with pytest.raises(SystemExit):
        cli.main(["monitor", "--engine", "dask", "--params", str(path)])
