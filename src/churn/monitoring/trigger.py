"""The retraining rule (`churn monitor --check`), after MLOps Stacks' MonitoredMetricViolationCheck.

Per window of `retrain.granularity` (whole table, the model version that served the
latest window, windows with at least `min_rows` rows), four metrics against the baseline:

* `drifted_share`            share of feature columns whose BASELINE drift is "drift"
* `estimated_roc_auc_drop`   baseline ROC AUC minus the label-free estimate
* `roc_auc_drop`             baseline ROC AUC minus the realised one (windows with at least
                             `min_rows` labels)
* `positive_rate_shift`      |predicted positive rate - the baseline's|

A metric fires when it exceeds its threshold in at least `min_violations` of the last
`last_n` windows and in the latest one. A null metric (no labels yet, no estimate) is no
violation. The check fails closed: without a baseline, or without a single window with
enough rows, it cannot be made and says so (CheckImpossible, exit 2 in the CLI).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.config import MonitorRetrain
from churn.errors import ChurnError
from churn.monitoring.tables import BASELINE, OK, TABLE

FIRED = "retrain"
QUIET = "ok"
IMPOSSIBLE = "could not check"


class CheckImpossible(ChurnError):
    """The rule could not be evaluated; the message says why."""


@dataclass(frozen=True)
class Verdict:
    status: str  # FIRED | QUIET | IMPOSSIBLE
    reasons: list[str]
    model_version: str | None
    windows: list[str]
    metrics: dict[str, dict[str, Any]]

    @property
    def fired(self) -> bool:
        return self.status == FIRED

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def impossible(reason: str, rule: MonitorRetrain) -> Verdict:
    return Verdict(IMPOSSIBLE, [reason], None, [], {"rule": {"settings": rule.model_dump()}})


def evaluate(
    profile: pd.DataFrame,
    drift: pd.DataFrame,
    rule: MonitorRetrain,
    *,
    min_rows: int,
    feature_columns: list[str],
    baseline_roc_auc: float | None,
    baseline_positive_rate: float | None,
    baseline_problem: str | None,
) -> Verdict:
    if baseline_problem:
        raise CheckImpossible(f"the retraining check could not be made: no baseline ({baseline_problem})")
    table = profile[
        (profile["column_name"] == TABLE) & (profile["granularity"] == rule.granularity)
        & profile["slice_key"].isna() & profile["model_version"].notna()
    ]
    usable = table[table["status"] == OK]
    if usable.empty:
        raise CheckImpossible(
            f"the retraining check could not be made: no {rule.granularity!r} window has at least {min_rows} rows"
        )
    latest_start = usable["window_start"].max()
    latest = usable[usable["window_start"] == latest_start]
    version = str(latest.sort_values("count", ascending=False)["model_version"].iloc[0])
    windows = usable[usable["model_version"] == version].sort_values("window_start").tail(rule.last_n)
    starts = list(windows["window_start"])

    features = drift[
        (drift["drift_type"] == BASELINE) & (drift["granularity"] == rule.granularity) & drift["slice_key"].isna()
        & (drift["model_version"] == version) & drift["column_name"].isin(feature_columns)
        & drift["status"].isin(["drift", "no drift"])
    ]
    drifted = features.groupby("window_start")["drifted"].agg(lambda d: float(np.mean(d.astype(bool))))

    def series(values: Any) -> list[float | None]:
        return [None if v is None or pd.isna(v) else round(float(v), 6) for v in values]

    def auc_drop(column: str) -> list[float | None]:
        return [
            None if baseline_roc_auc is None or pd.isna(v) else baseline_roc_auc - float(v) for v in windows[column]
        ]

    realised = windows["roc_auc"].where(windows["label_count"].fillna(0) >= min_rows)
    observed = {
        "drifted_share": series([drifted.get(s) for s in starts]),
        "estimated_roc_auc_drop": series(auc_drop("estimated_roc_auc")),
        "roc_auc_drop": series(
            None if baseline_roc_auc is None or pd.isna(v) else baseline_roc_auc - float(v) for v in realised
        ),
        "positive_rate_shift": series(
            None if baseline_positive_rate is None or pd.isna(v) else abs(float(v) - baseline_positive_rate)
            for v in windows["predicted_positive_rate"]
        ),
    }
    limits = {
        "drifted_share": rule.max_drifted_share,
        "estimated_roc_auc_drop": rule.max_estimated_roc_auc_drop,
        "roc_auc_drop": rule.max_roc_auc_drop,
        "positive_rate_shift": rule.max_positive_rate_shift,
    }
    labels = [pd.Timestamp(s).isoformat() for s in starts]
    reasons: list[str] = []
    metrics: dict[str, dict[str, Any]] = {}
    for name, values in observed.items():
        limit = limits[name]
        violated = [limit is not None and v is not None and v > limit for v in values]
        count = int(sum(violated))
        fires = limit is not None and count >= rule.min_violations and violated[-1]
        metrics[name] = {"threshold": limit, "values": values, "violations": count, "fired": bool(fires)}
        if fires:
            reasons.append(
                f"{name} above {limit} in {count} of the last {len(values)} {rule.granularity!r} windows, "
                f"the latest ({labels[-1]}) included: {values[-1]:.4f}"
            )
    metrics["rule"] = {
        "settings": rule.model_dump(), "baseline_roc_auc": baseline_roc_auc,
        "baseline_positive_rate": baseline_positive_rate,
    }
    if not reasons:
        reasons = [
            f"no metric exceeded its threshold in at least {rule.min_violations} of the last {len(values)} "
            f"{rule.granularity!r} windows and in the latest ({labels[-1]})"
        ]
    return Verdict(FIRED if any(m.get("fired") for m in metrics.values()) else QUIET, reasons, version, labels, metrics)
