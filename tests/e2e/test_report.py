"""`churn report --base main` on a real repository with a param branch and a data branch."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import clone_without_remote
from tests.e2e.review_repo import build_review_repo
from tests.helpers import CONTROL_CHARACTERS, DURATION, without_escapes

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict:
    return build_review_repo(tmp_path_factory.mktemp("review"))


def test_nothing_changed_says_so_in_one_line_per_section(reports):
    text = reports["unchanged"]
    assert "No params changed." in text
    assert "No metric changed." in text
    assert "No DVC-tracked data changed." in text
    assert "no column drifted" in text


def test_param_branch_shows_the_param_and_metric_deltas(reports):
    text = reports["param"]
    params = text.split("### Params")[1].split("###")[0]
    assert "max_iter" in params and "40" in params
    metrics = text.split("### Metrics")[1].split("###")[0]
    assert "roc_auc" in metrics and "| base | head | delta |" in metrics
    assert "+0.0000 |" not in metrics.split("roc_auc")[1].split("\n")[0]
    data = text.split("### Data")[1].split("###")[0]
    assert "models/model.skops" in data


def test_param_branch_flags_no_drift(reports):
    assert reports["param_drift"]["columns_drifted"] == 0
    assert "no column drifted" in reports["param"]


def test_data_branch_shows_the_data_change_with_row_counts(reports):
    data = reports["data"].split("### Data")[1].split("###")[0]
    assert "data/raw/telco_churn.csv" in data
    raw_line = next(line for line in data.splitlines() if "data/raw/telco_churn.csv" in line)
    assert "3,000" in raw_line  # both snapshots have SMALL_ROWS customers, counted on each side
    assert "modified" in raw_line


def test_data_branch_flags_the_injected_drift(reports):
    drift = reports["data_drift"]
    drifted = {name for name, entry in drift["columns"].items() if entry["drifted"]}
    assert {"MonthlyCharges", "TotalCharges"} <= drifted
    assert "MonthlyCharges" in reports["data"].split("### Drift")[1].split("###")[0]
    assert "sample size cap" in reports["data"]
    assert reports["html"] > 0


def test_report_has_verdict_plots_and_links(reports):
    text = reports["param"]
    assert "**Gate: PASSED**" in text or "**Gate: REJECTED**" in text
    for name in ("roc.png", "precision_recall.png", "confusion.png"):
        assert f"(report/{name})" in text
    assert reports["images"] == ["confusion.png", "precision_recall.png", "roc.png"]
    assert "MLflow run" in text


def _report_from_scratch(project) -> tuple[str, str]:
    """Data, pipeline and report in a clone where nothing of the base is cached; the report
    and what the command printed."""
    project.run("churn", "ensure-data")
    project.repro()
    printed = project.run("churn", "report", "--base", "main").stderr
    return (project.path / "report.md").read_text(), printed


def test_base_data_in_no_cache_or_remote_is_rebuilt(reports, tmp_path):
    """A CI job with no shared DVC remote: the base's data exists nowhere but can be rebuilt."""
    project = clone_without_remote(reports["project"], tmp_path, branch="later-period")
    text, printed = _report_from_scratch(project)
    assert "so it was rebuilt here" in text
    # Each step of the rebuild is a phase line with its time: a CI log shows where minutes go.
    steps = [
        r"churn: looking for the base's data/processed/train\.parquet in the DVC cache or remote: not there in " + DURATION,
        r"churn: checking main out in a temporary worktree in " + DURATION,
        r"churn: main: churn ensure-data in " + DURATION,
        r"churn: main: dvc repro in " + DURATION,
        r"churn: rebuilding the prep outputs of main in a temporary worktree in " + DURATION,
    ]
    lines = printed.splitlines()
    found = [next((i for i, line in enumerate(lines) if re.fullmatch(step, line)), None) for step in steps]
    assert None not in found and found == sorted(found), printed
    drift = text.split("### Drift")[1].split("###")[0]
    assert "MonthlyCharges" in drift and "⚠️ yes" in drift
    raw_line = next(line for line in text.splitlines() if "data/raw/telco_churn.csv" in line)
    assert raw_line.count("3,000") == 2
    assert project.git("worktree", "list").count("\n") == 1, "the temporary worktree must be gone"


# --- progress: phases in a terminal and through a pipe, none with --quiet ------------------------

PHASES = ("drift between the base and head training data (evidently)", "plots", "params, metrics and data against main (dvc diff)")


def test_report_piped_prints_a_line_per_phase_and_no_control_characters(reports):
    printed = reports["logs"]["piped"]
    assert not re.search(CONTROL_CHARACTERS, printed), repr(printed)
    lines = printed.splitlines()
    assert re.fullmatch(r"churn: looking for the base's .* in the DVC cache or remote: found in " + DURATION, lines[0]), printed
    assert any(re.fullmatch(r"churn: drift between .*: 0 of \d+ columns drifted in " + DURATION, line) for line in lines), printed
    assert any(re.fullmatch(r"churn: plots: 3 images in report in " + DURATION, line) for line in lines), printed
    assert re.fullmatch(r"churn: review report against main in " + DURATION, lines[-2]), printed
    assert lines[-1].startswith("wrote report.md (3 plots in report); gate ")


def test_report_in_a_terminal_draws_its_phases(reports):
    printed = reports["logs"]["terminal"]
    assert "\x1b[" in printed and "━" in printed
    text = without_escapes(printed)
    for phase in PHASES:
        assert f"churn: {phase}" in text, text
    assert "wrote report.md" in text


def test_report_quiet_prints_only_its_result(reports):
    # DVC's import runs colorama.init, whose exit hook resets the terminal's colours (one
    # `ESC[0m` after the last line, only on a terminal): no progress of ours, so left aside.
    printed = reports["logs"]["quiet"].removesuffix("\x1b[0m")
    assert "\x1b[" not in printed and "churn:" not in printed, printed
    assert printed.strip().startswith("wrote report.md (3 plots in report); gate ")


def test_rebuilt_base_uses_the_base_code_so_a_prep_change_shows_as_drift(reports, tmp_path):
    origin = reports["project"]
    origin.git("checkout", "-q", "main")
    origin.run("dvc", "checkout", "-q")
    origin.git("checkout", "-q", "-b", "prep-doubles-charges")
    clean = origin.path / "src/churn/core/clean.py"
    code = clean.read_text()
    marker = "\n    return out\n"  # the end of clean_features, the first function
    assert code.count(marker) == 1, "clean_features' return moved: update this test"
    clean.write_text(code.replace(marker, '\n    out["MonthlyCharges"] = out["MonthlyCharges"] * 2' + marker, 1))
    origin.git("commit", "-q", "-am", "prep: a bug that doubles charges")

    project = clone_without_remote(origin, tmp_path, branch="prep-doubles-charges")
    text, _ = _report_from_scratch(project)
    assert "so it was rebuilt here" in text
    drift = text.split("### Drift")[1].split("###")[0]
    monthly = next(line for line in drift.splitlines() if line.startswith("| MonthlyCharges"))
    assert "⚠️ yes" in monthly, drift
