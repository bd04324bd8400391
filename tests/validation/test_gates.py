"""churn.validation.gates: model gates, data checks and the verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import DataChecks, Gates
from churn.validation.gates import Check, data_checks, model_checks, verdict

METRICS = {"roc_auc": 0.85, "log_loss": 0.40, "recall": 0.70, "precision": 0.55,
           "pr_auc": 0.6, "f1": 0.6, "accuracy": 0.8, "brier": 0.15}


def _by_name(checks):
    return {c.name: c for c in checks}


# --- model checks ---------------------------------------------------------------------

def test_all_gates_pass():
    checks = model_checks(METRICS, Gates(min_roc_auc=0.8, max_log_loss=0.5, min_recall=0.6, min_precision=0.5))
    assert len(checks) == 4
    assert all(c.passed and c.kind == "model" for c in checks)
    by_name = _by_name(checks)
    assert by_name["validation_roc_auc"].value == METRICS["roc_auc"]
    assert by_name["validation_log_loss"].op == "<="


def test_thresholds_are_inclusive():
    gates = Gates(min_roc_auc=METRICS["roc_auc"], max_log_loss=METRICS["log_loss"],
                  min_recall=METRICS["recall"], min_precision=METRICS["precision"])
    assert all(c.passed for c in model_checks(METRICS, gates))


@pytest.mark.parametrize("gate, metric, bad", [
    ("min_roc_auc", "roc_auc", 0.851),
    ("max_log_loss", "log_loss", 0.399),
    ("min_recall", "recall", 0.701),
    ("min_precision", "precision", 0.551),
])
def test_each_gate_fails_just_past_its_threshold(gate, metric, bad):
    checks = _by_name(model_checks(METRICS, Gates(**{gate: bad})))
    assert list(checks) == [f"validation_{metric}"]
    assert checks[f"validation_{metric}"].passed is False


def test_none_thresholds_are_skipped():
    assert model_checks(METRICS, Gates()) == []
    checks = model_checks({"roc_auc": 0.9}, Gates(min_roc_auc=0.8))  # other metrics not needed
    assert [c.name for c in checks] == ["validation_roc_auc"]


def test_repo_gates(params):
    gates = params.validation.gates
    good = dict(METRICS, roc_auc=gates.min_roc_auc + 0.01, log_loss=gates.max_log_loss - 0.01,
                recall=gates.min_recall + 0.01)
    bad = dict(METRICS, roc_auc=gates.min_roc_auc - 0.01, log_loss=gates.max_log_loss + 0.01,
               recall=gates.min_recall - 0.01)
    assert all(c.passed for c in model_checks(good, gates))
    assert not any(c.passed for c in model_checks(bad, gates))


# --- data checks ----------------------------------------------------------------------

def _frame(dataset, n: int, positive_rate: float, missing: dict[str, int] | None = None) -> pd.DataFrame:
    positives = round(n * positive_rate)
    df = pd.DataFrame({c: np.ones(n) for c in dataset.numeric})
    for c in dataset.categorical:
        df[c] = "x"
    df[dataset.label_column] = [1] * positives + [0] * (n - positives)
    for column, count in (missing or {}).items():
        df.loc[: count - 1, column] = np.nan
    return df


LIMITS = DataChecks(min_train_rows=100, min_validation_rows=50, positive_rate=(0.1, 0.5), max_missing_share=0.05)


def test_data_checks_pass(dataset):
    checks = data_checks(_frame(dataset, 100, 0.3), _frame(dataset, 50, 0.3), dataset, LIMITS)
    assert checks and all(c.passed and c.kind == "data" for c in checks)
    assert {f"missing_share.{c}" for c in dataset.feature_columns} <= {c.name for c in checks}


def test_row_counts(dataset):
    checks = data_checks(_frame(dataset, 99, 0.3), _frame(dataset, 49, 0.3), dataset, LIMITS)
    failed = {c.name: c for c in checks if not c.passed}
    assert set(failed) == {"train_rows", "validation_rows"}
    assert failed["train_rows"].value == 99 and failed["train_rows"].threshold == 100
    assert failed["validation_rows"].value == 49


@pytest.mark.parametrize("rate, passes", [(0.05, False), (0.1, True), (0.5, True), (0.6, False)])
def test_positive_rate_bounds(dataset, rate, passes):
    checks = data_checks(_frame(dataset, 100, 0.3), _frame(dataset, 100, rate), dataset, LIMITS)
    rate_checks = [c for c in checks if c.name == "validation_positive_rate"]
    assert len(rate_checks) == 2
    assert {c.op for c in rate_checks} == {">=", "<="}
    assert all(c.value == rate for c in rate_checks)
    assert all(c.passed for c in rate_checks) is passes
    assert all(c.passed for c in checks if c.name.startswith("train_"))


def test_missing_share(dataset):
    train = _frame(dataset, 100, 0.3, missing={"tenure": 6, "Contract": 5})
    checks = _by_name(data_checks(train, _frame(dataset, 50, 0.3), dataset, LIMITS))
    assert checks["missing_share.tenure"].value == pytest.approx(0.06)
    assert checks["missing_share.tenure"].passed is False
    assert checks["missing_share.Contract"].passed is True  # 0.05 <= 0.05
    assert checks["missing_share.MonthlyCharges"].value == 0


def test_empty_frames_fail_instead_of_crashing(dataset):
    empty = _frame(dataset, 0, 0.0)
    checks = data_checks(empty, empty, dataset, LIMITS)
    assert not all(c.passed for c in checks)
    assert not _by_name(checks)["train_rows"].passed


# --- verdict --------------------------------------------------------------------------

def test_verdict_passed():
    checks = [Check.compare("a", "model", 0.9, ">=", 0.8)]
    result = verdict(checks)
    assert result.verdict == "passed"
    assert result.reasons == []
    assert result.checks == [{"name": "a", "kind": "model", "value": 0.9, "op": ">=", "threshold": 0.8, "passed": True}]


def test_verdict_lists_every_failing_reason(dataset):
    checks = model_checks(dict(METRICS, roc_auc=0.7, log_loss=0.9), Gates(min_roc_auc=0.8, max_log_loss=0.5, min_recall=0.6))
    checks += data_checks(_frame(dataset, 10, 0.3), _frame(dataset, 50, 0.9), dataset, LIMITS)
    result = verdict(checks)
    assert result.verdict == "rejected"
    failing = [c for c in checks if not c.passed]
    assert len(result.reasons) == len(failing) == 4
    joined = "\n".join(result.reasons)
    for name in ("validation_roc_auc", "validation_log_loss", "train_rows", "validation_positive_rate"):
        assert name in joined
    assert "validation_recall" not in joined
    assert "0.7" in joined and "0.8" in joined  # value and threshold
    assert len(result.checks) == len(checks)


def test_check_rounds_value():
    check = Check.compare("x", "model", 0.12345678, ">=", 0.1)
    assert check.value == 0.123457
    assert isinstance(check.passed, bool)


def test_each_split_is_checked_under_its_own_name(dataset):
    checks = data_checks(_frame(dataset, 100, 0.05), _frame(dataset, 100, 0.3), dataset, LIMITS)
    rates = {(c.name, c.op): c for c in checks if c.name.endswith("_positive_rate")}
    assert set(rates) == {(f"{s}_positive_rate", op) for s in ("train", "validation") for op in (">=", "<=")}
    assert rates["train_positive_rate", ">="].value == 0.05 and not rates["train_positive_rate", ">="].passed
    assert rates["validation_positive_rate", ">="].value == 0.3


def test_empty_frames_record_finite_values(dataset):
    # The verdict is JSON: an empty split must not put NaN in it (strict JSON has no NaN).
    import dataclasses
    import json

    empty = _frame(dataset, 0, 0.0)
    checks = data_checks(empty, empty, dataset, LIMITS)
    by_key = {(c.name, c.op): c for c in checks}
    assert by_key["train_positive_rate", ">="].value == 0.0
    assert by_key["validation_positive_rate", "<="].value == 0.0
    assert not [c for c in checks if c.name.startswith("missing_share.")]
    json.dumps(dataclasses.asdict(verdict(checks)), allow_nan=False)


def test_a_failed_check_reads_as_one_line_with_its_note_in_brackets_only_when_it_has_one():
    check = Check.compare("validation_roc_auc", "model", 0.7123456789, ">=", 0.75)
    assert check.reason() == "model check validation_roc_auc = 0.712346 fails >= 0.75"
    noted = Check.compare("validation_roc_auc_ceiling", "leakage", 0.999, "<=", 0.99, note="top feature: tenure")
    assert noted.reason() == "leakage check validation_roc_auc_ceiling = 0.999 fails <= 0.99 (top feature: tenure)"
