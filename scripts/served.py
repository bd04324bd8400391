"""A scoring server in a subprocess (loopback only) and a small client for it.

The REST end-to-end tests (tests/e2e/test_serving.py) and the REST latency benchmark
(benchmarks/rest.py) both start `churn serve` this way: in its own process group (it may
fork workers, and stopping it must reach them), its output in a log file, ready when
`/ping` answers 200.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT = 180.0


class ServerFailed(RuntimeError):
    """The server exited or did not answer in time; the message ends with its log's tail."""


def free_port() -> int:
    """A port that nothing listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path):
        self.url, self.process, self.log = url, process, log

    def post(self, records: list[dict[str, Any]] | str | bytes, content_type: str = "application/json",
             timeout: float = 120) -> tuple[int, str]:
        """POST to /invocations: records as `dataframe_records` JSON, or a body as it is.
        The status and the body, errors included."""
        if isinstance(records, list):
            records = json.dumps({"dataframe_records": records})
        body = records.encode() if isinstance(records, str) else records
        request = urllib.request.Request(
            f"{self.url}/invocations", data=body, headers={"Content-Type": content_type}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""

    def stop(self) -> None:
        """Terminate the server's whole process group, then make sure."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)
        except ProcessLookupError:
            pass


def start(command: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path,
          timeout: float = STARTUP_TIMEOUT) -> Server:
    """Run `command --host 127.0.0.1 --port <free port>` and wait until it answers /ping."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)], cwd=cwd, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServerFailed(f"{command[0]} exited with {process.returncode}:\n{server.tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/ping", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise ServerFailed(f"{command[0]} not up after {timeout:.0f} s:\n{server.tail()}")
        time.sleep(0.2)


@contextmanager
def serving(command: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path,
            timeout: float = STARTUP_TIMEOUT) -> Iterator[Server]:
    """`start`, stopped when the block ends."""
    server = start(command, cwd=cwd, env=env, log=log, timeout=timeout)
    try:
        yield server
    finally:
        server.stop()
