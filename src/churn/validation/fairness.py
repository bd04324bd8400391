"""Group fairness on protected attributes, as monitoring products report it.

For each protected attribute, the largest difference between its groups in
- statistical parity: the rate of predicted churners,
- equal opportunity: recall (churners the model finds),
- predictive parity: precision (flagged customers who do churn).
fairlearn's metric functions give each group's rates (`slices.by_group` groups the rows); groups too small to score as a slice are left out of
the comparison, and an attribute with fewer than two comparable groups fails closed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import selection_rate, true_positive_rate
from sklearn.metrics import precision_score

from churn.config import Fairness, Slices
from churn.validation.gates import Check
from churn.validation.slices import DIGITS, MISSING, by_group, why_unscored

KIND = "fairness"
# Name in the verdict -> the Fairness setting that bounds it.
DIFFERENCES = {
    "statistical_parity_difference": "max_statistical_parity_difference",
    "equal_opportunity_difference": "max_equal_opportunity_difference",
    "predictive_parity_difference": "max_predictive_parity_difference",
}


@dataclass(frozen=True)
class FairnessResult:
    attribute: str
    groups: list[str]  # compared
    left_out: dict[str, str] = field(default_factory=dict)  # group -> why
    differences: dict[str, float] = field(default_factory=dict)  # empty when not comparable

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _precision(y_true: Any, y_pred: Any) -> float:
    return float(precision_score(y_true, y_pred, zero_division=0))


def attribute_fairness(frame: pd.DataFrame, y_true: Any, proba: Any, threshold: float, attribute: str,
                       sizes: Slices) -> FairnessResult:
    y = pd.Series(np.asarray(y_true, dtype=int))
    predicted = pd.Series((np.asarray(proba, dtype=float) >= threshold).astype(int))
    column = frame[attribute].reset_index(drop=True)
    groups = column.astype(str).where(column.notna(), MISSING)
    compared, left_out = [], {}
    for group in sorted(groups.unique()):
        in_group = groups == group
        why = why_unscored(int(in_group.sum()), int(y[in_group].sum()), sizes)
        if why:
            left_out[group] = why
        else:
            compared.append(group)
    if len(compared) < 2:
        return FairnessResult(attribute, compared, left_out)
    keep = groups.isin(compared).to_numpy()
    rates = by_group(
        {
            "statistical_parity_difference": selection_rate,
            "equal_opportunity_difference": true_positive_rate,
            "predictive_parity_difference": _precision,
        },
        y.to_numpy()[keep], predicted.to_numpy()[keep], groups[keep],
    )
    # fairlearn's "between_groups" difference: the largest group's rate minus the smallest's.
    differences = {name: rates[name].max() - rates[name].min() for name in rates.columns}
    return FairnessResult(attribute, compared, left_out, {k: round(float(v), DIGITS) for k, v in differences.items()})


def fairness_results(frame: pd.DataFrame, y_true: Any, proba: Any, threshold: float, settings: Fairness,
                     sizes: Slices) -> list[FairnessResult]:
    return [attribute_fairness(frame, y_true, proba, threshold, a, sizes) for a in settings.protected]


def fairness_checks(results: list[FairnessResult], settings: Fairness) -> list[Check]:
    checks = []
    for result in results:
        for name, setting in DIFFERENCES.items():
            limit = getattr(settings, setting)
            if limit is None:
                continue
            check_name = f"{name}.{result.attribute}"
            if name not in result.differences:  # fail closed: an unchecked attribute is not a fair one
                why = "; ".join(f"{g}: {w}" for g, w in result.left_out.items()) or "a single group"
                checks.append(Check.compare(check_name, KIND, 1.0, "<=", limit,
                                            note=f"could not check: fewer than two comparable groups ({why})"))
                continue
            checks.append(Check.compare(check_name, KIND, result.differences[name], "<=", limit,
                                        note=f"groups {', '.join(result.groups)}"))
    return checks


def summary(results: list[FairnessResult]) -> dict[str, float | None]:
    """The largest difference over all protected attributes, per fairness metric."""
    out: dict[str, float | None] = {}
    for name in DIFFERENCES:
        values = [r.differences[name] for r in results if name in r.differences]
        out[f"max_{name}"] = max(values) if values else None
    return out
