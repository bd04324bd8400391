"""Latency of `mlflow models serve` on the @champion: one record and 1,000 records."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.project import BIN, Project

STARTUP_TIMEOUT = 180.0


@dataclass(frozen=True)
class Latency:
    records: int
    requests: int
    p50_ms: float
    p99_ms: float


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the server answered {response.status}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass


def latencies(project: Project, records: pd.DataFrame, model_name: str, repeats: dict[int, int]) -> list[Latency]:
    """Serve the champion, warm it up, then time `repeats[n]` requests of n records each."""
    port = _free_port()
    log = project.path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{model_name}@champion",
             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
            cwd=project.path, env=project.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow models serve not up after {STARTUP_TIMEOUT:.0f} s")
            time.sleep(0.5)
        results = []
        for n, count in repeats.items():
            body = json.dumps({"dataframe_records": json.loads(records.head(n).to_json(orient="records"))}).encode()
            for _ in range(3):  # warm-up: first requests pay lazy imports
                _post(f"{url}/invocations", body)
            times = []
            for _ in range(count):
                started = time.perf_counter()
                _post(f"{url}/invocations", body)
                times.append((time.perf_counter() - started) * 1000)
            results.append(Latency(n, count, float(np.percentile(times, 50)), float(np.percentile(times, 99))))
        return results
    finally:
        _stop(process)
