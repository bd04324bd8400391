"""`churn serve` (MLflow's scoring server, guarded) on the registered @champion answers like
`churn predict`.

A real scoring server in a subprocess (loopback only), fed raw Telco-schema JSON records
the way a client sends them: read with plain pd.read_csv, converted with to_json.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from churn.data.simulate import simulate, write_snapshot
from churn.deployment import batch
from churn.io import write_csv
from scripts import served
from tests.conftest import RAW_CSV, TENURE_ZERO_ID
from tests.deployment.test_batch import client_records, register_models

pytestmark = pytest.mark.e2e

CHURN = Path(sys.executable).parent / "churn"
PARAMS_FILE = Path(__file__).resolve().parents[2] / "params.yaml"
STARTUP_TIMEOUT = 90.0
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def status_of_declared_size(server: served.Server, size: int, content_type: str = "text/csv") -> int:
    """Announce a body of `size` bytes and send none: the guard must answer on the header
    alone. (Sending the body races the server's early close: a broken pipe.)"""
    parsed = urllib.parse.urlsplit(server.url)
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: {parsed.hostname}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((parsed.hostname, parsed.port), timeout=60) as sock:
        sock.sendall(head.encode())
        reply = sock.recv(4096)
    return int(reply.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    directory = tmp_path_factory.mktemp("serving")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{directory / 'mlflow.db'}")
        mp.chdir(directory)
        return register_models(directory)


@pytest.fixture(scope="module")
def server(registry, request):
    env = dict(os.environ, MLFLOW_TRACKING_URI=registry.uri)
    # The test registry's model name and experiment are those of test_params().
    params_file = registry.directory / "serve-params.yaml"
    params_file.write_text(json.dumps(registry.params.model_dump(mode="json", by_alias=True)))
    try:
        server = served.start([str(CHURN), "--params", str(params_file), "serve", "--alias", "champion"],
                              cwd=registry.directory, env=env, log=registry.directory / "serve.log",
                              timeout=STARTUP_TIMEOUT)
    except served.ServerFailed as exc:
        pytest.fail(str(exc))
    request.addfinalizer(server.stop)
    return server


@pytest.fixture
def store(registry, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    monkeypatch.chdir(tmp_path)
    return registry


def served_vs_batch(store, server, csv_path: Path, tmp_path: Path) -> tuple[pd.Series, pd.Series]:
    """Probabilities per customerID from the server and from `churn predict` on the same file."""
    records = json.loads(client_records(csv_path).to_json(orient="records"))
    status, body = server.post(records)
    assert status == 200, body
    served = pd.DataFrame(json.loads(body)["predictions"])
    assert list(served.columns) == ["customerID", "churn_probability", "churn_prediction"]
    assert served["customerID"].tolist() == [r["customerID"] for r in records]  # one answer per record, in order

    result = batch.predict(store.params, csv_path, tmp_path / "scored.parquet", log_root=tmp_path / "log", now=NOW)
    assert (result.model_version, result.rejected_rows) == ("1", 0)
    scored = pd.read_parquet(result.output)
    assert sorted(scored["customerID"]) == sorted(served["customerID"])
    served_p = served.set_index("customerID")["churn_probability"].sort_index()
    batch_p = scored.set_index("customerID")["churn_probability"].sort_index()
    pd.testing.assert_series_equal(served_p, batch_p, check_exact=False, rtol=0, atol=1e-9)
    predictions = served.set_index("customerID")["churn_prediction"].sort_index()
    assert predictions.tolist() == scored.set_index("customerID")["churn_prediction"].sort_index().tolist()
    return served_p, batch_p


def test_served_probabilities_equal_batch_scoring(store, server, tmp_path):
    """Includes a not-yet-billed customer (TotalCharges " "), so pandas reads the column as text."""
    frame = pd.concat([read_raw_csv_text(RAW_CSV), read_raw_csv_text_of(simulate(150, seed=21))], ignore_index=True)
    write_csv(tmp_path / "customers.csv", frame)
    assert client_records(tmp_path / "customers.csv")["TotalCharges"].dtype == object
    served, _ = served_vs_batch(store, server, tmp_path / "customers.csv", tmp_path)
    assert TENURE_ZERO_ID in served.index and len(served) == 163


def test_served_when_every_customer_is_billed(store, server, tmp_path):
    """No blank TotalCharges: pandas reads it as float and the JSON carries numbers, although the
    signature (inferred from an example with blanks) says string. The server parses the JSON by
    the signature's types, so this works; in-process pyfunc.predict on the same frame does not
    (see tests/deployment/test_batch.py)."""
    write_snapshot(simulate(150, seed=22), tmp_path / "customers.csv")
    assert client_records(tmp_path / "customers.csv")["TotalCharges"].dtype == "float64"
    served_vs_batch(store, server, tmp_path / "customers.csv", tmp_path)


def test_unknown_contract_is_a_client_error_with_the_reason(server):
    frame = read_raw_csv_text(RAW_CSV).drop(columns="Churn")
    frame.loc[2, "Contract"] = "Weekly"
    bad_id = frame.loc[2, "customerID"]
    status, body = server.post(json.loads(frame.to_json(orient="records")))
    assert 400 <= status < 500, (status, body)
    assert "Contract" in body and "Weekly" in body and bad_id in body and "unknown value" in body, body


def test_csv_requests_work_and_errors_echo_nothing(server):
    frame = read_raw_csv_text(RAW_CSV).drop(columns="Churn")
    status, body = server.post(frame.to_csv(index=False), "text/csv")
    assert status == 200, body
    assert [p["customerID"] for p in json.loads(body)["predictions"]] == frame["customerID"].tolist()
    frame.loc[0, "tenure"] = "1e308"
    status, body = server.post(frame.to_csv(index=False), "text/csv")
    assert status == 400 and "tenure" in body and "1e+308" in body, body
    assert "Traceback" not in body and frame.loc[4, "customerID"] not in body
    bomb = '{"dataframe_records": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert server.post(bomb)[0] == 400
    assert status_of_declared_size(server, 2 << 20) == 413


def test_non_numeric_tenure_is_a_client_error(server):
    frame = read_raw_csv_text(RAW_CSV).drop(columns="Churn")
    frame.loc[0, "tenure"] = "abc"
    status, body = server.post(json.loads(frame.to_json(orient="records")))
    assert 400 <= status < 500, (status, body)
    assert "tenure" in body, body


# -- helpers ---------------------------------------------------------------------------------

def read_raw_csv_text(text: str) -> pd.DataFrame:
    """Text as a raw CSV file holds it (every cell a string), parsed the way prep parses it."""
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])


def read_raw_csv_text_of(frame: pd.DataFrame) -> pd.DataFrame:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return read_raw_csv_text(buffer.getvalue())
