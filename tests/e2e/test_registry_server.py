"""The registry against a real MLflow tracking server over REST, not only SQLite in-process.

Over REST MLflow words its errors differently ("RESOURCE_DOES_NOT_EXIST: ..."), and "no
champion yet" must still read as absence, not as a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from churn.config import load_params
from churn.errors import ChurnError
from churn.registry import versions
from tests.deployment.test_batch import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{home / 'server.db'}", "--default-artifact-root", str(home / "artifacts"),
        "--workers", "1",
    ]
    with open(home / "server.log", "w") as log:
        process = subprocess.Popen(command, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(url + "/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start: {(home / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def test_missing_model_and_missing_alias_read_as_absent_over_rest(server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    params = load_params(ROOT / "params.yaml")
    client = versions.client(params)
    name = params.registry.model_name
    assert versions.alias_version(client, name, versions.CHAMPION) is None  # no model yet
    client.create_registered_model(name)
    assert versions.alias_version(client, name, versions.CHAMPION) is None  # model, no alias


def test_other_registry_errors_are_not_read_as_absent(server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    params = load_params(ROOT / "params.yaml")
    client = versions.client(params)
    with pytest.raises(ChurnError, match="cannot read alias"):
        versions.alias_version(client, "bad/name?", versions.CHAMPION)
