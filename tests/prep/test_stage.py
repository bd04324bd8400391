"""The prep stage writes its seven outputs as one set: all new, or all as they were."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from churn.config import load_params
from churn.data.simulate import simulate, write_snapshot
from churn.errors import ChurnError
from churn.prep import stage

OUTPUTS = ("feature_table", "feature_metadata", "label_table", "train_set", "validation_set", "test_set", "prep_report")


def _params(raw: Path, out_dir: Path):
    base = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    paths = base.paths.model_copy(
        update={"raw": raw, **{name: out_dir / f"{name}.out" for name in OUTPUTS}}
    )
    return base.model_copy(update={"paths": paths})


def _raw(seed: int):
    raw = simulate(400, seed)
    raw.loc[:2, "tenure"] = "0"  # three customers not billed yet
    raw.loc[:2, "TotalCharges"] = " "
    return raw


def _snapshot(path: Path, seed: int) -> Path:
    write_snapshot(_raw(seed), path)
    return path


def _outputs(params) -> dict[str, bytes]:
    return {name: Path(getattr(params.paths, name)).read_bytes() for name in OUTPUTS}


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_prep_reports_filled_values_per_column(tmp_path):
    params = _params(_snapshot(tmp_path / "raw.csv", 1), tmp_path / "out")
    report = stage.run(params)
    raw = _raw(1)
    assert report.filled_missing == {"TotalCharges": int((raw["TotalCharges"].str.strip() == "").sum())}
    assert report.filled_missing["TotalCharges"] >= 3


def test_a_failed_write_half_way_replaces_no_output(tmp_path, monkeypatch):
    out = tmp_path / "out"
    params = _params(_snapshot(tmp_path / "raw.csv", 1), out)
    stage.run(params)
    before = _outputs(params)
    _snapshot(params.paths.raw, 2)  # new data: every output would change

    real, calls = stage.write_parquet, []

    def full_disk_on_third_table(path, frame):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, frame)

    monkeypatch.setattr(stage, "write_parquet", full_disk_on_third_table)
    with pytest.raises(ChurnError) as info:
        stage.run(params)
    # Tables were written (to temporary files) beside the failed one: two files are written
    # at a time, and the one under way when the third failed finishes before the set is discarded.
    assert len(calls) >= 3
    message = str(info.value)
    assert "none of them was replaced" in message and "dvc checkout" in message
    assert _outputs(params) == before
    assert _leftovers(out) == []


@pytest.fixture
def tiny_filesystem(tmp_path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    # Enough for some outputs of 400 customers, not for all of them.
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        done = subprocess.run(["umount", str(mount_point)], capture_output=True, text=True)
        if done.returncode != 0:  # busy: a file on it is still open
            subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
            pytest.fail(f"a file on the full filesystem was left open after the failure ({done.stderr.strip()})")


def test_a_full_disk_leaves_no_partial_output_set(tmp_path, tiny_filesystem):
    params = _params(_snapshot(tmp_path / "raw.csv", 1), tiny_filesystem)
    # The full set needs more than the filesystem holds...
    stage.run(_params(params.paths.raw, tmp_path / "roomy"))
    assert sum(len(b) for b in _outputs(_params(params.paths.raw, tmp_path / "roomy")).values()) > 48 * 1024
    with pytest.raises(ChurnError, match="No space left on device"):
        stage.run(params)
    # ...and none of it is there: no output, no temporary file.
    assert sorted(p.name for p in tiny_filesystem.iterdir()) == []
