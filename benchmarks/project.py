"""A throw-away git + DVC copy of this project with a simulated snapshot of a given size."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What the graph reads; src/ is copied because stages depend on its files' hashes.
PROJECT_FILES = ("dvc.yaml", "params.yaml", ".dvc/config", ".dvcignore", ".gitignore")


@dataclass(frozen=True)
class Project:
    path: Path
    env: dict[str, str]

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def stages(self) -> list[str]:
        return list(yaml.safe_load((self.path / "dvc.yaml").read_text())["stages"])

    def raw(self) -> Path:
        return self.path / self.params()["paths"]["raw"]

    def check(self, *args: str) -> str:
        done = subprocess.run(args, cwd=self.path, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout


def environment(home: Path, project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        # The copy runs its own code, as a checkout does; the benchmark helpers come from here.
        PYTHONPATH=f"{project / 'src'}{os.pathsep}{ROOT}",
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        DVC_NO_ANALYTICS="1",
    )
    env.pop("GIT_DIR", None)
    return env


def make_project(base: Path, rows: int) -> Project:
    path = base / f"project-{rows}"
    path.mkdir(parents=True)
    for name in PROJECT_FILES:
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    shutil.copytree(ROOT / "src", path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    project = Project(path, environment(base, path))
    config = (path / ".dvc" / "config").read_text().replace("url = ../.dvc-storage", f"url = {base / 'remote'}")
    (path / ".dvc" / "config").write_text(config)
    params = project.params()
    # Small quick runs must still pass the row-count checks; they do not change the work.
    checks = params["validate"]["data_checks"]
    checks["min_train_rows"] = min(checks["min_train_rows"], int(rows * 0.3))
    checks["min_validation_rows"] = min(checks["min_validation_rows"], int(rows * 0.1))
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    project.check("git", "init", "-q", "-b", "main")
    project.check("churn", "simulate", "--rows", str(rows), "--output", str(project.raw()))
    project.check("git", "add", "-A")
    project.check("git", "commit", "-q", "-m", f"benchmark project, {rows} rows")
    return project
