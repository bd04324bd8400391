"""Checks of `monitor:` settings that need the monitoring code (run by `churn monitor`)."""

from __future__ import annotations

from churn.config import Params
from churn.errors import ChurnError
from churn.monitoring.slices import check_expression
from churn.monitoring.windows import parse_granularity


def check(params: Params) -> None:
    """Granularities parse and every slice is a plain comparison of known feature columns."""
    for text in params.monitor.granularities:
        try:
            parse_granularity(text)
        except ValueError as exc:
            raise ChurnError(f"monitor.granularities in params.yaml: {exc}") from None
    for expression in params.monitor.slices:
        try:
            check_expression(expression, params.dataset.feature_columns)
        except ValueError as exc:
            raise ChurnError(f"monitor.slices in params.yaml: {exc}") from None
