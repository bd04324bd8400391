"""What several test modules need: a free port, the repository's params with a fast model,
and a temporary MLflow workspace (SQLite store + working directory)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from churn.config import Params, load_params, parse_params

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS_FILE = REPO_ROOT / "params.yaml"


def free_port() -> int:
    """A port that nothing listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def repo_params(update: Any = None, *, root: Path | None = None, experiment: str = "churn-tests") -> Params:
    """The repository's params with a fast model, optionally every path under `root`;
    `update(raw)` may change the raw mapping before it is validated."""
    raw = load_params(PARAMS_FILE).model_dump(mode="json", by_alias=True)
    raw["train"]["hyperparameters"]["hist_gradient_boosting"].update(max_iter=15, max_leaf_nodes=7)
    raw["tracking"]["experiment"] = experiment
    if root is not None:
        raw["paths"] = {name: str(root / path) for name, path in raw["paths"].items()}
    if update is not None:
        update(raw)
    return parse_params(raw)


def use_store(monkeypatch: pytest.MonkeyPatch, directory: Path) -> str:
    """Point MLflow at a fresh SQLite file; run from `directory` so artifacts land there too."""
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # A sqlite store keeps artifacts under ./mlruns of the working directory.
    monkeypatch.chdir(directory)
    return uri


@contextmanager
def mlflow_workspace(directory: Path) -> Iterator[str]:
    """`use_store` for a module-scoped fixture: undone when the block ends."""
    with pytest.MonkeyPatch.context() as mp:
        yield use_store(mp, directory)


# --- running a command as a user would: in a terminal, through a pipe (progress tests) --------

CONTROL_CHARACTERS = r"[\x00-\x08\x0b-\x1f\x7f]"  # anything but \t and \n: no bar, colour or cursor move
PROGRESS_ENVIRONMENT = ("CI", "TERM", "CHURN_QUIET", "CHURN_PROGRESS")


def run_command(command: list[str], *, terminal: bool, env: dict[str, str], cwd: Path | None = None,
                timeout: float = 180) -> tuple[int, str]:
    """Exit code and stdout + stderr together, from a pseudo-terminal or a pipe."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    if not terminal:
        done = subprocess.run(command, check=False, env=env, cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        return done.returncode, done.stdout.decode(errors="replace")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(command, env=env, cwd=cwd, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=timeout), b"".join(chunks).decode(errors="replace")


def without_escapes(text: str) -> str:
    """What a terminal's user reads: escape sequences and carriage returns removed."""
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


class Captured:
    """What a `stderr_in_a_terminal` block wrote, once the block has ended."""

    text = ""


@contextmanager
def stderr_in_a_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    """Point this process's stderr at a real pseudo-terminal (isatty() is true, so the
    progress module chooses live bars by its own check) and collect what reaches it. The
    cheap way to run a command in a terminal: no new interpreter, no second import of MLflow."""
    import fcntl
    import os
    import pty
    import struct
    import sys
    import termios
    import threading

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    stream = open(follower, "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    chunks: list[bytes] = []

    def pump() -> None:  # drain the terminal as it fills, or a long output would block the writer
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the follower side was closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=pump, name="terminal reader", daemon=True)
    reader.start()
    captured = Captured()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        yield captured
    finally:
        monkeypatch.setattr(sys, "stderr", sys.__stderr__)
        stream.close()
        reader.join(timeout=10)
        os.close(leader)
        captured.text = b"".join(chunks).decode(errors="replace")


def churn_here(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *,
               terminal: bool, status: int = 0) -> tuple[str, str]:
    """`churn <argv>` in this process, with stderr a pseudo-terminal or a file (as through a
    pipe): the progress mode is chosen by the command's own check, from a clean environment.
    Its stdout and stderr. In this process, not a new one, so the seconds spent importing
    MLflow, scikit-learn and pandas are paid once per test session."""
    import io
    import os
    import sys

    from churn import progress
    from churn.cli import main

    for name in (progress.MODE_ENV, "CI", "TERM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(progress.QUIET_ENV, "")  # restored after the test: --quiet sets it
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(variable, os.environ.get(variable, "1"))  # main() sets them: restore after
    monkeypatch.setattr(progress, "_mode", None)
    capsys.readouterr()
    if terminal:
        with stderr_in_a_terminal(monkeypatch) as terminal_output:
            assert main(argv) == status
        err = terminal_output.text
    else:
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        assert main(argv) == status
        err = stream.getvalue()
    return capsys.readouterr().out, err

# A closing line's duration as churn.progress.format_seconds writes it: `3.2 s`, `2 min 05 s`.
DURATION = r"(?:\d+\.\d s|\d+ min \d\d s)"
