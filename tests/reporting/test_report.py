"""The review report: metric deltas say whether a highlighted move is better or worse; the
verdict section's evidence table."""

from __future__ import annotations

import pytest

from churn.reporting.report import _delta_text, evidence_lines, evidence_rows
from churn.validation.gates import Check


@pytest.mark.parametrize(
    "metric, delta, expected",
    [
        ("roc_auc", 0.02, "✅ better"),
        ("roc_auc", -0.02, "🔻 worse"),
        ("recall", 0.1, "✅ better"),
        ("log_loss", 0.05, "🔻 worse"),
        ("log_loss", -0.05, "✅ better"),
        ("brier", -0.01, "✅ better"),
    ],
)
def test_highlighted_moves_name_their_direction(metric, delta, expected):
    text = _delta_text(metric, delta, moved=True)
    assert text.startswith(f"**{delta:+.4f}**")
    assert text.endswith(expected)


def test_small_moves_and_new_metrics_are_plain():
    assert _delta_text("roc_auc", 0.001, moved=False) == "+0.0010"
    assert _delta_text("roc_auc", None, moved=False) == "new"


# --- the verdict section's evidence table -------------------------------------------

def _checks():
    return [
        Check.compare("validation_roc_auc", "model", 0.86, ">=", 0.8),
        Check.compare("single_feature_auc.tenure", "leakage", 0.76, "<=", 0.95),
        Check.compare("single_feature_auc.Contract", "leakage", 0.73, "<=", 0.95),
        Check.compare("single_feature_auc.exit_score", "leakage", 0.999, "<=", 0.95, note="a leak?"),
        Check.compare("roc_auc_gain_over.logistic_regression", "baseline", 0.002, ">=", 0.001),
        Check.compare("slice_roc_auc.Contract=One year", "slice", 0.77, ">=", 0.7),
        Check.compare("slice_roc_auc.Contract=Two year", "slice", 0.80, ">=", 0.7),
    ]


def test_failing_checks_or_the_tightest_one_per_family():
    rows = evidence_rows([c.as_dict() for c in _checks()])
    assert [r["check"] for r in rows] == [
        "`single_feature_auc.exit_score`", "`roc_auc_gain_over.logistic_regression`", "`slice_roc_auc.Contract=One year`",
    ]
    assert rows[0]["passed"] == "❌" and rows[0]["of"] == "2/3 passed" and rows[0]["note"] == "a leak?"


def test_section_names_baselines_and_small_slices():
    verdict = {
        "checks": [c.as_dict() for c in _checks()],
        "baseline": {"candidate_roc_auc": 0.865, "roc_auc": {"logistic_regression": 0.863, "prior": 0.5}},
        "slices": [{"slice": "plan=tiny", "scored": False}],
    }
    text = "\n".join(evidence_lines(verdict))
    assert "candidate 0.8650; baselines logistic_regression 0.8630, prior 0.5000" in text
    assert "`plan=tiny`" in text
    assert "No leakage" in "\n".join(evidence_lines({}))
