"""A small trained workspace against a real SQLite MLflow store, for registry tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from churn.config import Params, parse_params
from churn.data.simulate import simulate, write_snapshot
from churn.io import md5_file

ROOT = Path(__file__).resolve().parents[2]
ROWS = 2500


class Workspace:
    """A project directory (the process cwd) whose checkout model can be retrained."""

    def __init__(self, path: Path, params: Params):
        self.path = path
        self.params = params

    def with_train(self, **hyperparameters) -> Params:
        train = self.params.train
        merged = {**train.hyperparameters, train.family: {**train.model_params, **hyperparameters}}
        return self.params.model_copy(update={"train": train.model_copy(update={"hyperparameters": merged})})

    def train(self, params: Params | None = None) -> str:
        """Train, validate and write dvc.lock's train entry as `dvc repro` would."""
        from churn.training import stage as train_stage
        from churn.validation import stage as validate_stage

        params = params or self.params
        train_stage.run(params)
        validate_stage.run(params)
        write_lock(params)
        return md5_file(params.paths.model)


def write_lock(params: Params) -> None:
    paths = params.paths
    entry = lambda path: {"path": str(path), "md5": md5_file(path)}  # noqa: E731
    lock = {
        "schema": "2.0",
        "stages": {
            "train": {
                "cmd": "churn train",
                "deps": [entry(paths.raw), entry(paths.train_set), entry(paths.validation_set)],
                "outs": [entry(paths.model)],
            }
        },
    }
    Path("dvc.lock").write_text(yaml.safe_dump(lock))


def workspace_params() -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["validate"]["data_checks"].update(min_train_rows=500, min_validation_rows=100)
    # Deliberately undertrained, so that a later candidate can really be better.
    raw["train"]["hyperparameters"]["hist_gradient_boosting"].update(max_iter=25, learning_rate=0.05)
    return parse_params(raw)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    from churn.prep import stage as prep_stage

    path = tmp_path_factory.mktemp("registry")
    previous_cwd = Path.cwd()
    previous_uri = os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(path)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{path / 'mlflow.db'}"
    try:
        params = workspace_params()
        write_snapshot(simulate(ROWS, seed=11), params.paths.raw)
        prep_stage.run(params)
        yield Workspace(path, params)
    finally:
        os.chdir(previous_cwd)
        if previous_uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_uri
