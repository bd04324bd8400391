"""A throw-away copy of this project: its pipeline files and src/, a DVC remote of its own,
and the environment its commands run in (this checkout's tools, its own MLflow store).

One builder for everything that needs a scratch project: the end-to-end tests
(tests/e2e/conftest.py), the benchmark suite (benchmarks/project.py) and `make lifecycle`
(scripts/lifecycle.py). Each adds its own steps (git init, simulated data, ...).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Only what the graph reads; src/ is copied because stages depend on its files' hashes.
PROJECT_FILES = ("dvc.yaml", "params.yaml", ".dvc/config", ".dvc/plots/page.html", ".dvcignore", ".gitignore")


def copy_project(path: Path, remote: Path, update_params: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Copy the pipeline into the new folder `path`, its DVC remote pointed at `remote`
    (outside the copy, so a clone can share or lose it); `update_params` may change the
    copy's params.yaml (as a mapping) first."""
    path.mkdir(parents=True)
    for name in PROJECT_FILES:
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    shutil.copytree(ROOT / "src", path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    config = path / ".dvc" / "config"
    config.write_text(config.read_text().replace("url = ../.dvc-storage", f"url = {remote}"))
    if update_params is not None:
        params = yaml.safe_load((path / "params.yaml").read_text())
        update_params(params)
        (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def environment(mlflow_db: Path, who: str, home: Path | None = None) -> dict[str, str]:
    """This environment with this checkout's tools first on PATH, the copy's own SQLite
    MLflow store, a git identity for its commits, DVC's analytics off and, given `home`,
    a HOME of its own (no user config leaks in)."""
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        MLFLOW_TRACKING_URI=f"sqlite:///{mlflow_db}",
        GIT_AUTHOR_NAME=who,
        GIT_AUTHOR_EMAIL=f"{who}@example.invalid",
        GIT_COMMITTER_NAME=who,
        GIT_COMMITTER_EMAIL=f"{who}@example.invalid",
        DVC_NO_ANALYTICS="1",
    )
    if home is not None:
        env["HOME"] = str(home)
    env.pop("GIT_DIR", None)
    return env
