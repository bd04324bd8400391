"""Quality gates and data checks: each check is a row in the verdict, passed or not."""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from churn.config import DataChecks, Dataset, Gates

OPERATORS = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Check:
    name: str
    kind: str  # "model", "data", "leakage", "baseline", "slice" or "fairness"
    value: float
    op: str
    threshold: float
    passed: bool
    note: str = ""  # what a reviewer needs beside the number (a culprit, the compared values)

    @classmethod
    def compare(cls, name: str, kind: str, value: float, op: str, threshold: float, note: str = "") -> Check:
        value = round(float(value), 6)
        return cls(name, kind, value, op, float(threshold), bool(OPERATORS[op](value, threshold)), note)

    def reason(self) -> str:
        text = f"{self.kind} check {self.name} = {self.value:g} fails {self.op} {self.threshold:g}"
        return f"{text} ({self.note})" if self.note else text

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        if not self.note:
            del row["note"]
        return row


def model_checks(metrics: dict[str, float], gates: Gates) -> list[Check]:
    rules = [
        ("roc_auc", ">=", gates.min_roc_auc),
        ("log_loss", "<=", gates.max_log_loss),
        ("recall", ">=", gates.min_recall),
        ("precision", ">=", gates.min_precision),
    ]
    return [
        Check.compare(f"validation_{metric}", "model", metrics[metric], op, threshold)
        for metric, op, threshold in rules
        if threshold is not None
    ]


def data_checks(train: pd.DataFrame, validation: pd.DataFrame, dataset: Dataset, limits: DataChecks) -> list[Check]:
    label = dataset.label_column
    low, high = limits.positive_rate
    checks = [
        Check.compare("train_rows", "data", len(train), ">=", limits.min_train_rows),
        Check.compare("validation_rows", "data", len(validation), ">=", limits.min_validation_rows),
    ]
    for name, frame in (("train", train), ("validation", validation)):
        rate = frame[label].mean() if len(frame) else 0.0
        checks.append(Check.compare(f"{name}_positive_rate", "data", rate, ">=", low))
        checks.append(Check.compare(f"{name}_positive_rate", "data", rate, "<=", high))
    missing = train[dataset.feature_columns].isna().mean() if len(train) else pd.Series(dtype=float)
    for column, share in missing.items():
        checks.append(Check.compare(f"missing_share.{column}", "data", share, "<=", limits.max_missing_share))
    return checks


@dataclass(frozen=True)
class Decision:
    """All checks together: rejected when any failed, with one reason per failure."""

    verdict: str
    reasons: list[str]
    checks: list[dict[str, Any]]


def verdict(checks: list[Check]) -> Decision:
    reasons = [check.reason() for check in checks if not check.passed]
    return Decision("rejected" if reasons else "passed", reasons, [check.as_dict() for check in checks])
