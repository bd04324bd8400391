"""churn.deployment.batch against a real SQLite-backed MLflow registry in a temporary directory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churn.config import Params, parse_params
from churn.core.clean import clean_features, encode_labels
from churn.core.contract import REASONS_COLUMN, read_raw_csv, validate_raw
from churn.core.model_file import model_to_bytes
from churn.data.simulate import simulate, write_snapshot
from churn.deployment import batch
from churn.deployment.inference_log import read_log
from churn.errors import ChurnError
from churn.io import write_csv
from churn.servable.pyfunc import ChurnModel, log_churn_model
from churn.servable.runs import SERVING_PACKAGES
from churn.training.pipeline import build_pipeline
from tests.helpers import free_port, mlflow_workspace, repo_params

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
OUTPUT_COLUMNS = ["customerID", "churn_probability", "churn_prediction", "model_version", "scored_at"]


@dataclass
class Registry:
    """A registry with two versions of the model; @champion points at version 1."""

    directory: Path
    uri: str
    params: Params
    models: dict  # version string -> the fitted pipeline behind it


def test_params(**hyperparameters: Any) -> Params:
    def update(raw: dict[str, Any]) -> None:
        raw["train"]["hyperparameters"]["hist_gradient_boosting"].update({"max_iter": 30, **hyperparameters})

    return repo_params(update)


test_params.__test__ = False  # a helper, not a test


def client_records(csv_path: Path, n: int | None = None) -> pd.DataFrame:
    """Records as a client reads them: plain pd.read_csv types, no label."""
    frame = pd.read_csv(csv_path)
    frame = frame.drop(columns=[c for c in ("Churn",) if c in frame.columns])
    return frame if n is None else frame.head(n)


def register_models(directory: Path) -> Registry:
    """Fit two small pipelines, log both as servable pyfuncs, register them, alias v1 champion.

    The caller must have MLFLOW_TRACKING_URI pointing at `directory` and run from it.
    """
    import mlflow
    from mlflow import MlflowClient

    params = test_params()
    dataset = params.dataset
    raw_path = directory / "training.csv"
    write_snapshot(simulate(2000, seed=3), raw_path)
    typed = validate_raw(read_raw_csv(raw_path), dataset)
    features = clean_features(typed, dataset)[dataset.feature_columns]
    labels = encode_labels(typed, dataset)[dataset.label_column]
    # Like the training stage: the example is raw records, read the way a client reads them.
    example = client_records(raw_path, 5)

    name = params.registry.model_name
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(params.tracking.experiment)
    client = MlflowClient()
    models = {}
    for train in (params.train, test_params(max_iter=5, learning_rate=0.3).train):
        model = build_pipeline(dataset, train).fit(features, labels)
        with mlflow.start_run():
            info = log_churn_model(
                model_bytes=model_to_bytes(model),
                dataset=dataset,
                threshold=params.train.decision_threshold,
                input_example=example,
                pip_requirements=[f"{p}=={metadata.version(p)}" for p in SERVING_PACKAGES],
            )
        version = mlflow.register_model(info.model_uri, name)
        models[str(version.version)] = model
    assert sorted(models) == ["1", "2"]
    client.set_registered_model_alias(name, "champion", "1")
    return Registry(directory, uri, params, models)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    directory = tmp_path_factory.mktemp("registry")
    with mlflow_workspace(directory):
        return register_models(directory)


@pytest.fixture
def store(registry, monkeypatch, tmp_path):
    """The module's registry for this test; outputs and the log go to the test's tmp_path."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    monkeypatch.chdir(tmp_path)
    return registry


@pytest.fixture(scope="module")
def batch_csv(tmp_path_factory) -> Path:
    """Customers to score, in the raw CSV format, labels included."""
    path = tmp_path_factory.mktemp("input") / "customers.csv"
    write_snapshot(simulate(300, seed=5), path)
    return path


def expected_probabilities(registry: Registry, version: str, raw: pd.DataFrame) -> pd.Series:
    """The pipeline's own predict_proba on rows put through prep's contract and cleaning."""
    dataset = registry.params.dataset
    features = clean_features(validate_raw(raw, dataset), dataset)
    proba = registry.models[version].predict_proba(features[dataset.feature_columns])[:, 1]
    return pd.Series(proba, index=features[dataset.id_column].to_numpy())


def run(store: Registry, input_path, output="scored.parquet", **kwargs) -> batch.PredictResult:
    kwargs.setdefault("log_root", "log")
    kwargs.setdefault("now", NOW)
    return batch.predict(store.params, input_path, output, **kwargs)


def written(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


# --- scoring ----------------------------------------------------------------------------------

def test_predict_csv_matches_the_pipeline_and_logs_every_scored_row(store, batch_csv, tmp_path):
    result = run(store, batch_csv)

    raw = read_raw_csv(batch_csv)
    assert result == batch.PredictResult(
        output=Path("scored.parquet"), scored_rows=300, rejected_rows=0, rejected_path=None,
        log_file=result.log_file, model_uri="models:/churn-classifier@champion", model_version="1",
    )
    out = pd.read_parquet(tmp_path / "scored.parquet")
    assert list(out.columns) == [*OUTPUT_COLUMNS, "Churn"]  # the input carried the label
    assert out["customerID"].tolist() == raw["customerID"].tolist()
    expected = expected_probabilities(store, "1", raw)
    np.testing.assert_allclose(out["churn_probability"], expected[out["customerID"]], rtol=0, atol=1e-12)
    threshold = store.params.train.decision_threshold
    assert out["churn_prediction"].tolist() == (out["churn_probability"] >= threshold).astype(int).tolist()
    assert set(out["churn_prediction"]) == {0, 1}
    assert (out["model_version"] == "1").all()
    assert (out["scored_at"] == pd.Timestamp(NOW)).all() and str(out["scored_at"].dtype).endswith("UTC]")
    assert out["Churn"].tolist() == raw["Churn"].tolist()
    assert not (tmp_path / "scored.rejected.csv").exists()

    assert result.log_file.resolve().parent == tmp_path / "log" / "date=2026-11-26"
    log = read_log(tmp_path / "log", dataset=store.params.dataset)
    assert log["customerID"].tolist() == out["customerID"].tolist()
    np.testing.assert_array_equal(log["churn_probability"], out["churn_probability"])
    assert set(log["model_version"]) == {"1"} and set(log["model_uri"]) == {"models:/churn-classifier@champion"}
    assert log["Churn"].tolist() == raw["Churn"].tolist()


def test_predict_parquet_with_client_types(store, batch_csv, tmp_path):
    """A Parquet file with the types pandas guessed (ints, floats, text): the contract copes."""
    records = client_records(batch_csv)
    assert records["tenure"].dtype == np.int64 and records["SeniorCitizen"].dtype == np.int64
    records.to_parquet(tmp_path / "customers.parquet", index=False)

    result = run(store, tmp_path / "customers.parquet", "out/scored.parquet")

    assert (result.scored_rows, result.rejected_rows) == (300, 0)
    out = pd.read_parquet(tmp_path / "out" / "scored.parquet")
    assert list(out.columns) == OUTPUT_COLUMNS  # no label in, no label out
    expected = expected_probabilities(store, "1", read_raw_csv(batch_csv))
    np.testing.assert_allclose(out["churn_probability"], expected[out["customerID"]], rtol=0, atol=1e-12)
    assert len(read_log(tmp_path / "log")) == 300


def test_default_log_root_comes_from_params(store, batch_csv, tmp_path):
    raw = store.params.model_dump(mode="json", by_alias=True)
    raw["paths"]["inference_log"] = str(tmp_path / "from_params")
    result = batch.predict(parse_params(raw), batch_csv, tmp_path / "scored.parquet", now=NOW)
    assert result.log_file.is_relative_to(tmp_path / "from_params")
    assert len(read_log(tmp_path / "from_params")) == 300


def test_bad_rows_are_rejected_with_reasons_and_the_rest_scored(store, batch_csv, tmp_path):
    raw = read_raw_csv(batch_csv)
    bad = {3: ("tenure", "-5"), 10: ("Contract", "Weekly"), 42: ("tenure", "abc")}
    for row, (column, value) in bad.items():
        raw.loc[row, column] = value
    bad_ids = raw.loc[list(bad), "customerID"].tolist()
    write_csv(tmp_path / "mixed.csv", raw)

    result = run(store, tmp_path / "mixed.csv")

    assert (result.scored_rows, result.rejected_rows) == (297, 3)
    assert result.rejected_path == Path("scored.rejected.csv")
    rejected = pd.read_csv(tmp_path / "scored.rejected.csv", dtype=str, keep_default_na=False)
    assert rejected["customerID"].tolist() == bad_ids
    assert list(rejected.columns) == [*raw.columns, REASONS_COLUMN]
    assert rejected["tenure"].tolist()[0::2] == ["-5", "abc"]  # the raw values, as sent
    reasons = rejected.set_index("customerID")[REASONS_COLUMN]
    assert "tenure" in reasons[bad_ids[0]] and "minimum" in reasons[bad_ids[0]]
    assert "Contract" in reasons[bad_ids[1]] and "unknown value" in reasons[bad_ids[1]] and "Weekly" in reasons[bad_ids[1]]
    assert "tenure" in reasons[bad_ids[2]] and "not a number" in reasons[bad_ids[2]]

    out = pd.read_parquet(tmp_path / "scored.parquet")
    good = raw.drop(index=list(bad))
    assert out["customerID"].tolist() == good["customerID"].tolist()
    expected = expected_probabilities(store, "1", good)
    np.testing.assert_allclose(out["churn_probability"], expected[out["customerID"]], rtol=0, atol=1e-12)

    log = read_log(tmp_path / "log")
    assert sorted(log["customerID"]) == sorted(good["customerID"])
    assert not set(bad_ids) & set(log["customerID"])

    # Rerun on clean input to the same output: the stale rejected file goes.
    assert run(store, batch_csv).rejected_path is None
    assert not (tmp_path / "scored.rejected.csv").exists()
    assert len(read_log(tmp_path / "log")) == 297 + 300  # both runs logged, nothing rewritten


def test_all_rows_rejected_writes_an_empty_output_and_logs_nothing(store, batch_csv, tmp_path):
    raw = read_raw_csv(batch_csv).head(4)
    raw["Contract"] = "Weekly"
    write_csv(tmp_path / "bad.csv", raw)
    result = run(store, tmp_path / "bad.csv")
    assert (result.scored_rows, result.rejected_rows, result.log_file) == (0, 4, None)
    out = pd.read_parquet(tmp_path / "scored.parquet")
    assert out.empty and list(out.columns)[:5] == OUTPUT_COLUMNS
    assert len(pd.read_csv(tmp_path / "scored.rejected.csv")) == 4
    assert not (tmp_path / "log").exists()


# --- table-level failures: nothing written ----------------------------------------------------

def test_missing_column_raises_and_writes_nothing(store, batch_csv, tmp_path):
    read_raw_csv(batch_csv).drop(columns="Contract").to_csv(tmp_path / "in.csv", index=False)
    before = written(tmp_path)
    with pytest.raises(ChurnError, match=r"Contract: column is missing"):
        run(store, tmp_path / "in.csv")
    assert written(tmp_path) == before


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", "", "empty"),
        ("header.csv", "customerID,tenure\n", "column is missing"),
        ("header_only.csv", None, "no data rows"),
        ("customers.json", "[]", r"\.csv or \.parquet"),
        ("broken.parquet", "not parquet", "not a readable Parquet"),
        ("missing.csv", False, "not found"),
    ],
)
def test_unusable_input_raises_and_writes_nothing(store, batch_csv, tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        path.write_text(batch_csv.read_text().splitlines()[0] + "\n")
    elif content is not False:
        path.write_text(content)
    before = written(tmp_path)
    with pytest.raises(ChurnError, match=message):
        run(store, path)
    assert written(tmp_path) == before


def test_output_must_be_parquet_and_not_the_input(store, batch_csv, tmp_path):
    with pytest.raises(ChurnError, match=r"\.parquet"):
        run(store, batch_csv, "scored.csv")
    records = client_records(batch_csv)
    records.to_parquet(tmp_path / "in.parquet")
    with pytest.raises(ChurnError, match="overwrite"):
        run(store, tmp_path / "in.parquet", tmp_path / "in.parquet")
    assert pd.read_parquet(tmp_path / "in.parquet").shape == records.shape


# --- choosing the model -----------------------------------------------------------------------

def test_resolve_model_uri(store):
    params = store.params
    assert batch.resolve_model_uri(params, None, None) == "models:/churn-classifier@champion"
    assert batch.resolve_model_uri(params, "challenger", None) == "models:/churn-classifier@challenger"
    assert batch.resolve_model_uri(params, None, "7") == "models:/churn-classifier/7"
    assert batch.resolve_model_uri(params, None, 7) == "models:/churn-classifier/7"
    for alias, version in (("champion", "1"), (None, "x"), (None, "0"), ("no/slash", None)):
        with pytest.raises(ChurnError):
            batch.resolve_model_uri(params, alias, version)


def test_load_scorer_returns_the_model_and_its_version(store):
    scorer, version = batch.load_scorer("models:/churn-classifier@champion")
    assert isinstance(scorer, ChurnModel) and version == "1"
    assert scorer.threshold == store.params.train.decision_threshold
    assert batch.load_scorer("models:/churn-classifier/2")[1] == "2"


def test_explicit_version_scores_with_that_version(store, batch_csv, tmp_path):
    raw = read_raw_csv(batch_csv)
    result = run(store, batch_csv, "v2.parquet", version="2")
    assert (result.model_uri, result.model_version) == ("models:/churn-classifier/2", "2")
    out = pd.read_parquet(tmp_path / "v2.parquet")
    assert (out["model_version"] == "2").all()
    v1, v2 = expected_probabilities(store, "1", raw), expected_probabilities(store, "2", raw)
    assert np.abs(v1 - v2).max() > 1e-3  # the versions really differ
    np.testing.assert_allclose(out["churn_probability"], v2[out["customerID"]], rtol=0, atol=1e-12)
    assert set(read_log(tmp_path / "log")["model_version"]) == {"2"}


@pytest.mark.parametrize("alias, version, message", [("nope", None, "churn promote"), (None, "99", "churn promote")])
def test_unknown_alias_or_version_raises_with_the_fix(store, batch_csv, tmp_path, alias, version, message):
    with pytest.raises(ChurnError, match=message) as info:
        run(store, batch_csv, alias=alias, version=version)
    assert "models:/churn-classifier" in str(info.value)
    assert written(tmp_path) == []


def test_unregistered_model_name_raises_with_the_fix(store, batch_csv, tmp_path):
    raw = store.params.model_dump(mode="json", by_alias=True)
    raw["registry"]["model_name"] = "no-such-model"
    with pytest.raises(ChurnError, match=r"models:/no-such-model@champion.*churn promote"):
        batch.predict(parse_params(raw), batch_csv, "scored.parquet", log_root="log", now=NOW)
    assert written(tmp_path) == []


def test_unreachable_tracking_server_raises_with_the_fix(store, batch_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ChurnError, match="MLFLOW_TRACKING_URI"):
        run(store, batch_csv)
    assert written(tmp_path) == []


def test_as_of_stamps_the_batch_and_a_future_time_is_refused(store, batch_csv, tmp_path):
    from datetime import timedelta

    past = datetime(2025, 3, 4, 23, 59, tzinfo=UTC)
    result = run(store, batch_csv, now=past)
    assert result.log_file.parent.name == "date=2025-03-04"
    assert set(pd.read_parquet("scored.parquet")["scored_at"]) == {pd.Timestamp(past)}
    Path("scored.parquet").unlink()
    before = written(tmp_path)
    with pytest.raises(ChurnError, match="is in the future"):
        run(store, batch_csv, output="later.parquet", now=datetime.now(UTC) + timedelta(hours=1))
    assert written(tmp_path) == before


def test_naive_now_is_refused(store, batch_csv, tmp_path):
    with pytest.raises(ChurnError, match="timezone-aware"):
        run(store, batch_csv, now=datetime(2026, 11, 26, 9, 30))
    assert written(tmp_path) == []


# --- the logged signature ---------------------------------------------------------------------

def test_in_process_pyfunc_accepts_what_the_server_accepts(store, batch_csv):
    """`mlflow.pyfunc.load_model(uri).predict(df)` on records read with plain pd.read_csv.

    The server casts JSON to the signature's types before enforcing it; in-process predict
    only enforces, so the signature must not pin a raw column to one pandas guess.
    """
    import mlflow.pyfunc

    records = client_records(batch_csv, 20)
    assert records["TotalCharges"].dtype == np.float64  # no blank cell in this batch
    model = mlflow.pyfunc.load_model("models:/churn-classifier@champion")
    out = model.predict(records)
    expected = expected_probabilities(store, "1", read_raw_csv(batch_csv).head(20))
    np.testing.assert_allclose(out["churn_probability"], expected[out["customerID"]], rtol=0, atol=1e-12)


def test_predict_reports_rows_scored_of_total_and_rate(store, batch_csv, monkeypatch, capsys):
    import re

    from churn import progress

    monkeypatch.setenv(progress.MODE_ENV, "plain")  # as in a CI log
    monkeypatch.setattr(progress, "_mode", None)
    run(store, batch_csv)
    err = capsys.readouterr().err
    assert re.search(r"^churn: reading .*customers\.csv: 300 rows in \d+\.\d s$", err, re.M), err
    assert re.search(r"^churn: scoring: 300 of 300 rows in \d+\.\d s \([\d,]+ rows/s\)$", err, re.M), err

# --- scores and the inference log stay consistent (issue 9) -------------------------------------

def test_a_failed_log_append_leaves_no_scores_and_says_so(store, batch_csv, tmp_path):
    (tmp_path / "log").write_text("a file where the log directory should be")  # append fails for real
    with pytest.raises(ChurnError) as info:
        run(store, batch_csv)
    message = str(info.value)
    assert "inference log" in message and "not written to scored.parquet" in message
    assert "nothing was logged" in message
    assert not (tmp_path / "scored.parquet").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_failed_log_append_keeps_earlier_scores_as_they_were(store, batch_csv, tmp_path, monkeypatch):
    run(store, batch_csv)
    before = (tmp_path / "scored.parquet").read_bytes()
    logged_before = len(read_log(tmp_path / "log"))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    # The streamed batch reaches the log through churn.storage's put_file (no `append` call).
    from churn.storage import Folder

    monkeypatch.setattr(Folder, "put_file", full_disk)
    with pytest.raises(ChurnError, match="No space left on device"):
        run(store, batch_csv, now=NOW + pd.Timedelta(days=1))
    assert (tmp_path / "scored.parquet").read_bytes() == before
    assert len(read_log(tmp_path / "log")) == logged_before


# --- the inference log through churn.storage: log first, then scores ----------------------------

def test_a_failed_log_write_leaves_no_scores_and_no_log_file(store, batch_csv, tmp_path, monkeypatch):
    from churn.storage import Folder

    def refuse(self, name, source):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Folder, "put_file", refuse)
    with pytest.raises(ChurnError, match=r"inference log log failed .*not written to scored.parquet either"):
        run(store, batch_csv, batch_rows=100)
    assert not (tmp_path / "scored.parquet").exists()
    assert written(tmp_path) == []  # no score file, no log file, no staging file left behind


def test_streamed_batches_log_through_storage_like_one_batch(store, batch_csv, tmp_path):
    run(store, batch_csv, "whole.parquet", log_root="whole-log")
    streamed = run(store, batch_csv, "streamed.parquet", log_root="streamed-log", batch_rows=70)
    assert isinstance(streamed.log_file, Path) and streamed.log_file.name.startswith("part-")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "streamed.parquet"))
    dataset = store.params.dataset
    pd.testing.assert_frame_equal(
        read_log(tmp_path / "whole-log", dataset=dataset), read_log(tmp_path / "streamed-log", dataset=dataset)
    )
    assert [p.name.startswith(".") for p in written(tmp_path / "streamed-log")] == [False]


def test_worker_processes_load_the_pipeline_and_score_like_threads(store, batch_csv, tmp_path, monkeypatch):
    # A large Parquet input is scored by worker processes, which load the pipeline from its
    # archive themselves: this process reads the model's contract and threshold only.
    from churn.core import model_file
    from churn.deployment import stream

    parquet = tmp_path / "customers.parquet"
    read_raw_csv(batch_csv).to_parquet(parquet, index=False)
    run(store, parquet, "threads.parquet", log_root="threads-log")
    loaded_here = []
    monkeypatch.setattr(model_file, "load_model", lambda *args: loaded_here.append(args) or pytest.fail("loaded here"))
    monkeypatch.setattr(stream, "PROCESS_MIN_ROWS", 1)
    monkeypatch.setenv("CHURN_PRELOAD", "1")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    result = run(store, parquet, "processes.parquet", log_root="processes-log", batch_rows=70)
    assert result.scored_rows == 300 and not loaded_here
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "threads.parquet"), pd.read_parquet(tmp_path / "processes.parquet"))
    dataset = store.params.dataset
    pd.testing.assert_frame_equal(
        read_log(tmp_path / "threads-log", dataset=dataset), read_log(tmp_path / "processes-log", dataset=dataset)
    )


def test_a_deferred_pipeline_scores_as_the_loaded_one(store, batch_csv):
    from churn.servable import scoring

    loaded, _ = batch.load_scorer("models:/churn-classifier/2")
    deferred, version = batch.load_scorer("models:/churn-classifier/2", defer_pipeline=True)
    assert version == "2" and isinstance(deferred.model, str) and Path(deferred.model).is_file()
    assert scoring.fitted(deferred.model) is scoring.fitted(deferred.model)  # loaded once
    raw = read_raw_csv(batch_csv)
    pd.testing.assert_frame_equal(deferred.score(raw).scored, loaded.score(raw).scored)


def test_predict_logs_to_an_object_store_as_one_object(store, batch_csv, tmp_path, s3):
    import uuid

    root = f"s3://{s3.bucket}/predict-{uuid.uuid4().hex[:8]}"
    result = run(store, batch_csv, log_root=root, batch_rows=100)
    assert isinstance(result.log_file, str) and result.log_file.startswith(f"{root}/date=2026-11-26/part-")
    keys = s3.keys(root.split("/", 3)[3] + "/")
    assert len(keys) == 1 and keys[0].endswith(".parquet")
    log = read_log(root, dataset=store.params.dataset)
    out = pd.read_parquet(tmp_path / "scored.parquet")
    assert log["customerID"].tolist() == out["customerID"].tolist()
    np.testing.assert_array_equal(log["churn_probability"], out["churn_probability"])
    assert not (tmp_path / "log").exists() and [p.name for p in written(tmp_path)] == ["scored.parquet"]
