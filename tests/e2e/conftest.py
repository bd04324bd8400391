"""A throw-away git + DVC copy of the project, with a small simulated snapshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SMALL_ROWS = 3000
# Only what the graph reads; src/ is copied because stages depend on its files' hashes
# (the code that runs is the installed package, which points at the same files).
PROJECT_FILES = ("dvc.yaml", "params.yaml", ".dvc/config", ".dvc/plots/page.html", ".dvcignore", ".gitignore")


@dataclass
class Project:
    path: Path
    env: dict

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = self.env
        if (self.path / "src" / "churn").is_dir():
            # The project runs its own copy of the code, as a checkout of a branch would.
            env = {**env, "PYTHONPATH": str(self.path / "src")}
        result = subprocess.run(args, cwd=self.path, env=env, capture_output=True, text=True, timeout=900)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def git(self, *args: str) -> str:
        return self.run("git", *args).stdout

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def set_params(self, update) -> None:
        data = self.params()
        update(data)
        (self.path / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    def lock(self) -> dict:
        return yaml.safe_load((self.path / "dvc.lock").read_text())

    def repro(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("dvc", "repro", *args, check=check)


def ran_stages(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def project_env(home: Path) -> dict:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
        GIT_AUTHOR_NAME="e2e",
        GIT_AUTHOR_EMAIL="e2e@example.invalid",
        GIT_COMMITTER_NAME="e2e",
        GIT_COMMITTER_EMAIL="e2e@example.invalid",
        DVC_NO_ANALYTICS="1",
    )
    env.pop("GIT_DIR", None)
    return env


def clone_without_remote(origin: Project, base: Path, branch: str | None = None) -> Project:
    """A fresh clone of `origin` whose DVC remote holds nothing, as on a new machine or a
    CI job with no shared remote; `main` is fetched so reports can use it as the base."""
    env = project_env(base)
    path = base / "clone"
    Project(base, env).run("git", "clone", "-q", *(["-b", branch] if branch else []), str(origin.path), str(path))
    clone = Project(path, env)
    clone.run("dvc", "remote", "modify", "--local", "local", "url", str(base / "empty-remote"))
    if branch and branch != "main":
        clone.run("git", "fetch", "-q", "origin", "main:main")
    return clone


def make_project(base: Path) -> Project:
    path = base / "repo"
    path.mkdir(parents=True)
    for name in PROJECT_FILES:
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    shutil.copytree(ROOT / "src", path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    project = Project(path, project_env(base))
    # Its own remote, outside the working copy, so a clone can share or lose it.
    remote = base / "remote"
    project.set_params(lambda p: p["simulate"].update(n_customers=SMALL_ROWS))
    project.set_params(lambda p: p["validate"]["data_checks"].update(min_train_rows=500, min_validation_rows=100))
    project.git("init", "-q", "-b", "main")
    config = (path / ".dvc" / "config").read_text().replace("url = ../.dvc-storage", f"url = {remote}")
    (path / ".dvc" / "config").write_text(config)
    project.run("churn", "simulate", "--track")
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "small simulated project")
    return project


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> Project:
    """A project whose pipeline ran once and whose dvc.lock is committed."""
    project = make_project(tmp_path_factory.mktemp("e2e"))
    result = project.repro()
    assert ran_stages(result.stdout) == {"prep", "train", "validate", "evaluate"}, result.stdout
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "reproduce")
    return project
