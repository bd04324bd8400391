"""The train, validate and evaluate stages on a small prepared project in a temporary directory.

MLflow is the real SQLite store, in the same temporary directory.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from churn.config import load_params, parse_params
from churn.core import preload, tracking
from churn.core.model_file import load_model
from churn.core.verdict import read_verdict
from churn.data.simulate import simulate, write_snapshot
from churn.errors import ChurnError
from churn.evaluation import stage as evaluate_stage
from churn.io import md5_file
from churn.prep import stage as prep_stage
from churn.training import stage as train_stage
from churn.validation import stage as validate_stage
from tests.conftest import PARAMS_FILE, REPO_ROOT
from tests.helpers import free_port, mlflow_workspace

METRIC_NAMES = {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier"}


def project_params(root, **train_update):
    """The repository's params with every path moved under `root` and a faster model."""
    raw = load_params(PARAMS_FILE).model_dump(mode="json", by_alias=True)
    raw["paths"] = {name: str(root / path) for name, path in raw["paths"].items()}
    raw["train"]["hyperparameters"]["hist_gradient_boosting"]["max_iter"] = 60
    raw["train"].update(train_update)
    raw["tracking"]["experiment"] = "churn-stage-tests"
    raw["evaluate"]["importance"]["n_repeats"] = 2
    return parse_params(raw)


def dvc_yaml_plot_files(params) -> set:
    """The plot CSVs dvc.yaml's evaluate stage declares, with ${paths.plots_dir} resolved."""
    stage = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]["evaluate"]
    names = set()
    for entry in stage["outs"]:
        (path,) = entry
        if path.startswith("${paths.plots_dir}/"):
            names.add(path.replace("${paths.plots_dir}/", ""))
    return {params.paths.plots_dir / name for name in names}


def test_every_plot_file_is_drawn_once_by_dvc_yaml():
    """Stage outputs are plain files; the top-level `plots:` draws each exactly once (a
    stage-level `plots:` entry would draw a second, default-template copy)."""
    dvc_yaml = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    assert all("plots" not in stage for stage in dvc_yaml["stages"].values())
    drawn = [file for definition in dvc_yaml["plots"] for spec in definition.values() for file in spec["y"]]
    declared = [out for out in dvc_yaml["stages"]["evaluate"]["outs"] if next(iter(out)).endswith(".csv")]
    assert sorted(drawn) == sorted(next(iter(out)) for out in declared)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Raw snapshot -> prep -> train, once; the MLflow env and cwd stay set for the module."""
    root = tmp_path_factory.mktemp("stage")
    with mlflow_workspace(root):
        params = project_params(root)
        write_snapshot(simulate(1500, seed=1), params.paths.raw)
        prep_stage.run(params)
        result = train_stage.run(params)
        yield {"root": root, "params": params, "result": result, "model_bytes": params.paths.model.read_bytes()}


@pytest.fixture
def env(project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project['root'] / 'mlflow.db'}")
    monkeypatch.chdir(project["root"])
    return project


def test_train_writes_the_model_with_the_returned_md5(env):
    params, result = env["params"], env["result"]
    assert params.paths.model.is_file()
    assert md5_file(params.paths.model) == result.model_md5
    # The model file is a loadable model that scores the validation set as reported.
    model = load_model(params.paths.model)
    validation = pd.read_parquet(params.paths.validation_set)
    proba = model.predict_proba(validation[params.dataset.feature_columns])[:, 1]
    assert roc_auc_score(validation[params.dataset.label_column], proba) == pytest.approx(
        result.metrics["validation_roc_auc"], abs=1e-6
    )


def test_mlflow_run_carries_the_model_md5(env):
    import mlflow

    params, result = env["params"], env["result"]
    tracking.connect(params)
    run = mlflow.get_run(result.run_id)
    assert run.data.tags["dvc.model_md5"] == md5_file(params.paths.model)
    assert run.data.tags["dvc.raw_md5"] == md5_file(params.paths.raw)
    assert run.data.tags["dvc.train_md5"] == md5_file(params.paths.train_set)
    assert run.data.tags["dvc.validation_md5"] == md5_file(params.paths.validation_set)
    assert run.data.params["rows.train"] == str(len(pd.read_parquet(params.paths.train_set)))
    assert run.data.metrics["validation_roc_auc"] == pytest.approx(result.metrics["validation_roc_auc"])


def test_training_twice_gives_byte_identical_models(env):
    params, first = env["params"], env["model_bytes"]
    second = train_stage.run(params)
    assert params.paths.model.read_bytes() == first
    assert second.model_md5 == env["result"].model_md5
    assert second.run_id != env["result"].run_id
    # Both runs are tagged with the same content; the lookup finds the newest.
    found = tracking.find_run_for_model(params, second.model_md5)
    assert found is not None and found.info.run_id == second.run_id


def test_unreachable_mlflow_writes_no_model(env, tmp_path, monkeypatch):
    params = env["params"]
    model_path = tmp_path / "models" / "model.skops"
    params = params.model_copy(update={"paths": params.paths.model_copy(update={"model": model_path})})
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    model_path.unlink(missing_ok=True)
    with pytest.raises(ChurnError, match=r"127\.0\.0\.1"):
        train_stage.run(params)
    assert not model_path.exists()
    assert not list(tmp_path.rglob("*model.skops*")), "no partial or temporary model file either"


def test_unreachable_mlflow_leaves_an_existing_model_untouched(env, tmp_path, monkeypatch):
    params = env["params"]
    model_path = tmp_path / "model.skops"
    model_path.write_bytes(b"the previous model")
    params = params.model_copy(update={"paths": params.paths.model_copy(update={"model": model_path})})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ChurnError):
        train_stage.run(params)
    assert model_path.read_bytes() == b"the previous model"


def test_a_failed_scoring_fails_the_run_logged_beside_it_and_writes_no_model(env, tmp_path, monkeypatch):
    # The MLflow run is logged on a thread while the sets are scored for its metrics: a
    # scoring error is the one raised, the run ends FAILED with no metrics, and no model.
    import mlflow

    params = env["params"]
    model_path = tmp_path / "model.skops"
    params = params.model_copy(update={"paths": params.paths.model_copy(update={"model": model_path})})

    def broken(*args, **kwargs):
        raise ChurnError("scoring broke")

    monkeypatch.setattr(train_stage, "positive_proba", broken)
    tracking.connect(params)
    before = {run.info.run_id for run in mlflow.search_runs(search_all_experiments=True, output_format="list")}
    with pytest.raises(ChurnError, match=r"^scoring broke$"):
        train_stage.run(params)
    assert not model_path.exists()
    new = [run for run in mlflow.search_runs(search_all_experiments=True, output_format="list")
           if run.info.run_id not in before]
    assert new and all(run.info.status == "FAILED" and run.data.metrics == {} for run in new)


def test_validate_writes_a_verdict_for_this_model(env):
    params = env["params"]
    result = validate_stage.run(params)
    verdict = json.loads(params.paths.verdict.read_text())
    assert verdict["verdict"] in {"passed", "rejected"}
    assert verdict["model_md5"] == md5_file(params.paths.model)
    assert verdict["decision_threshold"] == params.train.decision_threshold
    assert set(verdict["validation_metrics"]) == METRIC_NAMES
    assert verdict["validation_metrics"]["roc_auc"] == pytest.approx(env["result"].metrics["validation_roc_auc"], abs=1e-6)
    # 1500 rows * 0.6 = 900 training rows, below the default min_train_rows of 1000.
    assert verdict["verdict"] == "rejected"
    assert any("train_rows" in reason for reason in verdict["reasons"])
    failed = [c["name"] for c in verdict["checks"] if not c["passed"]]
    assert len(failed) == len(verdict["reasons"])
    assert result.verdict == verdict["verdict"]
    assert read_verdict(params.paths.verdict, params.paths.model) == (False, verdict["reasons"])


def _evaluate_outputs(params) -> dict:
    files = [params.paths.test_metrics, params.paths.slice_metrics, params.paths.drift_metrics, *sorted(dvc_yaml_plot_files(params))]
    return {str(path): path.read_bytes() for path in files}


def test_validate_and_evaluate_write_the_same_bytes_with_or_without_side_processes(env, monkeypatch):
    """The baselines and the drift summary run in side processes on two cores and in line on
    one (churn.core.side_process): the outputs must not tell which."""
    params = env["params"]
    monkeypatch.setattr(preload, "enabled", lambda: False)
    validate_stage.run(params)
    evaluate_stage.run(params)
    first = {**_evaluate_outputs(params), "verdict": params.paths.verdict.read_bytes()}
    monkeypatch.setattr(preload, "enabled", lambda: True)
    validate_stage.run(params)
    evaluate_stage.run(params)
    assert {**_evaluate_outputs(params), "verdict": params.paths.verdict.read_bytes()} == first


def test_evaluate_writes_every_output_deterministically(env):
    params = env["params"]
    evaluate_stage.run(params)
    first = _evaluate_outputs(params)
    first_html = params.paths.drift_report_html.read_bytes()

    metrics = json.loads(params.paths.test_metrics.read_text())
    assert set(metrics) == METRIC_NAMES
    test = pd.read_parquet(params.paths.test_set)
    proba = load_model(params.paths.model).predict_proba(test[params.dataset.feature_columns])[:, 1]
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(test[params.dataset.label_column], proba), abs=1e-6)
    assert metrics["roc_auc"] > 0.7

    plot_files = dvc_yaml_plot_files(params)
    assert len(plot_files) == 7
    for path in plot_files:
        table = pd.read_csv(path)
        assert len(table) > 0, path
    confusion = pd.read_csv(params.paths.plots_dir / "confusion.csv")
    assert len(confusion) == len(test)
    importance = pd.read_csv(params.paths.plots_dir / "feature_importance.csv")
    assert sorted(importance["feature"]) == sorted(params.dataset.feature_columns)
    slices = pd.read_csv(params.paths.plots_dir / "slices.csv")
    assert set(slices["column"]) == {*params.validation.slices.columns, *params.validation.slices.bins}
    assert slices["rows"].groupby(slices["column"]).sum().eq(len(test)).all()  # every row in one slice per column
    summary = json.loads(params.paths.slice_metrics.read_text())
    assert summary["slices_scored"] + summary["slices_too_small"] == len(slices)

    drift = json.loads(params.paths.drift_metrics.read_text())
    assert drift["columns_total"] == len(params.dataset.feature_columns)
    assert "columns" not in drift  # per-column detail is plot data, so `dvc exp show` stays narrow
    by_column = pd.read_csv(params.paths.plots_dir / "drift_by_column.csv")
    assert sorted(by_column["column"]) == sorted(params.dataset.feature_columns)
    assert int(by_column["drifted"].sum()) == drift["columns_drifted"]
    roc = pd.read_csv(params.paths.plots_dir / "roc.csv")
    assert (roc["chance"] == roc["fpr"]).all()
    assert b"<html" in first_html[:2000].lower()

    evaluate_stage.run(params)
    assert _evaluate_outputs(params) == first
