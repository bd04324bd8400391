"""churn.monitoring.settings and the monitor: section of params.yaml."""

from __future__ import annotations

import pytest

from churn.config import parse_params
from churn.errors import ChurnError


def test_monitor_checks_slices_and_granularities(params):
    from churn.monitoring.settings import check

    bad_slice = params.monitor.model_copy(update={"slices": ["len(Contract) > 2"]})
    with pytest.raises(ChurnError, match=r"monitor\.slices in params\.yaml: slice 'len"):
        check(params.model_copy(update={"monitor": bad_slice}))
    unknown = params.monitor.model_copy(update={"slices": ["Tenure < 3"]})
    with pytest.raises(ChurnError, match="unknown columns"):
        check(params.model_copy(update={"monitor": unknown}))
    bad_window = params.monitor.model_copy(update={"granularities": ["1 fortnight"], "retrain": params.monitor.retrain.model_copy(update={"granularity": "1 fortnight"})})
    with pytest.raises(ChurnError, match=r"monitor\.granularities"):
        check(params.model_copy(update={"monitor": bad_window}))
    check(params)  # the repository's own settings pass


@pytest.mark.parametrize("change, message", [
    ({"retrain": {"last_n": 2, "min_violations": 3}}, "min_violations"),
    ({"retrain": {"granularity": "1 hour"}}, "must be one of granularities"),
    ({"granularities": []}, "at least one window size"),
    ({"baseline": {"source": "file"}}, "source: file needs file"),
    ({"min_rows": 0}, "min_rows"),
    ({"thresholds": 1}, "thresholds"),
])
def test_bad_monitor_section_is_a_short_error(params, change, message):
    raw = params.model_dump(mode="json", by_alias=True)
    for key, value in change.items():
        raw["monitor"][key] = {**raw["monitor"][key], **value} if isinstance(value, dict) else value
    with pytest.raises(ChurnError, match=message):
        parse_params(raw)
