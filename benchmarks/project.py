"""A throw-away git + DVC copy of this project with a simulated snapshot of a given size."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from scripts.project_copy import ROOT, copy_project, environment


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


def make_project(base: Path, rows: int) -> Project:
    path = base / f"project-{rows}"

    def small_enough(params: dict) -> None:
        # Small quick runs must still pass the row-count checks; they do not change the work.
        checks = params["validate"]["data_checks"]
        checks["min_train_rows"] = min(checks["min_train_rows"], int(rows * 0.3))
        checks["min_validation_rows"] = min(checks["min_validation_rows"], int(rows * 0.1))

    copy_project(path, base / "remote", small_enough)
    env = environment(path / "mlflow.db", "bench", home=base)
    # The copy runs its own code, as a checkout does; the benchmark helpers come from here.
    env["PYTHONPATH"] = f"{path / 'src'}{os.pathsep}{ROOT}"
    project = Project(path, env)
    project.check("git", "init", "-q", "-b", "main")
    project.check("churn", "simulate", "--rows", str(rows), "--output", str(project.raw()))
    project.check("git", "add", "-A")
    project.check("git", "commit", "-q", "-m", f"benchmark project, {rows} rows")
    return project
