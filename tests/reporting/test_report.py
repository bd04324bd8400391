"""The review report's metric deltas say whether a highlighted move is better or worse."""

from __future__ import annotations

import pytest

from churn.reporting.report import _delta_text


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
