"""The real `dvc repro` in a temporary git + DVC repository: caching, params, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from churn.entry import RECORD_MODULES_ENV
from tests.e2e.conftest import clone_without_remote, ran_stages

pytestmark = pytest.mark.e2e

ALL_STAGES = {"prep", "train", "validate", "evaluate"}


def test_first_run_writes_every_declared_output(reproduced):
    lock = reproduced.lock()
    assert set(lock["stages"]) == ALL_STAGES
    for stage in lock["stages"].values():
        for out in stage["outs"]:
            assert (reproduced.path / out["path"]).exists(), out["path"]
    metrics = json.loads((reproduced.path / "metrics/test.json").read_text())
    assert set(metrics) == {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier"}
    drift = json.loads((reproduced.path / "metrics/drift.json").read_text())
    assert drift["columns_total"] == 19
    assert (reproduced.path / "reports/drift_report.html").stat().st_size > 0
    verdict = json.loads((reproduced.path / "reports/verdict.json").read_text())
    assert verdict["verdict"] in {"passed", "rejected"}


def test_second_repro_runs_nothing(reproduced):
    result = reproduced.repro()
    assert ran_stages(result.stdout) == set()
    assert "Data and pipelines are up to date" in result.stdout
    assert reproduced.git("status", "--porcelain") == ""


def test_metrics_and_plots_are_readable_by_dvc(reproduced):
    shown = json.loads(reproduced.run("dvc", "metrics", "show", "--json").stdout)
    assert shown, "dvc metrics show returned nothing"
    plots = reproduced.run("dvc", "plots", "show", "--json").stdout
    for name in ("ROC curve", "Confusion matrix", "Permutation feature importance"):
        assert name in plots


def test_train_param_via_exp_run_reruns_train_and_downstream_only(reproduced):
    result = reproduced.run(
        "dvc", "exp", "run", "-S", "train.hyperparameters.hist_gradient_boosting.max_iter=60", "--name", "fewer-trees"
    )
    assert ran_stages(result.stdout) == {"train", "validate", "evaluate"}, result.stdout
    # Back to the committed state: everything comes from the cache, nothing is retrained.
    reproduced.git("checkout", "--", ".")
    reproduced.run("dvc", "checkout", "--force")
    restored = reproduced.repro()
    assert ran_stages(restored.stdout) == set(), restored.stdout
    assert reproduced.git("status", "--porcelain") == ""


def test_prep_param_reruns_everything_downstream(reproduced):
    reproduced.set_params(lambda p: p["prep"]["split"].update(seed=7))
    try:
        result = reproduced.repro()
        assert ran_stages(result.stdout) == ALL_STAGES, result.stdout
    finally:
        reproduced.git("checkout", "--", ".")
        reproduced.repro()
    assert reproduced.git("status", "--porcelain") == ""


def test_fresh_clone_with_empty_remote_reproduces_lock_bit_for_bit(reproduced, tmp_path):
    # A remote that holds nothing: the snapshot must be rebuilt from its recorded settings.
    cloned = clone_without_remote(reproduced, tmp_path)
    ensured = cloned.run("churn", "ensure-data")
    assert "recreated bit-for-bit" in ensured.stdout
    result = cloned.repro()
    # The cached outputs are rebuilt; validate and evaluate outputs are in git and their
    # deps come out identical, so DVC rightly skips them.
    assert {"prep", "train"} <= ran_stages(result.stdout)
    assert cloned.git("status", "--porcelain") == "", cloned.git("diff")
    assert cloned.lock() == reproduced.lock()


def test_bytecode_caches_do_not_invalidate_stages(reproduced):
    env_without_flag = {k: v for k, v in reproduced.env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", "src"], cwd=reproduced.path, env=env_without_flag, check=True)
    assert list((reproduced.path / "src").rglob("*.pyc")), "compileall wrote no bytecode"
    status = reproduced.run("dvc", "status").stdout
    assert "up to date" in status, status


def _declared_code_deps(project, stage: dict) -> list[Path]:
    paths = project.params()["paths"]
    resolved = []
    for dep in stage["deps"]:
        for name, value in paths.items():
            dep = dep.replace(f"${{paths.{name}}}", str(value))
        if dep.startswith("src/"):
            resolved.append((project.path / dep).resolve())
    return resolved


def test_each_stage_depends_on_every_project_file_it_loads(reproduced, tmp_path):
    """Run every stage's command as dvc.yaml writes it and record the project modules it
    loaded, lazy imports and side processes included: each must sit under one of the stage's
    deps, or an edit to it would change the stage's outputs without `dvc repro` noticing."""
    stages = yaml.safe_load((reproduced.path / "dvc.yaml").read_text())["stages"]
    src = (reproduced.path / "src").resolve()
    for name, stage in stages.items():
        record = tmp_path / f"{name}.modules"
        env = {**reproduced.env, "PYTHONPATH": str(src), RECORD_MODULES_ENV: str(record)}
        result = subprocess.run(
            stage["cmd"].split(), cwd=reproduced.path, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr
        # A stage's side process (churn.core.side_process) records its own files beside.
        records = [record, *tmp_path.glob(f"{record.name}.*")]
        loaded = [Path(line) for file in records for line in file.read_text().splitlines() if line]
        assert loaded, f"{name} recorded no modules"
        outside = [str(path) for path in loaded if not path.is_relative_to(src)]
        assert not outside, f"{name} ran project code from outside the project: {outside}"
        deps = _declared_code_deps(reproduced, stage)
        undeclared = [
            str(path.relative_to(reproduced.path))
            for path in loaded
            if not any(path == dep or path.is_relative_to(dep) for dep in deps)
        ]
        assert not undeclared, f"stage {name} loads files dvc.yaml does not list as its deps: {undeclared}"
    # Rerunning the commands rewrote identical outputs: nothing for DVC to rerun.
    assert ran_stages(reproduced.repro().stdout) == set()
