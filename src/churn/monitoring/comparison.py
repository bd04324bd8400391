"""What every monitor engine compares the log with: the baseline, loaded once per run.

The local engine (`monitoring.run`) and the Spark engine (`spark.monitor`) aggregate the
log each their own way, but judge it alike: both load the baseline and the label-free
estimate's calibration here (`load`), aggregate the columns `Comparison.spec` names (with
the baseline's quantile bins), compute drift from their window sketches with `drift`, and
word the run's warnings with `warnings`. So each statistic that judges has one
implementation, and the engines' tables are equal on the same log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.config import Params
from churn.errors import ChurnError
from churn.monitoring import baseline as baseline_module
from churn.monitoring import estimate, tables
from churn.monitoring.aggregate import ColumnSpec, sketch
from churn.monitoring.slices import mask
from churn.servable.scoring import PREDICTION, PROBABILITY


@dataclass(frozen=True)
class BaselineSummary:
    source: str | None
    problem: str | None  # why there is none
    roc_auc: float | None  # realised on the labelled reference
    positive_rate: float | None  # predicted positive rate on the baseline
    estimate_note: str | None  # why there is no label-free estimate


@dataclass(frozen=True)
class Comparison:
    baseline: baseline_module.Baseline | None  # None: no drift and no estimate (summary.problem says why)
    summary: BaselineSummary
    calibration: estimate.Calibration
    spec: ColumnSpec  # the columns to aggregate, numeric ones binned on the baseline's quantiles
    spread: dict[str, float]  # the baseline's standard deviation of each binned column (normed Wasserstein)


def load(params: Params) -> Comparison:
    """The baseline (or why there is none), its calibration and what follows from them."""
    found: baseline_module.Baseline | None = None
    problem: str | None = None
    rate: float | None = None
    try:
        found = baseline_module.load(params)
    except ChurnError as exc:  # BaselineMissing, or a registry that cannot be read
        problem = str(exc)
    else:
        rate = float(found.frame[PREDICTION].mean()) if PREDICTION in found.frame.columns else None
    calibration = estimate.fit(found.reference if found else None, found.reference_note if found else problem)
    summary = BaselineSummary(
        found.source if found else None, problem, calibration.reference_roc_auc,
        None if rate is None else round(rate, 6), calibration.note,
    )
    spec = column_spec(params, found)
    spread = {c: float(found.frame[c].std()) for c in spec.edges} if found else {}
    return Comparison(found, summary, calibration, spec, spread)


def column_spec(params: Params, found: baseline_module.Baseline | None) -> ColumnSpec:
    dataset = params.dataset
    numeric = [*dataset.numeric, PROBABILITY]
    edges: dict[str, np.ndarray] = {}
    if found is not None:
        levels = np.linspace(0, 1, params.monitor.drift.numeric_bins + 1)[1:-1]
        for column in numeric:
            if column in found.frame.columns:
                values = found.frame[column].to_numpy("float64")
                values = values[~np.isnan(values)]
                if len(values):
                    edges[column] = np.unique(np.quantile(values, levels))
    return ColumnSpec(
        numeric=numeric, categorical=[*dataset.categorical, PREDICTION],
        probability=PROBABILITY, prediction=PREDICTION, edges=edges,
    )


def drift(params: Params, comparison: Comparison, sketches: pd.DataFrame) -> pd.DataFrame:
    """The drift table of the windows' sketches: against the same slice of the baseline,
    and against the previous window."""
    settings, found, spec = params.monitor, comparison.baseline, comparison.spec
    baseline_sketch = None
    if found is not None:
        present = _present(spec, found.frame)
        # Per slice: a slice is compared with the same slice of the baseline.
        parts = []
        for slice_key in [None, *settings.slices]:
            frame = found.frame if slice_key is None else found.frame.loc[mask(found.frame, slice_key)]
            part = sketch(frame.assign(_all="all"), ["_all"], present)
            parts.append(part.drop(columns="_all").assign(slice_key=slice_key or ""))
        baseline_sketch = pd.concat(parts, ignore_index=True)
    return tables.drift_table(
        sketches, baseline_sketch, comparison.spread, set(spec.edges), settings.drift, settings.min_rows
    )


def _present(spec: ColumnSpec, frame: pd.DataFrame) -> ColumnSpec:
    """The spec restricted to the columns a baseline has."""
    return ColumnSpec(
        numeric=[c for c in spec.numeric if c in frame.columns],
        categorical=[c for c in spec.categorical if c in frame.columns],
        probability=spec.probability, prediction=spec.prediction,
        edges={c: e for c, e in spec.edges.items() if c in frame.columns},
    )


def warnings(summary: BaselineSummary, *, future_rows: int, unknown_label_ids: int, duplicate_labels: int) -> list[str]:
    out = []
    if summary.problem:
        out.append(f"no baseline, so no drift and no estimate: {summary.problem}")
    elif summary.estimate_note:
        out.append(f"no label-free estimate: {summary.estimate_note}")
    if future_rows:
        out.append(f"{future_rows} logged rows are stamped in the future and were left out: check the clock or --as-of")
    if unknown_label_ids:
        out.append(f"{unknown_label_ids} attached labels match no logged prediction (unknown ids)")
    if duplicate_labels:
        out.append(f"{duplicate_labels} labels were superseded by a later label for the same id (the latest wins)")
    return out
