"""The DVC-tracked raw snapshot: create it, and make it available on a fresh clone.

A simulated snapshot records the settings that made it in its .dvc file (`meta`), so a
clone whose remote does not hold the file rebuilds it bit-for-bit and checks the md5.
A refreshed snapshot (`churn refresh`, meta `source: churn refresh`) records where it came
from, but the inference log it was built from is not part of the repository: it is only
ever pulled, and a clone without the remote gets an error saying so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from churn.config import DriftScenario, Params
from churn.errors import ChurnError
from churn.io import md5_file, write_text
from churn.tools import run_tool

SIMULATOR_SOURCE = "churn simulate"
# Built from the inference log (churn.data.refresh): it can only be pulled, never recreated.
REFRESH_SOURCE = "churn refresh"


def dvc_file(raw: Path) -> Path:
    return raw.with_name(raw.name + ".dvc")


def _dvc(*args: str) -> subprocess.CompletedProcess[str]:
    result = run_tool(["dvc", *args])
    assert result is not None  # run_tool returns None only with missing_ok
    return result


def simulated_meta(n_customers: int, seed: int, drift: DriftScenario | None) -> dict[str, Any]:
    meta = {"source": SIMULATOR_SOURCE, "n_customers": n_customers, "seed": seed}
    if drift is not None:
        meta["drift"] = drift.model_dump()
    return meta


def simulate_to(path: Path, meta: dict[str, Any]) -> None:
    from churn.data.simulate import simulate, write_snapshot

    drift = DriftScenario(**meta["drift"]) if meta.get("drift") else None
    write_snapshot(simulate(meta["n_customers"], meta["seed"], drift), path)


def track(raw: Path, meta: dict[str, Any] | None) -> None:
    """`dvc add` the file, record how it was made, and push it to the default remote."""
    result = _dvc("add", "--quiet", str(raw))
    if result.returncode:
        raise ChurnError(f"`dvc add {raw}` failed: {result.stderr.strip()}")
    path = dvc_file(raw)
    tracked = yaml.safe_load(path.read_text())
    if meta is None:
        tracked.pop("meta", None)
    else:
        # The md5 marks which content these settings made: DVC keeps `meta` when the file
        # is later replaced and re-added, and then the settings no longer describe it.
        tracked["meta"] = {**meta, "md5": tracked["outs"][0]["md5"]}
    write_text(path, yaml.safe_dump(tracked, sort_keys=False))
    push = _dvc("push", "--quiet", str(path))
    if push.returncode:
        print(f"warning: `dvc push {path}` failed, the snapshot is only in the local cache: {push.stderr.strip()}")


def own_data_meta(source: str) -> dict[str, Any]:
    """Provenance of a snapshot that did not come from the simulator."""
    if not source.strip():
        raise ChurnError("say where the data came from: --source 'IBM Telco download, 2026-11-29'")
    return {"source": source.strip()}


def read_tracked(raw: Path) -> tuple[str, dict[str, Any]]:
    path = dvc_file(raw)
    if not path.is_file():
        raise ChurnError(
            f"{path} not found: track a raw snapshot first, with `churn simulate --track` "
            f"or `dvc add {raw}`."
        )
    try:
        tracked = yaml.safe_load(path.read_text())
        return tracked["outs"][0]["md5"], tracked.get("meta") or {}
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        raise ChurnError(f"{path} is not a valid .dvc file: restore it with `git checkout {path}`.") from None


def ensure_raw(params: Params) -> str:
    """Make the tracked snapshot present in the workspace; return how it got there."""
    raw = params.paths.raw
    expected_md5, meta = read_tracked(raw)
    if raw.is_file():
        if md5_file(raw) == expected_md5:
            return "present"
        # A file the user put there is never overwritten: `dvc repro` tracks it, and
        # `dvc checkout` brings the tracked version back on request.
        return (
            "modified in the workspace and kept (`dvc repro` tracks it; "
            f"`dvc checkout {dvc_file(raw)}` restores the tracked version)"
        )
    pulled = _dvc("pull", "--quiet", str(dvc_file(raw)))
    if pulled.returncode == 0 and raw.is_file() and md5_file(raw) == expected_md5:
        return "pulled from the DVC remote"
    if meta.get("source") == REFRESH_SOURCE and meta.get("md5") == expected_md5:
        window = meta.get("log_window") or {}
        raise ChurnError(
            f"{raw} (md5 {expected_md5}) was built by `churn refresh` from the inference log "
            f"({window.get('start', '?')} to {window.get('end', '?')}) and is in no configured DVC remote; "
            "it cannot be recreated from settings: configure the remote it was pushed to "
            f"(DVC_REMOTE_URL in CI) and run `dvc pull`. ({pulled.stderr.strip()[:300]})"
        )
    if meta.get("source") != SIMULATOR_SOURCE or meta.get("md5") != expected_md5:
        source = meta.get("source") if meta.get("md5") == expected_md5 else None
        made_by = f"it came from {source!r}" if source else "its .dvc file does not say where it came from"
        detail = pulled.stderr.strip()[:300]
        raise ChurnError(
            f"{raw} (md5 {expected_md5}) is in no configured DVC remote, and {made_by}, so it cannot "
            "be recreated here. The default remote `.dvc-storage/` lives inside the working copy "
            "that pushed it: data of your own reaches a clone only through a shared remote "
            "(`dvc remote add -d storage s3://bucket/churn`, then `dvc push` where the file is)."
            + (f" DVC said: {detail}" if detail else "")
        )
    simulate_to(raw, meta)
    actual = md5_file(raw)
    if actual != expected_md5:
        raise ChurnError(
            f"recreated {raw} from its recorded settings but got md5 {actual}, not {expected_md5}: "
            "the simulator code changed since the snapshot was made. Re-track it with "
            "`churn simulate --track` and commit the .dvc file."
        )
    # Into the cache (and the remote), so the next clone on this machine pulls it.
    commit = _dvc("commit", "--force", "--quiet", str(dvc_file(raw)))
    if commit.returncode == 0:
        _dvc("push", "--quiet", str(dvc_file(raw)))
    return "recreated bit-for-bit by the simulator"
