"""`churn monitor [--check]`: tables, dashboard, drill-down and (with --check) the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from churn import progress
from churn.config import Params
from churn.errors import ChurnError
from churn.io import write_json
from churn.monitoring import dashboard, trigger
from churn.monitoring import state as state_module
from churn.monitoring.run import MonitorResult, run, window_rows


@dataclass(frozen=True)
class CommandResult:
    result: MonitorResult
    dashboard: Path
    drill_down: Path | None
    verdict: trigger.Verdict | None


def monitor(
    params: Params, *, check: bool = False, now: datetime | None = None, drill_down: bool = True, engine: str = "local"
) -> CommandResult:
    """`engine`: "local" (this machine, pandas and pyarrow, incremental) or "spark"
    (churn.spark.monitor: the same tables from aggregates computed by Spark; pyspark is
    imported only then)."""
    settings = params.monitor
    try:
        if engine == "spark":
            from churn.spark.monitor import run_spark

            result = run_spark(params, now=now)
        elif engine == "local":
            result = run(params, now=now)
        else:
            raise ChurnError(f"unknown monitor engine {engine!r}: use local or spark")
    except ChurnError as exc:
        if check:  # fail closed, in the verdict file too
            write_json(settings.paths.verdict, trigger.impossible(str(exc), settings.retrain).to_json())
        raise
    verdict = None
    problem: trigger.CheckImpossible | None = None
    if check:
        try:
            verdict = trigger.evaluate(
                result.profile, result.drift, settings.retrain, min_rows=settings.min_rows,
                feature_columns=params.dataset.feature_columns, baseline_roc_auc=result.baseline.roc_auc,
                baseline_positive_rate=result.baseline.positive_rate, baseline_problem=result.baseline.problem,
            )
        except trigger.CheckImpossible as exc:
            problem = exc
            verdict = trigger.impossible(str(exc), settings.retrain)
        write_json(settings.paths.verdict, verdict.to_json())
    report = _drill_down(params, result, now) if drill_down else None
    with progress.phase("writing the dashboard"):
        page = dashboard.write(
            params, result.profile, result.drift, baseline_source=result.baseline.source,
            baseline_roc_auc=result.baseline.roc_auc, baseline_positive_rate=result.baseline.positive_rate,
            warnings=result.warnings, verdict=verdict.to_json() if verdict else None,
            drill_down=report or (settings.paths.drill_down if settings.paths.drill_down.is_file() else None),
        )
    if problem is not None:
        raise problem  # after the verdict and the page: both say why
    return CommandResult(result, page, report, verdict)


def _drill_down(params: Params, result: MonitorResult, now: datetime | None) -> Path | None:
    """evidently's report of the baseline against the latest window, rebuilt only when that
    window or the baseline changed (it takes seconds)."""
    settings = params.monitor
    if result.baseline_frame is None or result.latest_window is None:
        return None
    directory = settings.paths.state_dir
    state = state_module.load(directory)
    key = state_module.digest([result.latest_window, result.latest_fingerprint, state.baseline])
    target = settings.paths.drill_down
    if state.drill_down == key and target.is_file():
        return target
    current = window_rows(params, result.latest_window, now)
    if len(current) < settings.min_rows:
        return None
    from churn.monitoring.drift import compare

    dataset = params.dataset
    numeric = [c for c in dataset.numeric if c in result.baseline_frame.columns]
    categorical = [c for c in dataset.categorical if c in result.baseline_frame.columns]
    reference = result.baseline_frame[[*numeric, *categorical]].copy()
    current = current[[*numeric, *categorical]].copy()
    for column in categorical:
        reference[column] = reference[column].astype(str)
        current[column] = current[column].astype(str)
    with progress.phase("drift report of the latest window (evidently)"):
        compare(
            reference, current, numeric=numeric, categorical=categorical,
            sample_size=settings.drill_down_sample, seed=0,
        ).write_html(target)
    state.drill_down = key
    state_module.save(directory, state)
    return target
