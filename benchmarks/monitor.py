"""Benchmark `churn monitor`: a synthetic inference log of N rows x 20 features over 30 days.

Prints figures, asserts nothing (targets: a full run of 10M rows in at most 60 s and 2 GB
peak memory on the 2-core reference machine; an incremental run adding one day in
seconds). The log is generated directly with numpy/pyarrow in the inference log's layout
(not through `churn predict`, which would take longer than what is measured), with late
labels for the first two thirds of the days and a file baseline of the same distribution.

    python -m benchmarks.monitor --rows 10000000
    from benchmarks.monitor import run; run(1_000_000)  # -> dict of figures

Each measured run happens in a fresh process, so its peak RSS is the monitor's own; its CPU
seconds are printed too, as the wall time means little on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from churn.config import Params

NUMERIC = [f"x{i}" for i in range(10)]
CATEGORICAL = [f"c{i}" for i in range(10)]
LEVELS = ["a", "b", "c", "d", "e"]
DAY0 = datetime(2026, 10, 1, tzinfo=UTC)


def make_params(root: Path) -> Params:
    from churn.config import load_params

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    dataset = params.dataset.model_copy(update={
        "name": "benchmark", "id_column": "id", "label_column": "y", "positive_label": "1", "negative_label": "0",
        "numeric": {c: params.dataset.numeric["MonthlyCharges"] for c in NUMERIC},
        "categorical": {c: list(LEVELS) for c in CATEGORICAL}, "structural_levels": {},
    })
    monitor = params.monitor.model_copy(update={
        "slices": ["x0 < 0", 'c0 == "a"'],
        "baseline": params.monitor.baseline.model_copy(update={"source": "file", "file": root / "baseline.parquet"}),
        "paths": params.monitor.paths.model_copy(update={
            "profile": root / "monitoring/profile_metrics.parquet", "drift": root / "monitoring/drift_metrics.parquet",
            "state_dir": root / "monitoring/state", "dashboard": root / "reports/monitoring.html",
            "drill_down": root / "reports/monitoring_latest_drift.html", "verdict": root / "reports/verdict.json",
        }),
    })
    paths = params.paths.model_copy(update={"inference_log": root / "log"})
    return params.model_copy(update={"dataset": dataset, "monitor": monitor, "paths": paths})


def _table(rng: np.random.Generator, n: int, shift: float) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Features, probability, decision and outcome as pyarrow arrays (categoricals dictionary-encoded)."""
    import pyarrow as pa

    columns: dict[str, Any] = {}
    logit = np.full(n, -1.0)
    for i, name in enumerate(NUMERIC):
        values = rng.normal(shift * (i % 3 == 0), 1.0, n)
        logit += values * (0.3 if i < 4 else 0.0)
        columns[name] = pa.array(values)
    for i, name in enumerate(CATEGORICAL):
        codes = rng.choice(len(LEVELS), n, p=[0.4, 0.25, 0.15, 0.1, 0.1]).astype("int8")
        logit += (codes == 0) * (0.4 if i < 3 else 0.0)
        columns[name] = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(LEVELS))
    probability = 1 / (1 + np.exp(-logit))
    outcome = rng.uniform(size=n) < probability
    return columns, probability, outcome


def _ids(day: int, n: int) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(pa.array([f"r{day}-"] * n), pc.cast(pa.array(np.arange(n)), pa.string()), "")


def write_day(root: Path, day: int, n: int, rng: np.random.Generator, *, labelled: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    at = DAY0 + timedelta(days=day, hours=12)
    columns, probability, outcome = _table(rng, n, shift=0.0 if day < 20 else 0.3)
    ids = _ids(day, n)
    table = pa.table({
        "id": ids, **columns,
        "churn_probability": pa.array(probability), "churn_prediction": pa.array((probability >= 0.5).astype("int64")),
        "model_version": pa.array(["1"] * n), "model_uri": pa.array(["models:/bench@champion"] * n),
        "scored_at": pa.array(np.full(n, np.datetime64(at.replace(tzinfo=None), "ns")), pa.timestamp("ns", tz="UTC")),
        "y": pa.nulls(n, pa.string()),
    })
    directory = root / "log" / f"date={at.date().isoformat()}"
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, directory / f"part-{at:%Y%m%dT%H%M%S%f}Z-{day:032x}.parquet")
    if labelled:
        label_at = at + timedelta(days=30)
        labels = pa.table({
            "id": ids, "y": pa.array(np.where(outcome, "1", "0")),
            "labelled_at": pa.array(np.full(n, np.datetime64(label_at.replace(tzinfo=None), "ns")), pa.timestamp("ns", tz="UTC")),
        })
        target = root / "log" / "labels" / f"date={label_at.date().isoformat()}"
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(labels, target / f"part-{label_at:%Y%m%dT%H%M%S%f}Z-{day:032x}.parquet")


def write_baseline(root: Path, rows: int, rng: np.random.Generator) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns, probability, outcome = _table(rng, rows, shift=0.0)
    table = pa.table({
        **{k: (v.dictionary_decode() if isinstance(v, pa.DictionaryArray) else v) for k, v in columns.items()},
        "churn_probability": pa.array(probability), "churn_prediction": pa.array((probability >= 0.5).astype("int64")),
        "y": pa.array(outcome.astype("int64")),
    })
    pq.write_table(table, root / "baseline.parquet")


def _own_peak_rss_mb() -> float:
    """This process's own peak RSS. ru_maxrss would not do: Linux carries the parent's RSS at
    fork over exec into it, so a spawned child reports at least its parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # not Linux


def _measured(root: str, now: str, queue: Any) -> None:
    """In a fresh process: one monitor run (tables and dashboard), its time and peak RSS."""
    from churn.monitoring import dashboard
    from churn.monitoring.run import run as monitor

    params = make_params(Path(root))
    started = time.perf_counter()
    result = monitor(params, now=datetime.fromisoformat(now))
    tables = time.perf_counter() - started
    dashboard.write(
        params, result.profile, result.drift, baseline_source=result.baseline.source,
        baseline_roc_auc=result.baseline.roc_auc, baseline_positive_rate=result.baseline.positive_rate,
        warnings=result.warnings,
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put({
        "seconds_tables": round(tables, 2), "seconds_with_dashboard": round(time.perf_counter() - started, 2),
        # Process CPU time (imports included): the wall time is only meaningful on an idle machine.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": _own_peak_rss_mb(),
        "windows": result.windows, "recomputed": result.recomputed, "rows_read": result.rows_read,
        "profile_rows": len(result.profile), "drift_rows": len(result.drift),
    })


def _in_child(root: Path, now: datetime) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measured, args=(str(root), now.isoformat(), queue))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"the measured monitor run failed (exit {process.exitcode})")
    figures: dict[str, Any] = queue.get()
    return figures


def run(rows: int = 10_000_000, days: int = 30, seed: int = 0, workdir: str | Path | None = None,
        baseline_rows: int = 50_000) -> dict[str, Any]:
    """Generate the log, then time a full run and an incremental run that adds one day."""
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="monitor-bench-")) if workdir is None else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)  # the suite passes a folder of its own, not yet made
    try:
        rng = np.random.default_rng(seed)
        per_day = rows // days
        started = time.perf_counter()
        write_baseline(root, baseline_rows, rng)
        for day in range(days):
            write_day(root, day, per_day, rng, labelled=day < days * 2 // 3)
        generated = time.perf_counter() - started
        now = DAY0 + timedelta(days=days + 2)
        full = _in_child(root, now)
        write_day(root, days, per_day, rng, labelled=False)
        incremental = _in_child(root, now)
        return {
            "rows": per_day * days, "days": days, "features": len(NUMERIC) + len(CATEGORICAL),
            "granularities": ["1 day", "1 week"], "slices": 2, "generate_seconds": round(generated, 1),
            "full": full, "incremental_one_day": incremental,
            "targets": {"full_seconds": 60, "full_peak_rss_mb": 2048},
        }
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-rows", type=int, default=50_000, help="rows of the file baseline")
    parser.add_argument("--workdir", help="keep the generated log here (default: a temporary directory)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rows, args.days, args.seed, args.workdir, args.baseline_rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
