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
