"""churn.monitoring.drift on synthetic frames (evidently runs for real; ~3,000 rows a side)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from churn.errors import ChurnError
from churn.monitoring.drift import compare

NUMERIC = ["tenure", "monthly_charges", "total_charges", "constant_num"]
CATEGORICAL = ["contract", "payment_method", "constant_cat"]
COLUMNS = NUMERIC + CATEGORICAL
N = 3000


def _frame(rng: np.random.Generator, n: int, *, id_start: int = 0, tenure_shift: float = 0.0,
           contract_p: tuple[float, float, float] = (0.55, 0.25, 0.20)) -> pd.DataFrame:
    tenure = rng.normal(30.0 + tenure_shift, 10.0, n)
    total = rng.gamma(4.0, 500.0, n)  # independent of tenure, so only tenure drifts
    total[rng.random(n) < 0.1] = np.nan  # missing values in a numeric column
    return pd.DataFrame({
        "customer_id": np.arange(id_start, id_start + n),          # ignored
        "tenure": tenure,
        "monthly_charges": rng.gamma(5.0, 12.0, n),
        "total_charges": total,
        "constant_num": np.full(n, 1.5),                           # constant in both sets
        "contract": rng.choice(["month", "one_year", "two_year"], n, p=list(contract_p)),  # strings
        "payment_method": rng.integers(0, 4, n),                   # int categorical
        "constant_cat": np.full(n, "yes"),
        "churned": rng.integers(0, 2, n),                          # label, ignored
    })


def _summary(ref: pd.DataFrame, cur: pd.DataFrame, **overrides) -> dict:
    kwargs = dict(numeric=NUMERIC, categorical=CATEGORICAL, sample_size=50_000, seed=42, drift_share=0.5)
    kwargs.update(overrides)
    return compare(ref, cur, **kwargs).summary


@pytest.fixture(scope="module")
def same() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two random halves of one sample from one distribution."""
    whole = _frame(np.random.default_rng(0), 2 * N)
    half = whole.sample(frac=0.5, random_state=1)
    return half, whole.drop(half.index)


@pytest.fixture(scope="module")
def shifted() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tenure shifted by two standard deviations and the contract mix turned around."""
    ref = _frame(np.random.default_rng(1), N)
    cur = _frame(np.random.default_rng(2), N, id_start=N, tenure_shift=20.0, contract_p=(0.1, 0.2, 0.7))
    return ref, cur


@pytest.fixture(scope="module")
def shifted_summary(shifted) -> dict:
    return _summary(*shifted)


def _drifted(summary: dict) -> set[str]:
    return {col for col, entry in summary["columns"].items() if entry["drifted"]}


def test_no_drift_between_halves_of_one_distribution(same):
    summary = _summary(*same)
    assert _drifted(summary) == set()
    assert summary["columns_drifted"] == 0
    assert summary["share_drifted"] == 0.0
    assert summary["dataset_drift"] is False
    assert summary["columns_total"] == len(COLUMNS)
    assert summary["reference_rows"] == N and summary["current_rows"] == N
    # default stattests for > 1,000 reference rows: Wasserstein for numeric, Jensen-Shannon otherwise
    assert summary["columns"]["tenure"]["method"] == "Wasserstein distance (normed)"
    assert summary["columns"]["contract"]["method"] == "Jensen-Shannon distance"
    assert summary["columns"]["constant_num"]["score"] == 0.0
    assert summary["columns"]["constant_cat"]["score"] == 0.0


def test_strong_shift_flags_exactly_the_shifted_columns(shifted_summary):
    summary = shifted_summary
    assert _drifted(summary) == {"tenure", "contract"}
    tenure = summary["columns"]["tenure"]
    assert tenure["score"] > tenure["threshold"] > 0
    assert summary["columns_drifted"] == 2
    assert summary["share_drifted"] == round(2 / len(COLUMNS), 6)
    assert summary["dataset_drift"] is False  # 2/7 < 0.5


def test_columns_drifted_agrees_with_per_column_flags(same, shifted_summary):
    for summary in (_summary(*same), shifted_summary):
        flags = [entry["drifted"] for entry in summary["columns"].values()]
        assert summary["columns_drifted"] == sum(flags)
        assert summary["share_drifted"] == round(sum(flags) / len(flags), 6)


def test_dataset_drift_uses_drift_share(shifted):
    assert _summary(*shifted, drift_share=2 / len(COLUMNS))["dataset_drift"] is True   # share == threshold
    assert _summary(*shifted, drift_share=0.3)["dataset_drift"] is False
    with pytest.raises(ChurnError, match="drift_share"):
        _summary(*shifted, drift_share=0.0)


def test_summary_is_deterministic_and_json_ready(shifted, shifted_summary):
    again = _summary(*shifted)
    assert again == shifted_summary
    text = json.dumps(shifted_summary, sort_keys=True, allow_nan=False)
    assert text == json.dumps(again, sort_keys=True, allow_nan=False)
    assert json.loads(text) == shifted_summary
    assert list(shifted_summary["columns"]) == sorted(COLUMNS)
    for entry in shifted_summary["columns"].values():
        assert set(entry) == {"method", "score", "threshold", "drifted"}
        assert isinstance(entry["score"], float) and isinstance(entry["drifted"], bool)
        assert entry["score"] == round(entry["score"], 6)


def test_sampling_caps_rows_and_is_seeded(shifted):
    ref, cur = shifted
    small = _summary(ref, cur, sample_size=500)
    assert small["sample_size"] == 500
    assert small["reference_rows"] == 500 and small["current_rows"] == 500
    # evidently saw the sample: with <= 1,000 reference rows it switches to p-value tests
    assert small["columns"]["tenure"]["method"] == "K-S p_value"
    assert small["columns"]["contract"]["method"] == "chi-square p_value"
    assert _drifted(small) == {"tenure", "contract"}
    assert _summary(ref, cur, sample_size=500) == small
    other_seed = _summary(ref, cur, sample_size=500, seed=43)
    # (tenure's p-value is 0.0 for any seed; an undrifted column shows the different sample)
    assert other_seed["columns"]["monthly_charges"]["score"] != small["columns"]["monthly_charges"]["score"]
    # a cap above the frame size keeps every row
    big = _summary(ref.iloc[:800], cur, sample_size=1000)
    assert big["reference_rows"] == 800 and big["current_rows"] == 1000 and big["sample_size"] == 1000


def test_id_and_label_columns_are_ignored(shifted, shifted_summary):
    ref, cur = shifted
    assert "customer_id" not in shifted_summary["columns"]
    assert "churned" not in shifted_summary["columns"]
    # the IDs do not overlap at all, yet dropping them (or scrambling them) changes nothing
    assert _summary(ref.drop(columns=["customer_id", "churned"]), cur) == shifted_summary
    cur_text_ids = cur.assign(customer_id=[f"C{i:07d}" for i in range(len(cur))])
    assert _summary(ref, cur_text_ids) == shifted_summary


def test_missing_column_or_empty_frame_raises(shifted):
    ref, cur = shifted
    with pytest.raises(ChurnError, match=r"reference.*tenure"):
        _summary(ref.drop(columns=["tenure"]), cur)
    with pytest.raises(ChurnError, match=r"current.*contract"):
        _summary(ref, cur.drop(columns=["contract"]))
    with pytest.raises(ChurnError, match=r"current.*empty"):
        _summary(ref, cur.iloc[:0])
    with pytest.raises(ChurnError, match=r"reference.*empty"):
        compare(ref.iloc[:0], cur, numeric=NUMERIC, categorical=CATEGORICAL, sample_size=100, seed=0)


def test_bad_column_lists_raise(shifted):
    ref, cur = shifted
    with pytest.raises(ChurnError, match="more than once"):
        _summary(ref, cur, categorical=[*CATEGORICAL, "tenure"])
    with pytest.raises(ChurnError, match="numeric column 'contract'"):
        _summary(ref, cur, numeric=[*NUMERIC, "contract"], categorical=["payment_method"])
    with pytest.raises(ChurnError, match="no non-missing values"):
        _summary(ref.assign(total_charges=np.nan), cur)


def test_html_report_written_atomically(tmp_path, shifted):
    ref, cur = shifted
    target = tmp_path / "reports" / "drift_report.html"
    compare(ref, cur, numeric=NUMERIC, categorical=CATEGORICAL, sample_size=1000, seed=42).write_html(target)
    html = target.read_text(encoding="utf-8")
    assert len(html) > 1000
    assert "<html" in html.lower()
    assert "tenure" in html and "customer_id" not in html
    assert [p.name for p in target.parent.iterdir()] == ["drift_report.html"]  # no temp file left behind


def test_one_evidently_run_gives_the_summary_and_the_html(tmp_path, shifted, monkeypatch):
    """The evaluate stage and the PR report take both outputs from one run: computing the
    columns again for the HTML would double the stage's evidently time."""
    import evidently.core.report as evidently_report

    ref, cur = shifted
    runs = []
    original = evidently_report.Report.run

    def counting_run(self, *args, **kwargs):
        runs.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(evidently_report.Report, "run", counting_run)
    comparison = compare(ref, cur, numeric=NUMERIC, categorical=CATEGORICAL, sample_size=50_000, seed=42,
                         drift_share=0.5)
    comparison.write_html(tmp_path / "drift.html")
    assert len(runs) == 1
    monkeypatch.setattr(evidently_report.Report, "run", original)
    assert comparison.summary == _summary(ref, cur)
    assert comparison.summary["columns"]["tenure"]["drifted"] is True
    html = (tmp_path / "drift.html").read_text(encoding="utf-8")
    assert "tenure" in html and "contract" in html


def test_module_imports_without_evidently():
    code = (
        "import sys, churn.monitoring.drift as d\n"
        "assert callable(d.compare)\n"
        "print('evidently' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
