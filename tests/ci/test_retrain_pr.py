"""scripts/retrain_pr.sh: one bot branch, one pull request, created once and then updated.

Runs the real script with real git against a local bare "origin" and a stand-in `gh` that
records its calls (and answers `gh pr list` from what it has "created")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "retrain_pr.sh"

FAKE_GH = """#!/usr/bin/env bash
echo "$*" >> "$GH_CALLS"
case "$1 $2" in
  "auth setup-git") exit 0 ;;
  "pr list") [ -f "$GH_STATE" ] && cat "$GH_STATE"; exit 0 ;;
  "pr create") echo 7 > "$GH_STATE"; exit 0 ;;
  "pr edit") exit 0 ;;
esac
echo "unexpected gh call: $*" >&2; exit 9
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    for key, value in (("user.name", "t"), ("user.email", "t@example.invalid")):
        git(work, "config", key, value)
    (work / "data").mkdir()
    (work / "data" / "snapshot.csv.dvc").write_text("outs:\n- md5: aaa\n  path: snapshot.csv\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "base")
    git(work, "push", "-q", "origin", "main")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    verdict = tmp_path / "monitor_verdict.json"
    verdict.write_text(json.dumps({"fired": True, "reasons": ["drifted columns 0.45 > 0.3 in 3 of 3 windows",
                                                              "estimated roc_auc dropped by 0.06"]}))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GH_TOKEN": "t",
           "GH_CALLS": str(tmp_path / "calls"), "GH_STATE": str(tmp_path / "state"), "PYTHON": sys.executable}
    return {"origin": origin, "work": work, "verdict": verdict, "env": env, "calls": tmp_path / "calls"}


def run(checkout, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(checkout["verdict"]), *args], cwd=checkout["work"],
                          env=env or checkout["env"], capture_output=True, text=True, timeout=60)


def test_opens_one_pull_request_then_updates_it(checkout, tmp_path):
    work, origin = checkout["work"], checkout["origin"]
    (work / "data" / "snapshot.csv.dvc").write_text("outs:\n- md5: bbb\n  path: snapshot.csv\n")
    (tmp_path / "refresh.txt").write_text("refreshed data/raw/x.csv: 80 rows\n")
    first = run(checkout, str(tmp_path / "refresh.txt"))
    assert first.returncode == 0, first.stderr
    assert "opened a pull request: Retrain: drifted columns 0.45" in first.stdout
    subject = git(origin, "log", "-1", "--format=%s", "monitor/retrain")
    assert subject == "Retrain: drifted columns 0.45 > 0.3 in 3 of 3 windows; estimated roc_auc dropped by 0.06\n"
    assert "md5: bbb" in git(origin, "show", "monitor/retrain:data/snapshot.csv.dvc")
    assert "md5: aaa" in git(origin, "show", "main:data/snapshot.csv.dvc")  # main untouched
    body = git(origin, "log", "-1", "--format=%b", "monitor/retrain")
    assert "- estimated roc_auc dropped by 0.06" in body and "80 rows" in body

    git(work, "checkout", "-q", "main")
    (work / "data" / "snapshot.csv.dvc").write_text("outs:\n- md5: ccc\n  path: snapshot.csv\n")
    second = run(checkout)
    assert second.returncode == 0, second.stderr
    assert "updated pull request #7" in second.stdout
    assert "md5: ccc" in git(origin, "show", "monitor/retrain:data/snapshot.csv.dvc")
    calls = checkout["calls"].read_text().splitlines()
    assert [c.split()[1] for c in calls if c.startswith("pr ")] == ["list", "create", "list", "edit"]
    assert any(c.startswith("pr create --base main --head monitor/retrain --title Retrain: ") for c in calls)


def test_refuses_without_a_token_or_reasons_and_skips_when_nothing_changed(checkout):
    work = checkout["work"]
    assert "no .dvc file" in run(checkout).stdout  # nothing changed: no PR, exit 0
    (work / "data" / "snapshot.csv.dvc").write_text("outs:\n- md5: bbb\n  path: snapshot.csv\n")
    no_token = run(checkout, env={k: v for k, v in checkout["env"].items() if k != "GH_TOKEN"})
    assert no_token.returncode == 2 and "GH_TOKEN is not set" in no_token.stderr
    checkout["verdict"].write_text(json.dumps({"reasons": []}))
    empty = run(checkout)
    assert empty.returncode != 0 and "has no reasons" in empty.stderr
    assert not checkout["calls"].exists()
    assert "monitor/retrain" not in git(checkout["origin"], "branch", "--list")
