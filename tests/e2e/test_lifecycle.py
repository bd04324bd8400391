"""`make lifecycle`, small: deploy, monitor (quiet, then firing), refresh, retrain, promote, recover.

Runs scripts/lifecycle.py --small in a temporary directory: its own project (a copy of the
pipeline files with its own git repository, DVC remote and SQLite MLflow store), scored
with `churn predict --as-of` day by day, labelled late with `churn label`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from churn.config import load_params
from churn.deployment.inference_log import read_log
from tests.e2e.conftest import ROOT, project_env

pytestmark = pytest.mark.e2e


def test_the_lifecycle_closes_the_loop(tmp_path):
    workdir = tmp_path / "lifecycle"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lifecycle.py"), "--small", "--workdir", str(workdir)],
        env=project_env(tmp_path), capture_output=True, text=True, timeout=1800,
    )
    out = result.stdout
    assert result.returncode == 0, f"{out[-6000:]}\n{result.stderr[-3000:]}"
    quiet = out.index("--> monitor: quiet on the baseline period (exit 0)")
    fired = out.index("--> monitor: firing on the drifted period (exit 1)")
    refreshed = out.index("$ churn refresh")
    recovered = out.index("--> monitor: quiet again under the retrained champion (exit 0)")
    assert quiet < fired < refreshed < recovered
    assert "challenge: passed as churn-classifier v2" in out
    assert "is churn-classifier v2 (@champion" in out

    project = workdir / "project"
    meta = yaml.safe_load((project / "data/raw/telco_churn.csv.dvc").read_text())["meta"]
    assert meta["source"] == "churn refresh" and meta["rows"]["from_log"] == 4000 and meta["rows"]["total"] == 4000
    verdict = json.loads((project / "reports/monitor_verdict.json").read_text())
    assert verdict["status"] == "ok" and verdict["model_version"] == "2", verdict

    log = read_log(project / "data/inference_log", dataset=load_params(project / "params.yaml").dataset,
                   with_labels=True)
    assert len(log) == 9000
    assert log.groupby("model_version").size().to_dict() == {"1": 7000, "2": 2000}
    assert int(log["Churn"].notna().sum()) == 7000  # baseline and drifted labels arrived late
    assert sorted({str(day) for day in log["date"]}) == sorted({str(day) for day in log["scored_at"].dt.date})
