"""`churn`: the one command-line entry point.

`churn prep|train|validate|evaluate` run the same code as the DVC stages, which call
`python -m churn.<phase>` so that a stage does not load (and depend on) this module.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from churn import progress
from churn.config import DEFAULT_PARAMS, Params, load_params
from churn.entry import configure_process, guarded, limit_native_threads, run_stage
from churn.errors import ChurnError

if TYPE_CHECKING:  # pragma: no cover
    from datetime import datetime

# A subcommand: parsed arguments and the loaded params in, exit code out.
Handler = Callable[[argparse.Namespace, Params], int]


def _simulate(args: argparse.Namespace, params: Params) -> int:
    from churn.data import snapshot
    from churn.data.simulate import COLUMNS

    expected = set(params.dataset.raw_columns)
    if expected != set(COLUMNS):
        raise ChurnError(
            f"churn simulate writes IBM Telco columns, but dataset {params.dataset.name!r} has "
            f"{sorted(expected ^ set(COLUMNS))[:6]} that differ: bring your table with `churn track`."
        )

    n = args.rows if args.rows is not None else params.simulate.n_customers
    seed = args.seed if args.seed is not None else params.simulate.seed
    drift = params.simulate.drift if args.period == "drifted" else None
    output = Path(args.output) if args.output else params.paths.raw
    meta = snapshot.simulated_meta(n, seed, drift)
    with progress.task(f"simulating {output}", total=n, unit="rows") as simulating:
        snapshot.simulate_to(output, meta)
        simulating.advance(n)
    print(f"wrote {n} simulated customers ({args.period} period) to {output}")
    if args.track:
        snapshot.track(output, meta)
        print(f"tracked with DVC: commit {snapshot.dvc_file(output)}")
    return 0


def _track(args: argparse.Namespace, params: Params) -> int:
    from churn.data import snapshot

    raw = params.paths.raw
    if not raw.is_file():
        raise ChurnError(f"{raw} not found: copy your CSV there first (paths.raw in params.yaml).")
    snapshot.track(raw, snapshot.own_data_meta(args.source))
    print(f"tracked {raw} with DVC (source: {args.source}): commit {snapshot.dvc_file(raw)}")
    return 0


def _ensure_data(args: argparse.Namespace, params: Params) -> int:
    from churn.data.snapshot import ensure_raw

    with progress.phase(f"making {params.paths.raw} present"):
        how = ensure_raw(params)
    print(f"raw data {params.paths.raw}: {how}")
    return 0


def _stage(module: str) -> Handler:
    def run(args: argparse.Namespace, params: Params) -> int:
        return run_stage(module, args.params, args.verbose)

    return run


def _drift_report(args: argparse.Namespace, params: Params) -> int:
    from churn.evaluation.drift_report import report_is_current, write_report

    if args.if_stale and report_is_current(params):
        return 0
    with progress.phase("drift report (evidently)"):
        write_report(params)
    print(f"wrote {params.paths.drift_report_html}")
    return 0


def _gate(args: argparse.Namespace, params: Params) -> int:
    from churn.core.verdict import read_verdict

    passed, reasons = read_verdict(params.paths.verdict, params.paths.model, params)
    if passed:
        print("gate: passed")
        return 0
    print("gate: rejected", file=sys.stderr)
    for reason in reasons:
        print(f"  - {reason}", file=sys.stderr)
    return 1


def _challenge(args: argparse.Namespace, params: Params) -> int:
    from churn.registry.challenge import challenge
    from churn.registry.versions import registry_errors

    with registry_errors("challenge"):
        result = challenge(params, register=not args.compare_only)
    where = f" as {params.registry.model_name} v{result.version}" if result.version else ""
    print(f"challenge: {result.verdict}{where}")
    if result.note:
        print(f"  {result.note}")
    if result.repaired:
        print(f"  repaired: {result.repaired}")
    for row in result.comparison:
        mark = "ok" if row["passed"] else "FAIL"
        print(f"  {row['metric']:<10} candidate {row['candidate']:.4f}  champion {row['champion']:.4f}  "
              f"delta {row['delta']:+.4f}  ({row['allowed']})  {mark}")
    for reason in result.reasons:
        print(f"  - {reason}", file=sys.stderr)
    print(f"  report: {params.paths.challenge}")
    return 0 if result.passed else 1


def _promote(args: argparse.Namespace, params: Params) -> int:
    from churn.registry.promotion import promote
    from churn.registry.versions import registry_errors

    with registry_errors("promote"):
        result = promote(params, model_md5=args.model_md5, force=args.force)
    name = params.registry.model_name
    if not result.changed:
        print(f"{name} v{result.version} is already @champion: nothing to do")
    else:
        before = f" (previous champion: v{result.previous})" if result.previous else " (first champion)"
        print(f"{name} v{result.version} is now @champion{before}")
    return 0


def _rollback(args: argparse.Namespace, params: Params) -> int:
    from churn.registry.promotion import rollback
    from churn.registry.versions import registry_errors

    with registry_errors("rollback"):
        result = rollback(params)
    print(f"{params.registry.model_name} @champion rolled back from v{result.rolled_back_from} to v{result.version}")
    return 0


def _which(args: argparse.Namespace, params: Params) -> int:
    from churn.registry.promotion import which
    from churn.registry.versions import registry_errors

    with registry_errors("which"):
        result = which(params)
    name = params.registry.model_name
    if result.version is None:
        print(f"model {result.model_md5} is not in the registry {name}")
        return 1
    aliases = ", ".join(f"@{a}" for a in result.aliases) or "no alias"
    if result.state is not None and result.state.startswith("incomplete"):
        print(
            f"model {result.model_md5} is {name} v{result.version} ({aliases}; "
            f"{result.state}: created without a gate record by an interrupted `churn challenge`; "
            "rerun `churn challenge` to complete it)"
        )
        return 1
    state = "" if result.state in (None, "gated") else f"; {result.state}"
    print(f"model {result.model_md5} is {name} v{result.version} ({aliases}; gate {result.verdict}{state})")
    for event in result.history:
        details = ", ".join(f"{key} {value}" for key, value in event.items() if key not in ("event", "at", "by"))
        print(f"  {event.get('at', '?')}  {event.get('event', '?')} by {event.get('by', '?')}" + (f" ({details})" if details else ""))
    return 0


def _predict(args: argparse.Namespace, params: Params) -> int:
    import gc

    from churn.deployment.batch import predict
    from churn.deployment.stream import DEFAULT_BATCH_ROWS
    from churn.timestamps import parse_timestamp

    # What is imported by now (pandas, pyarrow, pandera) lives as long as this process:
    # frozen, the collector's full passes skip it. The last pass, at exit
    # (`entry._finish_quickly`), walked it all: half a second after scoring 1M rows, when
    # MLflow and scikit-learn were imported here too (now MLflow comes with the model).
    gc.freeze()

    as_of = parse_timestamp(args.as_of, "--as-of") if args.as_of else None
    if args.engine == "spark":
        return _predict_spark(args, params, as_of)
    batch_rows = DEFAULT_BATCH_ROWS if args.batch_rows is None else args.batch_rows
    result = predict(params, args.input, args.output, alias=args.alias, version=args.version, now=as_of,
                     batch_rows=batch_rows)
    print(f"scored {result.scored_rows} rows with {result.model_uri} (v{result.model_version}) -> {result.output}")
    if result.log_file:
        print(f"inference log: {result.log_file}")
    return _rejected_rows(result.rejected_rows, result.rejected_path)


def _rejected_rows(rows: int, path: object) -> int:
    """Exit 3 (and say where they are) when a batch had rows the contract refused."""
    if not rows:
        return 0
    print(f"rejected {rows} rows that break the data contract -> {path}", file=sys.stderr)
    return 3


def _predict_spark(args: argparse.Namespace, params: Params, as_of: datetime | None) -> int:
    from churn.spark.predict import predict_spark

    result = predict_spark(params, args.input, args.output, alias=args.alias, version=args.version, now=as_of)
    print(f"scored {result.scored_rows} rows on Spark with {result.model_uri} (v{result.model_version}) -> {result.output}")
    print(f"inference log: {result.log_root} (appended)")
    return _rejected_rows(result.rejected_rows, result.rejected_path)


def _label(args: argparse.Namespace, params: Params) -> int:
    from churn.deployment.labels import label

    with progress.phase(f"attaching the labels in {args.input} to the inference log"):
        result = label(params, args.input)
    print(
        f"labels in {args.input}: {result.rows} rows; attached {result.matched} to logged predictions, "
        f"{result.unknown} unknown ids, {result.rejected} malformed, "
        f"{result.superseded} superseded by a later label for the same id"
    )
    if result.labels_file:
        print(f"inference log labels: {result.labels_file}")
    if result.rejected_path:
        print(
            f"not attached: {result.rejected + result.unknown} rows with their reasons -> {result.rejected_path}",
            file=sys.stderr,
        )
        return 3
    return 0


def _refresh(args: argparse.Namespace, params: Params) -> int:
    from churn.data.refresh import refresh
    from churn.timestamps import parse_timestamp

    as_of = parse_timestamp(args.as_of, "--as-of") if args.as_of else None
    with progress.phase("building the next raw snapshot from the inference log (dvc add, push)"):
        result = refresh(params, as_of)
    counts = result.counts
    print(
        f"refreshed {result.raw}: {counts.total} rows = {counts.from_log} labelled predictions scored "
        f"{result.window_start:%Y-%m-%d %H:%M} to {result.window_end:%Y-%m-%d %H:%M} UTC + "
        f"{counts.from_current} rows of the previous snapshot"
    )
    print(
        f"  not used: {counts.unlabelled} predictions without a label, {counts.outside_horizon} previous rows "
        f"beyond the horizon, {counts.replaced} previous rows the log holds newer"
    )
    if counts.dropped_columns:
        print(f"  columns outside the contract, dropped: {', '.join(counts.dropped_columns)}")
    changed = "unchanged" if result.md5 == result.previous_md5 else f"was {result.previous_md5}"
    print(f"tracked with DVC: md5 {result.md5} ({changed}); commit {result.dvc_file}, then `dvc repro`")
    return 0


def _serve(args: argparse.Namespace, params: Params) -> int:
    from churn.deployment.server import serve

    serve(params, host=args.host, port=args.port, alias=args.alias, version=args.version,
          max_request_bytes=args.max_request_bytes)
    return 0


def _report(args: argparse.Namespace, params: Params) -> int:
    from churn.reporting.report import build

    with progress.phase(f"review report against {args.base}"):
        result = build(params, args.base)
    print(f"wrote {result.markdown} ({len(result.images)} plots in {params.report.assets_dir}); gate {result.verdict}")
    return 0


def _tune(args: argparse.Namespace, params: Params) -> int:
    from churn.tuning.search import run as tune

    result = tune(params, trials=args.trials, apply=args.apply, params_file=Path(args.params))
    print(f"tune: {result.trials} trials of {result.family} on the validation set; "
          f"{result.metric} best {result.best_value:.4f} (trial {result.best_trial}), "
          f"params.yaml today {result.current_value:.4f} (trial 0)")
    print(f"  MLflow parent run {result.parent_run_id}: one nested run per trial")
    print(f"  train and evaluate it in the pipeline with:\n    {result.dvc_command}")
    if result.applied:
        print(f"  applied: wrote these values to {args.params} (run `dvc repro`)")
    return 0


def _summary(args: argparse.Namespace, params: Params) -> int:
    from churn.summary import render

    print(render(params))
    return 0


def _monitor(args: argparse.Namespace, params: Params) -> int:
    from churn.monitoring.command import monitor

    engine = args.engine
    if engine == "pandas":
        print("warning: --engine pandas is deprecated: use --engine local (the same engine)", file=sys.stderr)
        engine = "local"
    outcome = monitor(params, check=args.check, drill_down=not args.no_drill_down, engine=engine)
    result, paths = outcome.result, params.monitor.paths
    if result.up_to_date:
        print(f"monitor: up to date ({result.windows} windows); nothing recomputed")
    else:
        print(
            f"monitor: {result.recomputed} of {result.windows} windows recomputed from {result.rows_read} rows "
            f"-> {paths.profile}, {paths.drift}"
        )
    print(f"dashboard: {outcome.dashboard}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if outcome.verdict is None:
        return 0
    print(f"retraining rule: {outcome.verdict.status} (model version {outcome.verdict.model_version}) -> {paths.verdict}")
    for reason in outcome.verdict.reasons:
        print(f"  - {reason}")
    return 1 if outcome.verdict.fired else 0


def _add_common(parser: argparse.ArgumentParser, top_level: bool) -> None:
    # Accepted before or after the subcommand; the subcommand's copy must not reset a
    # value given before it, hence SUPPRESS there.
    default = (lambda value: value) if top_level else (lambda value: argparse.SUPPRESS)
    parser.add_argument("--params", default=default(str(DEFAULT_PARAMS)), help="params file (default: params.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", default=default(False), help="print the command's result")
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default(False),
        help="no progress bars or phase lines (errors and summaries still print); also CHURN_QUIET=1",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churn", description=__doc__)
    _add_common(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, handler: Handler) -> argparse.ArgumentParser:
        child = sub.add_parser(name, help=text, description=text)
        _add_common(child, top_level=False)
        child.set_defaults(handler=handler)
        return child

    simulate = command(
        "simulate",
        "write a simulated snapshot in IBM's Telco Customer Churn schema (refused when `dataset:` "
        "describes another table)",
        _simulate,
    )
    simulate.add_argument("--period", choices=["baseline", "drifted"], default="baseline")
    simulate.add_argument("--rows", type=int, help="customers (default: simulate.n_customers)")
    simulate.add_argument("--seed", type=int, help="seed (default: simulate.seed)")
    simulate.add_argument("--output", help="CSV path (default: paths.raw)")
    simulate.add_argument("--track", action="store_true", help="dvc add + push it, recording its settings")

    track = command(
        "track", "dvc add your own raw CSV at paths.raw, record where it came from, push it", _track
    )
    track.add_argument("--source", required=True, help="where the data came from (recorded in the .dvc file)")
    command("ensure-data", "make the tracked raw snapshot present: pull it, or recreate it bit-for-bit", _ensure_data)
    for name, module, text in (
        ("prep", "churn.prep.stage", "validate and clean raw data; feature/label tables; split"),
        ("train", "churn.training.stage", "fit the model and log the MLflow run"),
        ("validate", "churn.validation.stage", "apply quality gates and data checks; write the verdict"),
        ("evaluate", "churn.evaluation.stage", "test metrics, plot data and drift summary"),
    ):
        command(name, text, _stage(module))
    report = command("drift-report", "write the HTML drift report (train vs test) beside the DVC outputs", _drift_report)
    report.add_argument(
        "--if-stale", action="store_true", help="only when it is missing or was made from other data or settings"
    )
    command("gate", "exit non-zero unless the verdict passed (fails closed)", _gate)
    command("summary", "key metrics, verdict, MLflow run and where the reports are", _summary)
    challenger = command("challenge", "compare with @champion (fails closed); register and alias @challenger if accepted", _challenge)
    challenger.add_argument(
        "--compare-only", action="store_true",
        help="gate and compare, but write nothing to the registry (what pull-request CI runs)",
    )
    promote = command("promote", "point @champion at this checkout's model (refuses rejected models)", _promote)
    promote.add_argument("--model-md5", help="promote the version holding this model md5 instead")
    promote.add_argument("--force", action="store_true", help="re-promote a version that was rolled back")
    command("rollback", "give @champion back to the previous champion", _rollback)
    review = command("report", "Markdown review report of this checkout against a base git ref", _report)
    review.add_argument("--base", required=True, help="git ref to compare with (e.g. origin/main)")
    command("which", "which registry version is the model in this checkout's dvc.lock", _which)
    predict = command("predict", "batch-score a CSV or Parquet file and append to the inference log", _predict)
    predict.add_argument("--input", required=True, help="records to score (.csv or .parquet; with --engine spark a Parquet dir or glob)")
    predict.add_argument("--output", required=True, help="scores (.parquet; with --engine spark a Parquet directory)")
    chosen = predict.add_mutually_exclusive_group()
    chosen.add_argument("--alias", help="registry alias (default: champion)")
    chosen.add_argument("--version", help="registry version number")
    predict.add_argument(
        "--as-of",
        metavar="TIMESTAMP",
        help="the time the batch stands for, ISO 8601 (no offset = UTC; default now; never in the future)",
    )
    predict.add_argument(
        "--engine", choices=["local", "spark"], default="local",
        help="local: stream the file in batches on this machine (default); spark: a Parquet directory or glob "
        "(local or s3://) scored with mlflow.pyfunc.spark_udf, output written as a Parquet directory",
    )
    predict.add_argument(
        "--batch-rows", type=int, default=None, metavar="N",
        help="local engine: rows per streamed batch (default 25000; memory grows with it, speed hardly does)",
    )
    label = command("label", "attach late labels (id, label, optional labelled_at) to the inference log", _label)
    label.add_argument("--input", required=True, help="labels (.csv or .parquet): id and label columns, optional labelled_at")
    refresh = command(
        "refresh", "build the next raw snapshot from labelled predictions in the inference log; dvc add it", _refresh
    )
    refresh.add_argument(
        "--as-of", metavar="TIMESTAMP", help="end of the log window, ISO 8601 (no offset = UTC; default now)"
    )
    monitor = command(
        "monitor",
        "window the inference log: profile, drift and quality tables, dashboard; --check: the retraining rule",
        _monitor,
    )
    monitor.add_argument(
        "--check", action="store_true",
        help="evaluate monitor.retrain and write its verdict: exit 1 when retraining is due, 0 when not, "
        "2 when the check could not be made (no baseline, no window with enough rows, bad input)",
    )
    monitor.add_argument(
        "--no-drill-down", action="store_true",
        help="skip the evidently report of the latest window (it takes seconds); the dashboard links the last one",
    )
    monitor.add_argument(
        # "pandas" is the engine's first name, kept as a deprecated alias (not shown in the usage).
        "--engine", choices=["local", "spark", "pandas"], default="local", metavar="{local,spark}",
        help="local: read the log on this machine, incrementally (default); spark: compute the window aggregates "
        "with Spark (pyspark, Java 17+; local mode, spark-submit, Databricks or SPARK_REMOTE), same tables",
    )
    tune = command("tune", "seeded hyperparameter search on train/validation (nested MLflow runs)", _tune)
    tune.add_argument("--trials", type=int, help="number of trials (default: tune.trials)")
    tune.add_argument("--apply", action="store_true", help="write the best values to params.yaml")
    served = command("serve", "REST-serve a model of the configured registry (MLflow's scoring server, guarded)", _serve)
    which_model = served.add_mutually_exclusive_group()
    which_model.add_argument("--alias", help="registry alias (default: champion)")
    which_model.add_argument("--version", help="registry version number")
    served.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    served.add_argument("--port", type=int, default=5001)
    served.add_argument("--max-request-bytes", type=int, default=1 << 20, help="larger requests get 413 (default 1 MiB)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_process(quiet=args.quiet)

    def handle() -> int:
        params = load_params(args.params)
        limit_native_threads(params.runtime.threads)
        return int(args.handler(args, params))

    return guarded(handle)


if __name__ == "__main__":
    sys.exit(main())
