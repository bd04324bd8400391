"""evaluate's train-vs-test drift: evidently's comparison of the two split sets, its summary
(a DVC metric) and its HTML report (not a DVC output: evidently's HTML is not
byte-deterministic, so it carries a key file saying what it was made from)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import pandas as pd

from churn.config import Params
from churn.core.splits import read_split
from churn.io import content_md5, md5_file, write_text
from churn.monitoring.drift import DriftComparison, compare


class _DriftArgs(TypedDict):
    numeric: list[str]
    categorical: list[str]
    sample_size: int
    seed: int


def _drift_args(params: Params) -> _DriftArgs:
    return _DriftArgs(
        numeric=list(params.dataset.numeric),
        categorical=list(params.dataset.categorical),
        sample_size=params.evaluate.drift.sample_size,
        seed=params.evaluate.drift.seed,
    )


def html_key(params: Params) -> str:
    """What the HTML report was made from: the two data files and the drift settings."""
    paths = params.paths
    made_from = {"train": md5_file(paths.train_set), "test": md5_file(paths.test_set), **_drift_args(params),
                 "drift_share": params.evaluate.drift.drift_share}
    return content_md5(made_from)


def _key_file(params: Params) -> Path:
    html = params.paths.drift_report_html
    return html.with_name(html.name + ".key")


def _read_compared_columns(params: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train and test sets' compared columns, each already sampled as the comparison
    samples it (the same rows): neither set is held whole."""
    args = _drift_args(params)
    columns, sample = [*args["numeric"], *args["categorical"]], (args["sample_size"], args["seed"])
    paths, dataset = params.paths, params.dataset
    return (read_split(paths.train_set, dataset, columns, sample=sample),
            read_split(paths.test_set, dataset, columns, sample=sample))


def _compare(params: Params, train: pd.DataFrame, test: pd.DataFrame) -> DriftComparison:
    return compare(train, test, drift_share=params.evaluate.drift.drift_share, **_drift_args(params))


def _write_html(params: Params, comparison: DriftComparison) -> None:
    comparison.write_html(params.paths.drift_report_html)
    write_text(_key_file(params), html_key(params) + "\n")


def summarise(params: Params) -> dict[str, Any]:
    """Compare the train and test sets' files; write the HTML report; return the summary.
    Reads the files itself, so it can run in a process of its own (`churn.core.side_process`)."""
    comparison = _compare(params, *_read_compared_columns(params))
    _write_html(params, comparison)
    return comparison.summary


def report_is_current(params: Params) -> bool:
    key_file = _key_file(params)
    return (
        params.paths.drift_report_html.is_file()
        and key_file.is_file()
        and key_file.read_text().strip() == html_key(params)
    )


def write_report(params: Params) -> None:
    """The HTML drift report alone. It is not byte-deterministic, so it is not a DVC output:
    a checkout whose evaluate stage was up to date (or restored from the run-cache) has
    none, or one made from other data, until this writes it."""
    summarise(params)
