"""`python -m benchmarks --quick` runs end to end (CI exercises it); no time is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_measures_every_step(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out), "--workdir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = json.loads(out.read_text())["rows"]
    steps = {row["step"].strip() for row in rows}
    assert {"bare scikit-learn", "dvc repro (all stages)", "no-op dvc repro", "churn predict",
            "REST 1 record(s)", "REST 1000 record(s)"} <= steps
    monitor = [r for r in rows if r["step"].startswith("monitor")]
    assert monitor and not any("failed" in str(r.get("note") or "") for r in monitor), monitor
    assert any(r["peak_mb"] for r in monitor), monitor
    # A quick run says which of its figures shared the machine with another step.
    assert all("ran alongside the pipeline steps" in r["note"] for r in monitor), monitor
    assert "REST server started alongside" in next(r["note"] for r in rows if r["step"] == "churn predict")
    assert {f"stage {s}" for s in ("prep", "train", "validate", "evaluate")} <= steps
    # The yardstick ran before and after the stages; its row is the faster run, and says so.
    bare = next(r for r in rows if r["step"] == "bare scikit-learn")
    assert bare["note"].startswith("faster of ") and "(after)" in bare["note"]
    measured = [r for r in rows if r["step"] in ("bare scikit-learn", "dvc repro (all stages)", "churn predict")]
    assert all(r["wall_s"] > 0 and r["peak_mb"] > 0 for r in measured)
    assert "| rows | step | wall s |" in done.stdout and "cores" in done.stdout
    # Piped, progress is plain lines on stderr: which size and step ran, its figures and time.
    assert "\x1b" not in done.stderr and "\r" not in done.stderr
    for line in ("churn: 2,000 rows: bare scikit-learn: ", "churn: 2,000 rows: dvc repro (all stages): ",
                 "churn: 2,000 rows: stage train: ", "churn: 2,000 rows: bare scikit-learn, again: ",
                 "churn: 2,000 rows: churn predict: ", "churn: 2,000 rows, steps: 10 of 10 in "):
        assert line in done.stderr, done.stderr[-3000:]
