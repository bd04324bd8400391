"""Latency of `mlflow models serve` on the @champion: one record and 1,000 records."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scripts.project_copy import BIN
from scripts.served import Server, start

from benchmarks.project import Project


@dataclass(frozen=True)
class Latency:
    records: int
    requests: int
    p50_ms: float
    p99_ms: float


def start_server(project: Project, model_name: str) -> Server:
    """`mlflow models serve` on the project's @champion, answering /ping."""
    command = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{model_name}@champion", "--env-manager", "local"]
    return start(command, cwd=project.path, env=project.env, log=project.path / "serve.log")


def latencies(server: Server, records: pd.DataFrame, repeats: dict[int, int]) -> list[Latency]:
    """Warm the server up, then time `repeats[n]` requests of n records each."""
    results = []
    for n, count in repeats.items():
        body = json.dumps({"dataframe_records": json.loads(records.head(n).to_json(orient="records"))}).encode()
        for _ in range(3):  # warm-up: first requests pay lazy imports
            _post(server, body)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            _post(server, body)
            times.append((time.perf_counter() - started) * 1000)
        results.append(Latency(n, count, float(np.percentile(times, 50)), float(np.percentile(times, 99))))
    return results


def _post(server: Server, body: bytes) -> None:
    status, answer = server.post(body)
    if status != 200:
        raise RuntimeError(f"the server answered {status}: {answer[:500]}")
