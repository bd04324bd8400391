"""churn.validation.slices: per-slice metrics, too-small slices, floor and gap gates."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churn.config import Slices
from churn.validation.slices import band_labels, slice_checks, slice_metrics, summary

SETTINGS = Slices(columns=["plan"], bins={"tenure": [12, 24]}, min_rows=100, min_class_rows=10,
                  min_roc_auc=0.7, max_roc_auc_gap=0.15)


def _data(n: int = 3000, seed: int = 0, collapse: str | None = None):
    """Scores that rank well in every plan, except (optionally) pure noise in `collapse`."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "tiny"], n, p=[0.6, 0.38, 0.02])
    tenure = rng.integers(0, 72, n).astype(float)
    y = (rng.random(n) < 0.3).astype(int)
    proba = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.15, n), 0, 1)
    if collapse:
        noisy = plan == collapse
        proba[noisy] = rng.random(noisy.sum())
    return pd.DataFrame({"plan": plan, "tenure": tenure}), y, proba


def test_slices_are_scored_with_their_numbers():
    frame, y, proba = _data()
    by_name = {s.name: s for s in slice_metrics(frame, y, proba, 0.35, SETTINGS)}
    assert set(by_name) == {"plan=basic", "plan=plus", "plan=tiny", "tenure=(-inf, 12)", "tenure=[12, 24)", "tenure=[24, inf)"}
    basic = by_name["plan=basic"]
    mask = frame["plan"] == "basic"
    assert basic.rows == mask.sum() and basic.scored
    assert basic.roc_auc == round(roc_auc_score(y[mask], proba[mask]), 6)
    assert basic.positive_rate == round(y[mask].mean(), 6)


def test_a_small_slice_is_reported_not_scored():
    frame, y, proba = _data()
    tiny = {s.name: s for s in slice_metrics(frame, y, proba, 0.35, SETTINGS)}["plan=tiny"]
    assert not tiny.scored and tiny.roc_auc is None and "too small" in tiny.note
    assert tiny.rows == (frame["plan"] == "tiny").sum()


def test_healthy_slices_pass_and_a_collapsed_slice_fails():
    frame, y, proba = _data()
    overall = roc_auc_score(y, proba)
    checks = slice_checks(slice_metrics(frame, y, proba, 0.35, SETTINGS), overall, SETTINGS)
    assert checks and all(c.passed and c.kind == "slice" for c in checks)

    frame, y, proba = _data(collapse="plus")
    overall = roc_auc_score(y, proba)
    failing = {c.name for c in slice_checks(slice_metrics(frame, y, proba, 0.35, SETTINGS), overall, SETTINGS) if not c.passed}
    assert failing == {"slice_roc_auc.plan=plus", "slice_roc_auc_gap.plan=plus"}


def test_no_scorable_slice_fails_closed():
    frame, y, proba = _data(n=150)
    strict = SETTINGS.model_copy(update={"min_rows": 1000})
    [check] = slice_checks(slice_metrics(frame, y, proba, 0.35, strict), 0.8, strict)
    assert check.name == "slices_scored" and not check.passed


def test_bands_are_half_open_and_missing_has_its_own():
    labels = band_labels(pd.Series([0.0, 11.9, 12.0, 24.0, np.nan]), [12, 24])
    assert labels.tolist() == ["(-inf, 12)", "(-inf, 12)", "[12, 24)", "[24, inf)", "missing"]


def test_summary_numbers():
    frame, y, proba = _data()
    by_slice = slice_metrics(frame, y, proba, 0.35, SETTINGS)
    numbers = summary(by_slice, 0.9)
    aucs = [s.roc_auc for s in by_slice if s.scored]
    assert numbers["slice_min_roc_auc"] == min(aucs)
    assert numbers["slices_scored"] == len(aucs) and numbers["slices_too_small"] == 1
