"""A fixture repository for the review loop: `main`, a param branch and a data branch.

Also renders the example pull-request comment under docs/:
    .venv/bin/python -m tests.e2e.review_repo docs/example-pr-comment
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from tests.e2e.conftest import Project, make_project


def _report(project: Project, *options: str, terminal: bool = False, log: dict | None = None, key: str = "") -> str:
    """Run `churn [options] report --base main` through a pipe, or in a pseudo-terminal;
    its stdout and stderr go to `log[key]` (the progress tests read them)."""
    command = ["churn", *options, "report", "--base", "main"]
    if terminal:
        from tests.helpers import PROGRESS_ENVIRONMENT, run_command

        env = {k: v for k, v in project.env.items() if k not in PROGRESS_ENVIRONMENT}
        env.update(TERM="xterm-256color", COLUMNS="120")
        status, output = run_command(command, terminal=True, env=env, cwd=project.path, timeout=900)
        assert status == 0, output
    else:
        result = project.run(*command)
        output = result.stderr + result.stdout  # progress (stderr) comes before the result line
    if log is not None:
        log[key] = output
    return (project.path / "report.md").read_text()


def _commit(project: Project, message: str) -> None:
    project.git("add", "-A")
    project.git("commit", "-q", "-m", message)


def build_review_repo(base: Path) -> dict:
    project = make_project(base)
    project.repro()
    _commit(project, "main: reproduced")
    project.run("dvc", "push", "-q")
    logs: dict[str, str] = {}
    out = {"project": project, "logs": logs, "unchanged": _report(project, log=logs, key="piped")}

    project.git("checkout", "-q", "-b", "fewer-trees")
    project.set_params(
        lambda p: p["train"]["hyperparameters"]["hist_gradient_boosting"].update(max_iter=40, learning_rate=0.02)
    )
    project.repro()
    _commit(project, "train: fewer trees")
    out["param"] = _report(project, "--quiet", terminal=True, log=logs, key="quiet")
    out["param_drift"] = json.loads((project.path / "metrics/drift_vs_base.json").read_text())
    out["images"] = sorted(p.name for p in (project.path / "report").glob("*.png") if p.stat().st_size > 0)

    project.git("checkout", "-q", "main")
    project.run("dvc", "checkout", "-q")
    project.git("checkout", "-q", "-b", "later-period")
    project.run("churn", "simulate", "--period", "drifted", "--track")
    project.repro()
    _commit(project, "data: later period")
    out["data"] = _report(project, terminal=True, log=logs, key="terminal")
    out["data_drift"] = json.loads((project.path / "metrics/drift_vs_base.json").read_text())
    out["html"] = (project.path / "report" / "drift_base_vs_head.html").stat().st_size
    return out


def render_example(target: Path) -> None:
    """The data branch's comment, with its images, as a reviewer sees it."""
    with tempfile.TemporaryDirectory() as tmp:
        result = build_review_repo(Path(tmp))
        project = result["project"]
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(project.path / "report", target / "report", ignore=shutil.ignore_patterns("*.html"))
        (target / "README.md").write_text(result["data"])


if __name__ == "__main__":
    render_example(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/example-pr-comment"))
