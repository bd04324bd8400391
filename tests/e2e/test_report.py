"""`churn report --base main` on a real repository with a param branch and a data branch."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import clone_without_remote
from tests.e2e.review_repo import build_review_repo

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


def _report_from_scratch(project) -> str:
    """Data, pipeline and report in a clone where nothing of the base is cached."""
    project.run("churn", "ensure-data")
    project.repro()
    project.run("churn", "report", "--base", "main")
    return (project.path / "report.md").read_text()


def test_base_data_in_no_cache_or_remote_is_rebuilt(reports, tmp_path):
    """A CI job with no shared DVC remote: the base's data exists nowhere but can be rebuilt."""
    project = clone_without_remote(reports["project"], tmp_path, branch="later-period")
    text = _report_from_scratch(project)
    assert "so it was rebuilt here" in text
    drift = text.split("### Drift")[1].split("###")[0]
    assert "MonthlyCharges" in drift and "⚠️ yes" in drift
    raw_line = next(line for line in text.splitlines() if "data/raw/telco_churn.csv" in line)
    assert raw_line.count("3,000") == 2
    assert project.git("worktree", "list").count("\n") == 1, "the temporary worktree must be gone"


def test_rebuilt_base_uses_the_base_code_so_a_prep_change_shows_as_drift(reports, tmp_path):
    origin = reports["project"]
    origin.git("checkout", "-q", "main")
    origin.run("dvc", "checkout", "-q")
    origin.git("checkout", "-q", "-b", "prep-doubles-charges")
    clean = origin.path / "src/churn/core/clean.py"
    code = clean.read_text()
    marker = "    return out.reset_index(drop=True)"
    assert marker in code
    clean.write_text(code.replace(marker, '    out["MonthlyCharges"] = out["MonthlyCharges"] * 2\n' + marker, 1))
    origin.git("commit", "-q", "-am", "prep: a bug that doubles charges")

    project = clone_without_remote(origin, tmp_path, branch="prep-doubles-charges")
    text = _report_from_scratch(project)
    assert "so it was rebuilt here" in text
    drift = text.split("### Drift")[1].split("###")[0]
    monthly = next(line for line in drift.splitlines() if line.startswith("| MonthlyCharges"))
    assert "⚠️ yes" in monthly, drift
