"""Bad raw data stops `dvc repro` at prep, names the problem, and loses nothing."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from churn.io import md5_file
from tests.e2e.conftest import ran_stages

pytestmark = pytest.mark.e2e

RAW = "data/raw/telco_churn.csv"


def _edit(frame: pd.DataFrame, case: str) -> pd.DataFrame:
    frame = frame.copy()
    if case == "missing column":
        return frame.drop(columns=["Contract"])
    if case == "wrong type":
        frame.loc[[0, 1], "tenure"] = "twelve"
    elif case == "negative tenure":
        frame.loc[0, "tenure"] = "-5"
    elif case == "duplicate id":
        frame.loc[1, "customerID"] = frame.loc[0, "customerID"]
    elif case == "unknown category":
        frame.loc[0, "PaymentMethod"] = "Bitcoin"
    elif case == "bad label":
        frame.loc[0, "Churn"] = "Maybe"
    return frame


CASES = {
    # case: what the message must name (column, check wording, an example value)
    "missing column": ("Contract", "column is missing", None),
    "wrong type": ("tenure", "wrong type", "'twelve'"),
    "negative tenure": ("tenure", "below the minimum", "-5"),
    "duplicate id": ("customerID", "duplicate values", None),
    "unknown category": ("PaymentMethod", "unknown value", "'Bitcoin'"),
    "bad label": ("Churn", "unknown value", "'Maybe'"),
    "empty file": ("telco_churn.csv", "is empty", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_raw_data_fails_at_prep_and_is_restorable(reproduced, case):
    path = reproduced.path / RAW
    lock_before = reproduced.lock()
    prep_outs = {out["path"]: out["md5"] for out in lock_before["stages"]["prep"]["outs"]}
    good = pd.read_csv(path, dtype=str, keep_default_na=False)
    if case == "empty file":
        path.write_text("")
    else:
        buffer = io.StringIO()
        _edit(good, case).to_csv(buffer, index=False)
        path.write_text(buffer.getvalue())

    result = reproduced.repro(check=False)

    try:
        assert result.returncode != 0
        assert ran_stages(result.stdout) == {"prep"}, result.stdout
        column, check, example = CASES[case]
        message = result.stderr + result.stdout
        failure_lines = [line for line in message.splitlines() if column in line and check in line]
        assert failure_lines, message
        if example:
            assert example in failure_lines[0], failure_lines
        assert "Traceback" not in message
        # No partial outputs: each prep output is absent or still the locked version.
        for out, md5 in prep_outs.items():
            target = reproduced.path / out
            assert not target.exists() or md5_file(target) == md5, out
        assert reproduced.lock() == lock_before, "a failed run must not rewrite dvc.lock"
    finally:
        # `dvc repro` re-adds a changed data source, so its .dvc file comes back from git.
        reproduced.git("checkout", "--", RAW + ".dvc")
        reproduced.run("dvc", "checkout", "--force")
    raw_md5 = next(dep["md5"] for dep in lock_before["stages"]["prep"]["deps"] if dep["path"] == RAW)
    assert md5_file(path) == raw_md5
    status = reproduced.run("dvc", "status").stdout
    assert "up to date" in status, status
