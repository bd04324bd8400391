"""A throw-away git + DVC copy of the project, with a small simulated snapshot."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from scripts.project_copy import copy_project, environment

ROOT = Path(__file__).resolve().parents[2]
SMALL_ROWS = 3000


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
    return environment(home / "mlflow.db", "e2e", home=home)


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
    def small(params: dict) -> None:
        params["simulate"].update(n_customers=SMALL_ROWS)
        params["validate"]["data_checks"].update(min_train_rows=500, min_validation_rows=100)

    path = base / "repo"
    copy_project(path, base / "remote", small)  # its own remote, outside the copy
    project = Project(path, project_env(base))
    project.git("init", "-q", "-b", "main")
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
