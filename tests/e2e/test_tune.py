"""`churn tune` runs a few seeded trials on train/validation only, records them as nested
MLflow runs, prints a `dvc exp run -S` line and writes params.yaml only with --apply."""

from __future__ import annotations

import shlex

import mlflow
import pytest
from threadpoolctl import threadpool_limits

from churn.cli import main
from churn.config import load_params
from churn.core import tracking
from churn.prep import stage as prep_stage
from churn.tuning.search import TAG_TUNE
from tests.e2e.test_other_dataset import bank_params, bank_table

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def one_native_thread():
    # As `churn` runs stages (runtime.threads): OpenMP threads spin and collapse on a busy
    # 2-core machine, and this process loaded OpenMP before any variable could say so.
    with threadpool_limits(limits=1):
        yield


def test_tune_records_trials_and_applies_only_on_request(tmp_path, monkeypatch, capsys):
    import yaml

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    raw = bank_params(tmp_path, "churned", "stayed")
    # A small, fast space: the point is the recording, not the search.
    raw["train"]["hyperparameters"]["hist_gradient_boosting"].update(max_iter=40)
    raw["tune"]["space"]["hist_gradient_boosting"] = {
        "learning_rate": {"low": 0.05, "high": 0.3, "log": True},
        "max_leaf_nodes": {"low": 2, "high": 15},
    }
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params(params_file)
    table, _ = bank_table(2000, seed=9, positive="churned", negative="stayed")
    params.paths.raw.parent.mkdir(parents=True)
    table.to_csv(params.paths.raw, index=False)
    prep_stage.run(params)
    params.paths.test_set.unlink()  # the search must not need the test set

    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(variable, "1")  # main() sets them; monkeypatch restores them after
    before = params_file.read_text()
    assert main(["--params", str(params_file), "tune", "--trials", "3"]) == 0
    first = capsys.readouterr().out
    assert params_file.read_text() == before  # no --apply: params.yaml untouched
    command = next(line.strip() for line in first.splitlines() if line.strip().startswith("dvc exp run"))
    settings = dict(arg.split("=", 1) for arg in shlex.split(command)[4::2])
    assert set(settings) == {f"train.hyperparameters.hist_gradient_boosting.{k}" for k in ("learning_rate", "max_leaf_nodes")}

    tracking.connect(params)
    runs = mlflow.search_runs(experiment_names=["bank-churn"], output_format="list")
    parents = [r for r in runs if r.data.tags.get(TAG_TUNE) == "study"]
    trials = [r for r in runs if r.data.tags.get(TAG_TUNE) == "trial"]
    assert len(parents) == 1 and len(trials) == 3
    assert all(t.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for t in trials)
    assert all("validation_roc_auc" in t.data.metrics for t in trials)
    assert parents[0].data.tags["dvc_command"] == command

    # Seeded: the same search gives the same answer; --apply writes it.
    assert main(["--params", str(params_file), "tune", "--trials", "3", "--apply"]) == 0
    second = capsys.readouterr().out
    assert command in second
    applied = yaml.safe_load(params_file.read_text())
    tuned = applied["train"]["hyperparameters"]["hist_gradient_boosting"]
    for key, value in settings.items():
        assert str(tuned[key.rsplit(".", 1)[1]]) == value
