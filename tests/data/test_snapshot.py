"""churn.data.snapshot in a temporary git + DVC repository with a local remote.

`track` and `ensure_raw` call `dvc` in the process's working directory, so each test
changes into the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from churn.config import DriftScenario, load_params
from churn.data import snapshot
from churn.data.simulate import simulate, write_snapshot
from churn.errors import ChurnError
from churn.io import md5_file
from tests.conftest import PARAMS_FILE

BIN = Path(sys.executable).parent
RAW = Path("data/raw/telco_churn.csv")
ROWS, SEED = 300, 5


def _run(*args: str, cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """An empty git + DVC repository with a local default remote; the cwd for the test."""
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "repo"
    path.mkdir()
    _run("git", "init", "-q", cwd=path)
    _run("dvc", "init", "-q", cwd=path)
    _run("dvc", "remote", "add", "-d", "r", str(tmp_path / "remote"), cwd=path)
    (path / RAW.parent).mkdir(parents=True)
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def params():
    """The project's params; paths are relative, so they resolve inside the repository."""
    loaded = load_params(PARAMS_FILE)
    assert loaded.paths.raw == RAW
    return loaded


@pytest.fixture
def tracked(repo):
    """A simulated snapshot, tracked with its settings and pushed."""
    meta = snapshot.simulated_meta(ROWS, SEED, None)
    snapshot.simulate_to(RAW, meta)
    snapshot.track(RAW, meta)
    return md5_file(RAW)


def remote_object(repo: Path, md5: str) -> Path:
    return repo.parent / "remote" / "files" / "md5" / md5[:2] / md5[2:]


def empty_cache_and_remote(repo: Path) -> None:
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(repo.parent / "remote", ignore_errors=True)


def test_track_records_settings_and_pushes(repo, tracked):
    dvc = yaml.safe_load(snapshot.dvc_file(RAW).read_text())
    assert dvc["outs"][0]["md5"] == tracked
    assert dvc["meta"] == {"source": "churn simulate", "n_customers": ROWS, "seed": SEED, "md5": tracked}
    assert remote_object(repo, tracked).is_file()
    assert remote_object(repo, tracked).read_bytes() == RAW.read_bytes()
    # The raw file is git-ignored; the .dvc file is what gets committed.
    assert "telco_churn.csv" in (repo / RAW.parent / ".gitignore").read_text()


def test_present(repo, tracked, params):
    assert snapshot.ensure_raw(params) == "present"


def test_pulled_when_the_file_is_missing(repo, tracked, params):
    RAW.unlink()
    assert snapshot.ensure_raw(params) == "pulled from the DVC remote"
    assert md5_file(RAW) == tracked


def test_pulled_from_the_remote_when_the_cache_is_empty_too(repo, tracked, params):
    RAW.unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    assert snapshot.ensure_raw(params) == "pulled from the DVC remote"
    assert md5_file(RAW) == tracked


def test_recreated_bit_for_bit_when_no_remote_holds_it(repo, tracked, params):
    expected = RAW.read_bytes()
    RAW.unlink()
    empty_cache_and_remote(repo)
    assert snapshot.ensure_raw(params).startswith("recreated bit-for-bit")
    assert md5_file(RAW) == tracked
    assert RAW.read_bytes() == expected
    # Pushed again, so the next clone pulls it instead of recreating it.
    assert remote_object(repo, tracked).is_file()
    RAW.unlink()
    assert snapshot.ensure_raw(params) == "pulled from the DVC remote"


def test_own_data_in_no_remote_is_an_error(repo, tracked, params):
    # A user replaces the simulated snapshot with their own file and `dvc add`s it: DVC
    # keeps `meta`, whose settings no longer describe the file.
    own = simulate(ROWS, SEED + 1)
    write_snapshot(own, RAW)
    _run("dvc", "add", "-q", str(RAW), cwd=repo)
    own_md5 = md5_file(RAW)
    tracked_now = yaml.safe_load(snapshot.dvc_file(RAW).read_text())
    assert tracked_now["outs"][0]["md5"] == own_md5 != tracked
    assert (tracked_now.get("meta") or {}).get("md5") != own_md5
    RAW.unlink()
    empty_cache_and_remote(repo)
    with pytest.raises(ChurnError) as raised:
        snapshot.ensure_raw(params)
    message = str(raised.value)
    assert "no configured DVC remote" in message
    assert own_md5 in message
    assert "does not say where it came from" in message
    assert "shared remote" in message and not message.rstrip().endswith("()")
    # Nothing was recreated from settings that describe another file.
    assert not RAW.exists()


def test_own_data_tracked_with_its_source(repo, tracked, params):
    """`churn track` replaces the simulator's settings with the real provenance, and a clone
    without the file is told where it came from and how to share it."""
    write_snapshot(simulate(ROWS, SEED + 1), RAW)
    snapshot.track(RAW, snapshot.own_data_meta("IBM Telco download"))
    own_md5 = md5_file(RAW)
    recorded = yaml.safe_load(snapshot.dvc_file(RAW).read_text())
    assert recorded["meta"] == {"source": "IBM Telco download", "md5": own_md5}
    assert remote_object(repo, own_md5).is_file()  # pushed to the default remote
    RAW.unlink()
    empty_cache_and_remote(repo)
    with pytest.raises(ChurnError) as raised:
        snapshot.ensure_raw(params)
    assert "it came from 'IBM Telco download'" in str(raised.value)
    assert not RAW.exists()


def test_own_data_needs_a_source():
    with pytest.raises(ChurnError, match="--source"):
        snapshot.own_data_meta("  ")


def test_meta_md5_mismatch_is_an_error(repo, tracked, params):
    path = snapshot.dvc_file(RAW)
    dvc = yaml.safe_load(path.read_text())
    dvc["meta"]["md5"] = "0" * 32
    path.write_text(yaml.safe_dump(dvc, sort_keys=False))
    RAW.unlink()
    empty_cache_and_remote(repo)
    with pytest.raises(ChurnError, match="in no configured DVC remote"):
        snapshot.ensure_raw(params)
    assert not RAW.exists()


def test_missing_dvc_file(repo, params):
    with pytest.raises(ChurnError) as raised:
        snapshot.ensure_raw(params)
    assert "churn simulate --track" in str(raised.value)
    assert str(snapshot.dvc_file(RAW)) in str(raised.value)


def test_drifted_period_round_trips_bit_for_bit(tmp_path):
    drift = DriftScenario(seed=11, price_increase=0.3, fiber_shift=0.2, month_to_month_shift=0.05, churn_logit_shift=0.7)
    meta = snapshot.simulated_meta(ROWS, SEED, drift)
    assert meta["drift"] == drift.model_dump()
    # Through YAML, as it is stored in the .dvc file.
    stored = yaml.safe_load(yaml.safe_dump({"meta": meta}, sort_keys=False))["meta"]
    first, again, direct = tmp_path / "first.csv", tmp_path / "again.csv", tmp_path / "direct.csv"
    snapshot.simulate_to(first, meta)
    snapshot.simulate_to(again, stored)
    write_snapshot(simulate(ROWS, SEED, drift), direct)
    assert first.read_bytes() == again.read_bytes() == direct.read_bytes()
    # The scenario really is applied: neither the baseline nor the default drift gives these bytes.
    baseline, default = tmp_path / "baseline.csv", tmp_path / "default.csv"
    snapshot.simulate_to(baseline, snapshot.simulated_meta(ROWS, SEED, None))
    snapshot.simulate_to(default, snapshot.simulated_meta(ROWS, SEED, DriftScenario()))
    assert len({md5_file(first), md5_file(baseline), md5_file(default)}) == 3


def test_drifted_snapshot_is_recreated_from_its_dvc_file(repo, params):
    drift = DriftScenario(price_increase=0.25)
    meta = snapshot.simulated_meta(ROWS, SEED, drift)
    snapshot.simulate_to(RAW, meta)
    snapshot.track(RAW, meta)
    expected = md5_file(RAW)
    assert yaml.safe_load(snapshot.dvc_file(RAW).read_text())["meta"]["drift"] == drift.model_dump()
    RAW.unlink()
    empty_cache_and_remote(repo)
    assert snapshot.ensure_raw(params).startswith("recreated bit-for-bit")
    assert md5_file(RAW) == expected


def test_modified_workspace_data_is_kept_not_overwritten(repo, tracked, params):
    # The user's own data, `dvc add`-ed and pushed, so the remote holds it.
    write_snapshot(simulate(ROWS, SEED + 1), RAW)
    _run("dvc", "add", "-q", str(RAW), cwd=repo)
    _run("dvc", "push", "-q", cwd=repo)
    # Then the user drops a new file in place without `dvc add`: it must survive.
    edited = "account,edited\n1,2\n"
    RAW.write_text(edited)
    assert snapshot.ensure_raw(params).startswith("modified in the workspace")
    assert RAW.read_text() == edited
