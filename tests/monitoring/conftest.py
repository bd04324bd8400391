"""A small scored world for monitor tests: a fitted model, a labelled baseline file, and
an inference log written day by day through the real `inference_log.append`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from churn.config import DriftScenario, Params
from churn.core.clean import clean_features, encode_labels
from churn.core.contract import validate_raw
from churn.data.simulate import simulate
from churn.deployment import inference_log
from churn.io import write_parquet
from churn.servable.scoring import PREDICTION, PROBABILITY, score_records
from churn.training.pipeline import build_pipeline

DAY0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
NOW = datetime(2026, 12, 31, tzinfo=UTC)
THRESHOLD = 0.35
URI = "models:/churn-classifier@champion"


class World:
    def __init__(self, model, params: Params, root: Path):
        self.model, self.params, self.root = model, params, root
        self.dataset = params.dataset

    def score(self, raw: pd.DataFrame) -> pd.DataFrame:
        batch = score_records(self.model, self.dataset, THRESHOLD, raw)
        assert len(batch.rejected) == 0
        return batch.scored

    def log_day(self, day: int, rows: int, *, seed: int | None = None, drift: DriftScenario | None = None,
                with_label: bool = False, version: str = "1", hour: int = 12) -> pd.DataFrame:
        raw = simulate(rows, seed=1000 + day if seed is None else seed, drift=drift)
        raw[self.dataset.id_column] = [f"d{day}-{i}" for i in range(len(raw))]
        scored = self.score(raw if with_label else raw.drop(columns=self.dataset.label_column))
        inference_log.append(
            self.params.paths.inference_log, scored, dataset=self.dataset, model_version=version,
            model_uri=URI, scored_at=DAY0 + timedelta(days=day, hours=hour),
        )
        return raw

    def label(self, raw: pd.DataFrame, at_day: int = 40) -> int:
        return inference_log.attach_labels(
            self.params.paths.inference_log, raw[[self.dataset.id_column, self.dataset.label_column]],
            dataset=self.dataset, labelled_at=DAY0 + timedelta(days=at_day),
        )


def fit_model(params: Params, rows: int = 3000):
    dataset = params.dataset
    typed = validate_raw(simulate(rows, seed=3), dataset)
    features = clean_features(typed, dataset)[dataset.feature_columns]
    labels = encode_labels(typed, dataset)[dataset.label_column]
    train = params.train.model_copy(update={"hyperparameters": {"hist_gradient_boosting": {"max_iter": 40}}})
    return build_pipeline(dataset, train).fit(features, labels), features, labels


@pytest.fixture(scope="session", autouse=True)
def one_native_thread():
    """OpenMP threads spin-wait and collapse on a busy 2-core machine (see runtime.threads)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def fitted(params):
    return fit_model(params)


def world_params(params: Params, tmp: Path, baseline: Path | None, **monitor) -> Params:
    paths = params.paths.model_copy(update={"inference_log": tmp / "log"})
    settings = params.monitor.model_copy(update={
        "paths": params.monitor.paths.model_copy(update={
            "profile": tmp / "mon/profile_metrics.parquet", "drift": tmp / "mon/drift_metrics.parquet",
            "state_dir": tmp / "mon/state", "dashboard": tmp / "reports/monitoring.html",
            "drill_down": tmp / "reports/monitoring_latest_drift.html", "verdict": tmp / "reports/verdict.json",
        }),
        "baseline": params.monitor.baseline.model_copy(
            update={"source": "file", "file": baseline} if baseline else {"source": "file", "file": tmp / "none.parquet"}
        ),
        "min_rows": 100,
        **monitor,
    })
    return params.model_copy(update={"paths": paths, "monitor": settings})


def write_baseline(world_model, params: Params, path: Path, rows: int = 4000, seed: int = 21) -> Path:
    """Cleaned features of the training distribution, scored and labelled: a file baseline."""
    dataset = params.dataset
    typed = validate_raw(simulate(rows, seed=seed), dataset)
    frame = clean_features(typed, dataset)[dataset.feature_columns]
    frame[PROBABILITY] = world_model.predict_proba(frame)[:, 1]
    frame[PREDICTION] = (frame[PROBABILITY] >= THRESHOLD).astype("int64")
    frame[dataset.label_column] = encode_labels(typed, dataset)[dataset.label_column].to_numpy()
    write_parquet(path, frame)
    return path


@pytest.fixture
def world(params, fitted, tmp_path):
    model = fitted[0]
    baseline = write_baseline(model, params, tmp_path / "baseline.parquet")
    return World(model, world_params(params, tmp_path, baseline), tmp_path)
