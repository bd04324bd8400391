"""churn.core.tracking against a real SQLite-backed MLflow store in a temporary directory."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn.core import tracking
from churn.core.clean import clean_features, encode_labels
from churn.core.contract import read_raw_csv, validate_raw
from churn.core.model_file import model_to_bytes
from churn.core.splits import raw_example
from churn.data.simulate import simulate, write_snapshot
from churn.errors import ChurnError
from churn.servable import runs
from churn.servable.scoring import PREDICTION, PROBABILITY
from churn.training.pipeline import build_pipeline
from tests.helpers import free_port, mlflow_workspace, repo_params, use_store

TRAIN_MD5 = hashlib.md5(b"train set bytes").hexdigest()
VALIDATION_MD5 = hashlib.md5(b"validation set bytes").hexdigest()
RAW_MD5 = hashlib.md5(b"raw snapshot bytes").hexdigest()
METRICS = {"train_roc_auc": 0.91, "validation_roc_auc": 0.83, "validation_log_loss": 0.44}


def small_params(**hyperparameters):
    """The project's params with a fast model; extra keys override the hist-GB hyperparameters."""
    return repo_params(lambda raw: raw["train"]["hyperparameters"]["hist_gradient_boosting"].update(hyperparameters))


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One training run logged to a temporary store; everything the tests compare against."""
    directory = tmp_path_factory.mktemp("tracking")
    params = small_params()
    dataset = params.dataset
    raw = directory / "raw.csv"
    write_snapshot(simulate(500, seed=3), raw)
    typed = validate_raw(read_raw_csv(raw), dataset)
    frame = clean_features(typed, dataset).merge(encode_labels(typed, dataset), on=dataset.id_column)
    train, validation = frame.iloc[:380].reset_index(drop=True), frame.iloc[380:].reset_index(drop=True)
    features = dataset.feature_columns
    model = build_pipeline(dataset, params.train).fit(train[features], train[dataset.label_column])
    model_bytes = model_to_bytes(model)
    model_md5 = hashlib.md5(model_bytes).hexdigest()
    # Raw records as a client sends them (the servable model validates and cleans them).
    input_example = raw_example(raw, dataset)
    # In the representation the logged signature accepts, which the input example shows.
    records = pd.read_csv(raw)[list(input_example.columns)]
    records = records.astype({c: (str if pd.api.types.is_object_dtype(t) else t) for c, t in input_example.dtypes.items()})
    with mlflow_workspace(directory) as uri:
        run_id = runs.log_training_run(
            params,
            model_bytes=model_bytes,
            input_example=input_example,
            metrics=METRICS,
            datasets=[
                runs.LoggedDataset("train", train, "data/processed/train.parquet", TRAIN_MD5, "training"),
                runs.LoggedDataset(
                    "validation", validation, "data/processed/validation.parquet", VALIDATION_MD5, "validation"
                ),
            ],
            model_md5=model_md5,
            raw_md5=RAW_MD5,
        )
    return dict(
        directory=directory, uri=uri, params=params, run_id=run_id, model=model, model_bytes=model_bytes,
        model_md5=model_md5, train=train, validation=validation, features=features, records=records,
        input_example=input_example, all_features=clean_features(typed, dataset),
    )


@pytest.fixture
def store(logged, monkeypatch):
    """The store of `logged`, active for this test."""
    use_store(monkeypatch, logged["directory"])
    import mlflow

    mlflow.set_tracking_uri(logged["uri"])
    return mlflow


def test_run_exists_in_the_configured_experiment(logged, store):
    run = store.get_run(logged["run_id"])
    assert run.info.status == "FINISHED"
    experiment = store.get_experiment(run.info.experiment_id)
    assert experiment.name == logged["params"].tracking.experiment
    # Nothing leaked into the real project's store.
    assert (logged["directory"] / "mlflow.db").is_file()


def test_run_params(logged, store):
    params = logged["params"]
    logged_params = store.get_run(logged["run_id"]).data.params
    assert logged_params["family"] == params.train.family
    assert logged_params["dataset"] == params.dataset.name
    hyper = params.train.hyperparameters[params.train.family]
    assert hyper["max_iter"] == 15  # the shrunk value, not the project's
    for key, value in hyper.items():
        assert logged_params[f"model.{key}"] == str(value)
    assert logged_params["rows.train"] == str(len(logged["train"]))
    assert logged_params["rows.validation"] == str(len(logged["validation"]))
    # Hyperparameters of families that were not trained are not logged.
    assert not any(key.startswith("model.n_estimators") for key in logged_params)


def test_run_metrics(logged, store):
    assert store.get_run(logged["run_id"]).data.metrics == pytest.approx(METRICS)


def test_run_tags_tie_it_to_content(logged, store):
    tags = store.get_run(logged["run_id"]).data.tags
    assert tags["dvc.model_md5"] == logged["model_md5"]
    assert tags["dvc.raw_md5"] == RAW_MD5
    assert tags["dvc.train_md5"] == TRAIN_MD5
    assert tags["dvc.validation_md5"] == VALIDATION_MD5
    assert tags["params_hash"] == tracking.params_hash(logged["params"])
    assert len(tags["params_hash"]) == 32
    assert tags["git_commit"]
    assert tags[tracking.TAG_MODEL_URI].startswith("models:/")


def test_dataset_inputs_carry_the_dvc_md5_as_digest(logged, store):
    inputs = store.get_run(logged["run_id"]).inputs.dataset_inputs
    by_name = {item.dataset.name: item for item in inputs}
    assert set(by_name) == {"train", "validation"}
    assert by_name["train"].dataset.digest == TRAIN_MD5
    assert by_name["validation"].dataset.digest == VALIDATION_MD5
    contexts = {name: {t.key: t.value for t in item.tags}.get("mlflow.data.context") for name, item in by_name.items()}
    assert contexts == {"train": "training", "validation": "validation"}


def _model_uri(store, run_id: str) -> str:
    tags = store.get_run(run_id).data.tags
    return tags.get(tracking.TAG_MODEL_URI) or f"runs:/{run_id}/{runs.MODEL_NAME_IN_RUN}"


def test_logged_model_loads_and_predicts_the_same(logged, store):
    """The servable model scores raw records exactly as the trained pipeline scores their features."""
    dataset = logged["params"].dataset
    records = logged["records"]
    served = store.pyfunc.load_model(_model_uri(store, logged["run_id"])).predict(records)
    assert len(served) == len(records)
    assert list(served[dataset.id_column]) == list(records[dataset.id_column])
    # The same rows as prep reads and cleans them.
    assert list(logged["all_features"][dataset.id_column]) == list(records[dataset.id_column])
    expected = logged["model"].predict_proba(logged["all_features"][logged["features"]])[:, 1]
    np.testing.assert_allclose(served[PROBABILITY].to_numpy(), expected, rtol=0, atol=1e-12)
    threshold = logged["params"].train.decision_threshold
    np.testing.assert_array_equal(served[PREDICTION].to_numpy(), (expected >= threshold).astype(int))


def test_servable_model_accepts_contract_valid_raw_records(logged, store):
    """Regression: a signature inferred by pandas refused text records and blank TotalCharges."""
    dataset = logged["params"].dataset
    # Raw records exactly as prep reads them, one of them a not-yet-billed customer.
    raw = read_raw_csv(logged["directory"] / "raw.csv").head(5).copy()
    raw.loc[0, "tenure"], raw.loc[0, "TotalCharges"] = "0", " "
    expected_features = clean_features(validate_raw(raw, dataset), dataset)[logged["features"]]
    expected = logged["model"].predict_proba(expected_features)[:, 1]
    records = raw.drop(columns=[dataset.label_column])
    served = store.pyfunc.load_model(_model_uri(store, logged["run_id"])).predict(records)
    np.testing.assert_allclose(served[PROBABILITY].to_numpy(), expected, rtol=0, atol=1e-12)


def test_logged_model_holds_the_exact_model_file(logged, store, tmp_path):
    from mlflow.artifacts import download_artifacts

    local = download_artifacts(artifact_uri=_model_uri(store, logged["run_id"]), dst_path=str(tmp_path / "dl"))
    archives = list(Path(local).rglob("*.skops"))
    assert len(archives) == 1, archives
    assert archives[0].read_bytes() == logged["model_bytes"]
    assert hashlib.md5(archives[0].read_bytes()).hexdigest() == logged["model_md5"]


def test_logged_model_has_signature_and_input_example(logged, store):
    from mlflow.models import Model, get_model_info

    uri = _model_uri(store, logged["run_id"])
    info = get_model_info(uri)
    assert info.signature is not None
    required = [column.name for column in info.signature.inputs.inputs if column.required]
    assert required == list(logged["input_example"].columns)
    assert PROBABILITY in info.signature.outputs.input_names()
    assert info.saved_input_example_info is not None
    example = Model.load(uri).load_input_example()
    assert isinstance(example, pd.DataFrame)
    pd.testing.assert_frame_equal(example.reset_index(drop=True), logged["input_example"].reset_index(drop=True),
                                  check_dtype=False)


def test_find_run_for_model(logged, store):
    run = tracking.find_run_for_model(logged["params"], logged["model_md5"])
    assert run is not None and run.info.run_id == logged["run_id"]
    assert tracking.find_run_for_model(logged["params"], "0" * 32) is None


def test_tracking_uri_env_overrides_params(monkeypatch):
    params = small_params()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri(params) == params.tracking.uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////somewhere/else.db")
    assert tracking.tracking_uri(params) == "sqlite:////somewhere/else.db"


def test_unreachable_server_is_a_churn_error_naming_the_uri(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(ChurnError) as raised:
        tracking.connect(small_params())
    assert uri in str(raised.value)
    assert "unreachable" in str(raised.value)


def test_unreachable_server_from_params_is_a_churn_error(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"http://127.0.0.1:{free_port()}/"
    params = small_params()
    params = params.model_copy(update={"tracking": params.tracking.model_copy(update={"uri": uri})})
    with pytest.raises(ChurnError, match=r"127\.0\.0\.1"):
        tracking.connect(params)


def test_params_hash_follows_the_model_definition_only():
    base = small_params()
    assert tracking.params_hash(small_params()) == tracking.params_hash(base)
    # A train hyperparameter changes what is trained.
    assert tracking.params_hash(small_params(learning_rate=0.2)) != tracking.params_hash(base)
    assert tracking.params_hash(small_params(max_iter=16)) != tracking.params_hash(base)
    # Where it is logged, and where files live, do not.
    renamed = base.model_copy(update={"tracking": base.tracking.model_copy(update={"experiment": "elsewhere"})})
    assert tracking.params_hash(renamed) == tracking.params_hash(base)
    moved = base.model_copy(update={"tracking": base.tracking.model_copy(update={"uri": "sqlite:///other.db"})})
    assert tracking.params_hash(moved) == tracking.params_hash(base)


def test_logged_model_runs_only_the_code_its_serving_key_covers(logged, store):
    """Load and call the logged pyfunc in a fresh process; every project module it loads must
    be in SERVABLE_FILES, or a change to it would reuse the old registry version."""
    import json
    import subprocess
    import sys

    from churn.servable.identity import SERVABLE_FILES

    script = (
        "import json, sys, pandas as pd, mlflow.pyfunc\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "model.predict(pd.read_json(sys.argv[2], orient='records', dtype=False))\n"
        "files = [m.__file__ for n, m in list(sys.modules.items())"
        " if n.split('.')[0] == 'churn' and getattr(m, '__file__', None)]\n"
        "print(json.dumps(files))\n"
    )
    records = logged["records"].head(3).to_json(orient="records")
    result = subprocess.run(
        [sys.executable, "-c", script, _model_uri(store, logged["run_id"]), records],
        capture_output=True, text=True, timeout=300, cwd=logged["directory"],
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    relative = {path.replace("\\", "/").rsplit("/churn/", 1)[1] for path in loaded}
    assert "servable/pyfunc.py" in relative and "core/contract.py" in relative
    assert relative <= set(SERVABLE_FILES), sorted(relative - set(SERVABLE_FILES))

# ------------------------------------------- orphaned runs and bounded retries (issue 9)


def _orphan(client, experiment_id: str, tags: dict[str, str], pid: str) -> str:
    run = client.create_run(experiment_id, tags={**tags, tracking.TAG_PID: pid})
    return run.info.run_id


def test_runs_left_running_by_a_killed_train_are_marked_failed(logged, store):
    import subprocess

    from mlflow import MlflowClient

    client = MlflowClient()
    done = client.get_run(logged["run_id"])
    assert done.data.tags[tracking.TAG_HOST] == socket.gethostname() and done.data.tags[tracking.TAG_PID]
    # What the next train of the same params and data tags its run with.
    keys = [tracking.TAG_PARAMS_HASH, tracking.TAG_RAW_MD5, "dvc.train_md5", "dvc.validation_md5", tracking.TAG_HOST]
    tags = {key: done.data.tags[key] for key in keys}
    tags[tracking.TAG_MODEL_MD5] = logged["model_md5"]
    experiment = done.info.experiment_id

    finished = subprocess.Popen(["true"])
    finished.wait()  # a process that is gone, like a train killed with kill -9
    alive = subprocess.Popen(["sleep", "60"])
    try:
        killed = _orphan(client, experiment, tags, str(finished.pid))
        running = _orphan(client, experiment, tags, str(alive.pid))  # a concurrent train
        other_data = _orphan(client, experiment, {**tags, "dvc.train_md5": "0" * 32}, str(finished.pid))
        other_host = _orphan(client, experiment, {**tags, tracking.TAG_HOST: "elsewhere"}, str(finished.pid))

        assert runs.fail_orphaned_runs(logged["params"], tags) == [killed]
    finally:
        alive.kill()
    status = {run_id: client.get_run(run_id).info.status for run_id in (killed, running, other_data, other_host)}
    assert status == {killed: "FAILED", running: "RUNNING", other_data: "RUNNING", other_host: "RUNNING"}
    assert "ended without finishing" in client.get_run(killed).data.tags[tracking.TAG_ORPHANED]
    assert client.get_run(logged["run_id"]).info.status == "FINISHED"
    assert runs.fail_orphaned_runs(logged["params"], tags) == []  # done once


def test_mlflow_http_retries_are_bounded_unless_the_user_set_them(monkeypatch, tmp_path):
    """A tracking server that answers /health but fails every API call (it is dying): the
    command gives up after 3 attempts of one call, with the usual message."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits: list[str] = []

    class Dying(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/health"):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")
                return
            hits.append(self.path)
            self.send_response(503)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args):
            pass

    for variable in tracking.HTTP_LIMITS:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")  # the user's own value wins
    server = ThreadingHTTPServer(("127.0.0.1", 0), Dying)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.chdir(tmp_path)
        with pytest.raises(ChurnError, match="cannot use the MLflow tracking store") as info:
            tracking.connect(small_params())
        assert "503" in str(info.value)
    finally:
        server.shutdown()
    import os

    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "9"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "0"
    assert len(hits) == 3, hits  # one API call, tried 1 + 2 times: not MLflow's default 1 + 7
