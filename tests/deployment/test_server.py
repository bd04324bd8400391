"""`churn serve`'s guard in front of MLflow's scoring app: CSV works, errors name the column
and value without echoing the request or a stack trace, size and nesting are bounded.

In process (starlette's TestClient), on one small model registered in a temporary store;
the real server in a subprocess is exercised in tests/e2e/test_serving.py.
"""

from __future__ import annotations

import io
import json
from importlib import metadata

import pandas as pd
import pytest

from churn.core.clean import clean_features, encode_labels
from churn.core.contract import validate_raw
from churn.core.model_file import model_to_bytes
from churn.data.simulate import simulate
from churn.deployment import server as served
from churn.errors import ChurnError
from churn.servable.pyfunc import log_churn_model
from churn.servable.runs import SERVING_PACKAGES
from churn.training.pipeline import build_pipeline
from tests.conftest import RAW_CSV
from tests.deployment.test_batch import test_params

MAX_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import mlflow
    from starlette.testclient import TestClient

    directory = tmp_path_factory.mktemp("serve")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{directory / 'mlflow.db'}")
        mp.chdir(directory)
        params = test_params(max_iter=5)
        dataset = params.dataset
        raw = simulate(400, seed=9)
        typed = validate_raw(raw, dataset)
        model = build_pipeline(dataset, params.train).fit(
            clean_features(typed, dataset)[dataset.feature_columns], encode_labels(typed, dataset)[dataset.label_column]
        )
        mlflow.set_tracking_uri(f"sqlite:///{directory / 'mlflow.db'}")
        mlflow.set_experiment(params.tracking.experiment)
        with mlflow.start_run():
            info = log_churn_model(
                model_bytes=model_to_bytes(model), dataset=dataset, threshold=params.train.decision_threshold,
                input_example=pd.read_csv(io.StringIO(RAW_CSV)).drop(columns="Churn").head(5),
                pip_requirements=[f"{p}=={metadata.version(p)}" for p in SERVING_PACKAGES],
            )
        version = mlflow.register_model(info.model_uri, params.registry.model_name)
        mlflow.MlflowClient().set_registered_model_alias(params.registry.model_name, "champion", version.version)
        app = served.build_app(params, max_request_bytes=MAX_BYTES)
        assert (app.model_uri, app.version) == ("models:/churn-classifier@champion", "1")
        # A model name the configured registry does not hold is refused, never guessed.
        other = params.model_copy(update={"registry": params.registry.model_copy(update={"model_name": "elsewhere"})})
        with pytest.raises(ChurnError, match="does not exist in the model registry"):
            served.build_app(other)
        yield TestClient(app.app, raise_server_exceptions=False)


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def _records() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(RAW_CSV), dtype=str, keep_default_na=False).drop(columns="Churn")


def post(client, body, content_type="application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/invocations", content=data, headers={"Content-Type": content_type})


def test_csv_requests_score_like_json_requests(client):
    frame = _records()
    as_csv = post(client, _csv(frame), "text/csv")
    as_json = post(client, {"dataframe_records": json.loads(frame.to_json(orient="records"))})
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.json() == as_json.json()
    predictions = as_csv.json()["predictions"]
    assert [p["customerID"] for p in predictions] == frame["customerID"].tolist()  # blank TotalCharges included


def test_contract_errors_name_column_and_value_without_echoing_the_request(client):
    frame = _records()
    frame.loc[2, "Contract"] = "Weekly"
    for response in (post(client, _csv(frame), "text/csv"),
                     post(client, {"dataframe_records": json.loads(frame.to_json(orient="records"))})):
        assert response.status_code == 400
        body = response.json()
        assert set(body) == {"error_code", "message"}  # no stack_trace
        assert "Contract" in body["message"] and "Weekly" in body["message"]
        assert frame.loc[2, "customerID"] in body["message"]
        assert "Traceback" not in response.text and "Failed to predict data" not in response.text
        assert frame.loc[5, "customerID"] not in response.text  # the rest of the request is not echoed


def test_malformed_bodies_get_a_short_400(client):
    truncated = post(client, '{"dataframe_records": [{"customerID": "secret-1", "tenu')
    assert truncated.status_code == 400 and "secret-1" not in truncated.text and "Traceback" not in truncated.text
    missing = post(client, {"dataframe_records": [{"customerID": "x", "tenure": 3}]})
    assert missing.status_code == 400 and "missing inputs" in missing.json()["message"]
    assert "stack_trace" not in missing.json()
    semicolons = post(client, _csv(_records()).replace(",", ";"), "text/csv")
    assert semicolons.status_code == 400 and "semicolon-separated" in semicolons.json()["message"]


def test_a_nested_array_bomb_is_a_400_not_a_500(client):
    bomb = '{"dataframe_records": ' + "[" * 30_000 + "]" * 30_000 + "}"
    response = post(client, bomb)
    assert response.status_code == 400, response.text
    assert "nested deeper than" in response.json()["message"]
    # Brackets inside strings do not count.
    assert served.json_depth(b'{"a": "[[[[[[[[[[[["}', 3) == 1


def test_requests_above_the_size_limit_get_413(client):
    frame = pd.concat([_records()] * 60, ignore_index=True)
    frame["customerID"] = [f"id-{i}" for i in range(len(frame))]
    body = _csv(frame)
    assert len(body) > MAX_BYTES
    response = post(client, body, "text/csv")
    assert response.status_code == 413
    assert str(MAX_BYTES) in response.json()["message"]
    assert post(client, _csv(frame.head(100)), "text/csv").status_code == 200


def test_server_errors_are_generic():
    body = json.dumps({"error_code": "INTERNAL_ERROR", "message": "boom", "stack_trace": "Traceback ..."}).encode()
    assert json.loads(served.clean_error(500, body)) == {
        "error_code": "INTERNAL_ERROR", "message": "internal error while scoring; the server log has the details",
    }
