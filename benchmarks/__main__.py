"""`python -m benchmarks [--quick] [--sizes 100000,1000000] [--json FILE]`: one table.

For each size: the bare scikit-learn yardstick, then each DVC stage (`dvc repro
--single-item`, back to back), the yardstick again (the ratio is to the faster of the two),
a no-op `dvc repro`, and `churn predict` of as many rows;
REST latencies once, on the smallest project; then the monitor benchmark
(`benchmarks/monitor.py`; in a quick run, alongside the rest). Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from scripts.served import Server

from benchmarks import machine, measure
from benchmarks.project import Project, make_project
from churn import progress

FULL_SIZES = (100_000, 1_000_000, 5_000_000)
QUICK_SIZES = (2_000,)
FULL_REPEATS = {1: 200, 1000: 50}
QUICK_REPEATS = {1: 10, 1000: 3}
# Runs of the no-op repro and of `churn predict` per size in a full run (the median is
# reported); a quick run makes one.
FULL_REPEATS_OF_SHORT_STEPS = 3
# The quick run's monitor log: a week of days (daily and weekly windows, late labels) and a
# smaller baseline file; the full suite's is 30 days and 50,000 baseline rows.
QUICK_MONITOR_DAYS = 7
QUICK_MONITOR_BASELINE_ROWS = 5_000


@dataclass
class Row:
    rows: int
    step: str
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_mb: float | None = None
    rows_per_s: float | None = None
    vs_bare: float | None = None
    note: str = ""


def _measured(rows: int, step: str, result: measure.Measured, *, throughput: bool = False) -> Row:
    return Row(rows, step, result.wall_s, result.cpu_s, result.peak_mb,
               rows / result.wall_s if throughput else None)


@contextmanager
def step(label: str, steps: progress.Tracker | None = None) -> Iterator[Callable[[measure.Measured], None]]:
    """One measured step: a spinner with its elapsed time in a terminal, one closing line
    (`churn: 1,000,000 rows: stage train: 95.1 s wall, 80.2 s CPU, peak 1,210 MB in 1 min 35 s`)
    in a log; `steps`, the size's bar, advances when it ends. Yields a callback that puts
    the step's figures in its closing line."""
    with progress.phase(label) as tracker:
        def report(result: measure.Measured) -> None:
            tracker.done(f"{result.wall_s:.1f} s wall, {result.cpu_s:.1f} s CPU, peak {result.peak_mb:,.0f} MB")

        yield report
    if steps is not None:
        steps.advance()


def bench_size(project: Project, rows: int, before_predict: Callable[[], None] | None = None,
               *, repeats: int = 1, pairs: int = 0) -> list[Row]:
    """`before_predict`: what to start once the champion is registered (a quick run starts
    the REST server there, so that its start-up overlaps `churn predict`). `repeats`: runs
    of the no-op repro and of predict, the short steps, whose median is reported. `pairs`:
    extra back-to-back pairs of the yardstick and the whole graph, for the median ratio."""
    stages = project.stages()
    # The size's bar: bare, the whole graph, each stage, bare again, the no-op repro, the
    # set-up for predict and predict, then the pairs.
    with progress.task(f"{rows:,} rows, steps", total=len(stages) + 6 + pairs) as steps:
        measured = _measure_size(project, rows, stages, steps, before_predict, repeats)
        if pairs:
            measured.append(_paired(project, rows, pairs, steps))
        return measured


def _bare(project: Project) -> measure.Measured:
    return measure.run([sys.executable, "-m", "benchmarks.bare", str(project.raw()), "params.yaml"],
                       cwd=project.path, env=project.env)


def _paired(project: Project, rows: int, pairs: int, steps: progress.Tracker | None = None) -> Row:
    """The yardstick, then the whole graph rerun (`dvc repro --force`), `pairs` times: each
    ratio is taken within its pair, so a slow spell of a shared machine lands on both sides
    more often than in one run of each. The row gives the median pair."""
    measured = []
    for number in range(1, pairs + 1):
        with step(f"{rows:,} rows: pair {number} of {pairs}, bare then dvc repro --force", steps) as report:
            bare = _bare(project)
            full = measure.run(["dvc", "repro", "--force"], cwd=project.path, env=project.env)
            report(full)
        measured.append((full.wall_s / bare.wall_s, bare, full))
    ratio, bare, full = sorted(measured, key=lambda pair: pair[0])[(len(measured) - 1) // 2]
    row = _measured(rows, f"dvc repro against bare, {pairs} pairs", full, throughput=True)
    row.vs_bare = ratio
    row.note = "median pair; each pair dvc repro / bare: " + ", ".join(
        f"{f.wall_s:.1f} / {b.wall_s:.1f} s = {r:.2f}" for r, b, f in measured)
    return row


def _median_run(command: list[str], project: Project, repeats: int,
                check: Callable[[measure.Measured], None] = lambda _run: None) -> tuple[measure.Measured, str]:
    """The median (by wall time) of `repeats` runs of `command`, and a note listing them
    when there was more than one: a single run of a few seconds moves by a tenth or more
    on a shared machine."""
    runs = []
    for _ in range(repeats):
        runs.append(measure.run(command, cwd=project.path, env=project.env))
        check(runs[-1])
    median = sorted(runs, key=lambda run: run.wall_s)[(len(runs) - 1) // 2]
    note = f"median of {len(runs)} runs: " + ", ".join(f"{run.wall_s:.2f}" for run in runs) + " s" if len(runs) > 1 else ""
    return median, note


def _measure_size(project: Project, rows: int, stages: list[str], steps: progress.Tracker,
                  before_predict: Callable[[], None] | None, repeats: int) -> list[Row]:
    env, cwd = project.env, project.path
    out: list[Row] = []
    size = f"{rows:,} rows"
    def run_bare(label: str) -> measure.Measured:
        with step(f"{size}: {label}", steps) as report:
            result = _bare(project)
            report(result)
        return result

    first_bare = run_bare("bare scikit-learn")
    # The target's measure: one `dvc repro` of the whole graph, one DVC process. Then each
    # stage alone (`--single-item --force`, which reruns it rather than restoring it from
    # the run-cache) for the breakdown: its CPU time and its peak memory.
    with step(f"{size}: dvc repro (all stages)", steps) as report:
        full = measure.run(["dvc", "repro"], cwd=cwd, env=env)
        report(full)
    not_run = [stage for stage in stages if f"Running stage '{stage}'" not in full.stdout]
    if not_run:
        raise RuntimeError(f"dvc repro did not run {not_run} (restored from a cache?):\n{full.stdout}")
    stage_rows = []
    for stage in stages:
        with step(f"{size}: stage {stage}", steps) as report:
            result = measure.run(["dvc", "repro", "--single-item", "--force", stage], cwd=cwd, env=env)
            report(result)
        stage_rows.append(_measured(rows, f"  stage {stage}", result))
    # The yardstick once more, after the stages: on a shared machine one run of it varied
    # from 40 to 56 s at 1M rows. The ratio is taken against the faster run, the stricter.
    second_bare = run_bare("bare scikit-learn, again")
    bare = min(first_bare, second_bare, key=lambda run: run.wall_s)
    phases = json.loads(bare.stdout.strip().splitlines()[-1])
    bare_row = _measured(rows, "bare scikit-learn", bare, throughput=True)
    bare_row.note = (f"faster of {first_bare.wall_s:.1f} s (before the stages) and {second_bare.wall_s:.1f} s "
                     "(after): " + ", ".join(f"{k[:-2]} {v:.1f}" for k, v in phases.items() if k.endswith("_s")))
    out.append(bare_row)
    total = _measured(rows, "dvc repro (all stages)", full, throughput=True)
    total.vs_bare = full.wall_s / bare.wall_s if bare.wall_s else None
    one_by_one = sum(r.wall_s or 0 for r in stage_rows)
    total.note = (f"CPU time {full.cpu_s / bare.cpu_s:.2f}x bare; " if bare.cpu_s else "") + (
        f"the stages one by one below: {one_by_one:.1f} s in all ({len(stage_rows)} DVC starts, not one)")
    out += [total, *stage_rows]

    def no_op(run: measure.Measured) -> None:
        if "Running stage" in run.stdout:
            raise RuntimeError(f"the second dvc repro was not a no-op:\n{run.stdout}")

    with step(f"{size}: no-op dvc repro", steps) as report:
        noop, noop_note = _median_run(["dvc", "repro"], project, repeats, no_op)
        report(noop)
    noop_row = _measured(rows, "no-op dvc repro", noop)
    noop_row.note = noop_note
    out.append(noop_row)

    params = project.params()
    model_name = params.get("registry", {}).get("model_name", "churn-classifier")
    experiment = params.get("tracking", {}).get("experiment", "churn")
    with step(f"{size}: registering the model and writing the records to score", steps):
        project.check(sys.executable, "-m", "benchmarks.register", experiment, model_name)
        label = params["dataset"]["label_column"]
        records = pd.read_csv(project.raw()).drop(columns=[label])  # as a client sends them
        records.to_parquet(cwd / "to_score.parquet", index=False)
        del records
    if before_predict is not None:
        before_predict()
    with step(f"{size}: churn predict", steps) as report:
        predicted, predict_note = _median_run(
            ["churn", "predict", "--input", "to_score.parquet", "--output", "scores.parquet"], project, repeats
        )
        report(predicted)
    predict_row = _measured(rows, "churn predict", predicted, throughput=True)
    predict_row.note = "the REST server started alongside (quick run)" if before_predict is not None else predict_note
    out.append(predict_row)
    return out


def start_rest(project: Project) -> Server:
    from benchmarks import rest

    with progress.phase("starting the REST server (mlflow models serve)"):
        return rest.start_server(project, project.params().get("registry", {}).get("model_name", "churn-classifier"))


def bench_rest(project: Project, repeats: dict[int, int], server: Server | None = None) -> list[Row]:
    """REST latencies from `server`, or from one started (and stopped) here."""
    from benchmarks import rest

    records = pd.read_csv(project.raw()).drop(columns=[project.params()["dataset"]["label_column"]])
    rows = []
    own = server is None
    server = start_rest(project) if server is None else server
    try:
        with progress.phase(f"REST latencies ({', '.join(f'{n:,} x {k:,} records' for k, n in repeats.items())})"):
            results = rest.latencies(server, records, repeats)
    finally:
        if own:
            server.stop()
    for result in results:
        rows.append(Row(result.records, f"REST {result.records} record(s)",
                        note=f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms over {result.requests} requests"))
    return rows


@dataclass
class MonitorRun:
    """The monitor benchmark of one size, in a process of its own (`python -m benchmarks.monitor`)."""

    rows: int
    process: subprocess.Popen[str]
    log: Path | None  # its progress, when it runs alongside other steps
    alongside: bool


def start_monitor(rows: int, workdir: Path, *, quick: bool, alongside: bool) -> MonitorRun:
    """Start the monitor benchmark; `alongside`: while the pipeline steps run (its progress
    then goes to a log file, not between theirs)."""
    command = [sys.executable, "-m", "benchmarks.monitor", "--rows", str(rows), "--workdir", str(workdir)]
    if quick:
        command += ["--days", str(QUICK_MONITOR_DAYS), "--baseline-rows", str(QUICK_MONITOR_BASELINE_ROWS)]
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "progress.log" if alongside else None
    with open(log if log else os.devnull, "w") as progress_log:
        process = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                                   stderr=progress_log if log else None, text=True)
    return MonitorRun(rows, process, log, alongside)


def monitor_rows(run: MonitorRun) -> list[Row]:
    """The run's figures: one run over the whole log ("full") and an incremental one-day run."""
    with progress.phase(f"{run.rows:,} rows: monitor" + (" (ran alongside)" if run.alongside else "")):
        stdout, _ = run.process.communicate()
    if run.process.returncode != 0:
        tail = run.log.read_text()[-300:] if run.log and run.log.is_file() else ""
        return [Row(run.rows, "monitor", note=f"failed (exit {run.process.returncode}): {tail}")]
    result = json.loads(stdout)
    rows = []
    for name in ("full", "incremental_one_day"):
        figures = result.get(name)
        if not isinstance(figures, dict):
            continue
        wall = figures.get("seconds_with_dashboard", figures.get("seconds_tables"))
        row = Row(int(result.get("rows", run.rows)), f"monitor ({name.replace('_', ' ')})", wall,
                  figures.get("cpu_seconds"), figures.get("peak_rss_mb"))
        row.rows_per_s = figures.get("rows_read", 0) / wall if wall else None
        row.note = f"tables {figures.get('seconds_tables')} s, {figures.get('windows')} windows, {result.get('days')} days"
        if run.alongside:
            row.note += "; ran alongside the pipeline steps"
        rows.append(row)
    return rows


def _cell(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def render(rows: list[Row], described: str) -> str:
    header = "| rows | step | wall s | CPU s | peak MB | rows/s | x bare | note |"
    lines = [f"Machine: {described}", "", header, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r.rows:,} | {r.step} | {_cell(r.wall_s, 1)} | {_cell(r.cpu_s, 1)} | {_cell(r.peak_mb, 0)} | "
            f"{_cell(r.rows_per_s, 0)} | {_cell(r.vs_bare, 2)} | {r.note} |"
        )
    totals = [r for r in rows if r.step == "dvc repro (all stages)" and r.wall_s]
    if len(totals) > 1:
        per = ", ".join(f"{r.rows:,}: {r.wall_s / r.rows * 1e5:.2f} s" for r in totals)
        lines += ["", f"Pipeline wall time per 100k rows (linear cost keeps this flat): {per}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size, few requests: under a minute")
    parser.add_argument("--sizes", help="comma-separated row counts (default 100000,1000000,5000000)")
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument("--workdir", help="keep the projects here instead of a temporary directory")
    parser.add_argument("--no-rest", action="store_true", help="skip the REST latencies")
    parser.add_argument("--no-monitor", action="store_true", help="skip the monitor benchmark")
    parser.add_argument("--pairs", type=int, default=0, metavar="N",
                        help="also N back-to-back pairs of bare and a forced dvc repro per size (median ratio)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines or bars; the table is still printed")
    args = parser.parse_args(argv)
    progress.configure(quiet=args.quiet)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.sizes:
        sizes = tuple(int(s.replace("_", "")) for s in args.sizes.split(","))
    described = machine.describe()
    base = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="churn-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    monitors: list[MonitorRun] = []
    servers: list[Server] = []
    try:
        if args.quick and not args.no_monitor:
            # A smoke run: the monitor benchmark (its own synthetic log, no project) runs on
            # the second core while the pipeline steps run on the first, instead of after them.
            monitors = [start_monitor(size, base / f"monitor-{size}", quick=True, alongside=True) for size in sizes]
        projects = []
        for size in sizes:
            with progress.phase(f"{size:,} rows: simulating the data and making the project") as made:
                project = make_project(base, size)
                made.done(str(project.path))
            projects.append(project)
            # A quick run starts the REST server as soon as the champion is registered: its
            # start-up (two MLflow imports and the model load) overlaps `churn predict`.
            early = args.quick and not args.no_rest and len(projects) == 1
            rows += bench_size(project, size, (lambda p=project: servers.append(start_rest(p))) if early else None,
                               repeats=1 if args.quick else FULL_REPEATS_OF_SHORT_STEPS, pairs=args.pairs)
            if progress.mode() != "quiet":  # the figures so far, in case a later size runs out of time
                print(render(rows, described), file=sys.stderr, flush=True)
        if not args.no_rest:
            rows += bench_rest(projects[0], QUICK_REPEATS if args.quick else FULL_REPEATS, *servers[:1])
        if not args.no_monitor:
            for size in sizes:
                if not args.quick:
                    monitors.append(start_monitor(size, base / f"monitor-{size}", quick=False, alongside=False))
                rows += monitor_rows(monitors.pop(0))
    finally:
        for server in servers:
            server.stop()
        for run in monitors:  # a step failed: stop what still runs
            run.process.kill()
            run.process.wait()
        if not args.workdir:
            shutil.rmtree(base, ignore_errors=True)
    table = render(rows, described)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": described, "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
