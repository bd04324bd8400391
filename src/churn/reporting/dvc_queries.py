"""What changed against a base revision, asked of DVC and git."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from churn import progress
from churn.errors import ChurnError
from churn.tools import run_tool


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    result = run_tool(args)
    assert result is not None  # run_tool returns None only with missing_ok
    return result


def resolve(ref: str) -> str:
    """The commit of `ref`, or a clear error (CI must fetch the base with full history)."""
    result = _run("git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if result.returncode:
        raise ChurnError(
            f"base ref {ref!r} is not in this clone: fetch it (`git fetch origin <branch>`; in CI "
            "check out with fetch-depth: 0)."
        )
    return str(result.stdout).strip()


def dvc_json(*args: str) -> dict[str, Any]:
    result = _run("dvc", *args, "--json")
    if result.returncode:
        raise ChurnError(f"`dvc {' '.join(args)}` failed: {result.stderr.strip()[:500]}")
    text = result.stdout.strip()
    loaded: dict[str, Any] = json.loads(text) if text else {}
    return loaded


def dvc_markdown(*args: str) -> str:
    result = _run("dvc", *args, "--md")
    if result.returncode:
        raise ChurnError(f"`dvc {' '.join(args)}` failed: {result.stderr.strip()[:500]}")
    return str(result.stdout).strip()


def params_diff(base: str) -> tuple[dict[str, Any], str]:
    changes = dvc_json("params", "diff", base)
    return changes, (dvc_markdown("params", "diff", base) if changes else "")


def metrics_diff(base: str) -> dict[str, Any]:
    """{file: {metric: {"old", "new", "diff"}}}, unchanged metrics included."""
    return dvc_json("metrics", "diff", base, "--all")


def data_diff(base: str) -> dict[str, Any]:
    return dvc_json("diff", base)


def default_remote_url() -> str | None:
    name = _run("dvc", "config", "core.remote").stdout.strip()
    if not name:
        return None
    for line in _run("dvc", "remote", "list").stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == name:
            return parts[1]
    return None


def git_show(path: str | Path, base: str) -> bytes | None:
    result = run_tool(["git", "show", f"{base}:{path}"], timeout=120, text=False)
    return result.stdout if result is not None and result.returncode == 0 else None


def dvc_read(path: str | Path, base: str, errors: list[str] | None = None) -> bytes | None:
    """A DVC-tracked file as it was at `base`, from the cache or the remote; None if that
    fails, with the reason appended to `errors` (missing there, no remote, no access)."""
    import dvc.api

    try:
        with dvc.api.open(str(path), rev=base, mode="rb") as handle:
            return bytes(handle.read())
    except Exception as exc:  # DVC raises many types here; the caller reports the reason
        if errors is not None:
            errors.append(f"{exc.__class__.__name__}: {str(exc).strip()[:200]}")
        return None


def row_count(path: str, data: bytes | None) -> int | None:
    if data is None:
        return None
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(io.BytesIO(data)).metadata.num_rows)
    if path.endswith(".csv"):
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        return max(lines - 1, 0)
    return None




def rebuild_base_prep(base: str, paths: list[str]) -> tuple[dict[str, bytes], str | None]:
    """The base's prep outputs where no cache or remote holds them (a CI job without a
    shared DVC remote, a fork): check the base out in a temporary worktree that shares
    this repository's DVC cache, get its raw snapshot (pulled, or recreated from its
    recorded settings), run its prep stage there and read `paths` back.

    Returns ({path: bytes}, None) or ({}, why it could not)."""
    cache = _run("dvc", "cache", "dir")
    if cache.returncode:
        return {}, f"no DVC cache: {cache.stderr.strip()[:200]}"
    with tempfile.TemporaryDirectory(prefix="churn-base-") as tmp:
        worktree = Path(tmp) / "base"
        with progress.phase(f"checking {base} out in a temporary worktree"):
            added = _run("git", "worktree", "add", "--detach", "--quiet", str(worktree), base)
        if added.returncode:
            return {}, f"cannot check out {base}: {added.stderr.strip()[:200]}"
        try:
            steps = (
                ("dvc", "config", "--local", "cache.dir", cache.stdout.strip()),
                ("churn", "ensure-data"),
                ("dvc", "repro", "--single-item", "prep"),
            )
            # The base's own code, not this checkout's: a change to prep must show as drift.
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(worktree / "src"), os.environ.get("PYTHONPATH")]))}
            for step in steps:
                try:
                    # One line per step: `dvc repro prep` at the base can take minutes.
                    with progress.phase(f"{base}: {' '.join(step[:2])}"):
                        result = run_tool(step, cwd=worktree, env=env, timeout=900)
                except ChurnError as exc:
                    return {}, str(exc)
                assert result is not None
                if result.returncode:
                    return {}, f"`{' '.join(step)}` failed: {(result.stderr or result.stdout).strip()[-300:]}"
            return {path: (worktree / path).read_bytes() for path in paths if (worktree / path).is_file()}, None
        finally:
            _run("git", "worktree", "remove", "--force", str(worktree))
            _run("git", "worktree", "prune")


class BaseFiles:
    """DVC-tracked files as they were at the base: from the cache or remote, or rebuilt."""

    def __init__(self, base: str, rebuild_paths: list[str], probe: str):
        self.base = base
        self.rebuilt: dict[str, bytes] = {}
        self.note: str | None = None
        errors: list[str] = []
        with progress.phase(f"looking for the base's {probe} in the DVC cache or remote") as looking:
            found = dvc_read(probe, base, errors) is not None
            looking.done("found" if found else "not there")
        if not found:
            why = errors[0] if errors else "unknown"
            with progress.phase(f"rebuilding the prep outputs of {base} in a temporary worktree"):
                self.rebuilt, problem = rebuild_base_prep(base, rebuild_paths)
            if problem is None and probe in self.rebuilt:
                self.note = (
                    f"The base's data could not be read from a DVC cache or remote ({why}), so it was "
                    "rebuilt here: the base's raw snapshot (pulled or recreated from its recorded settings) "
                    "through the base's own prep stage."
                )
            else:
                self.note = f"The base's data could not be read ({why}) nor rebuilt ({problem})."

    def read(self, path: str | Path) -> bytes | None:
        data = dvc_read(path, self.base)
        return data if data is not None else self.rebuilt.get(str(path))

    def read_parquet(self, path: str | Path) -> pd.DataFrame | None:
        data = self.read(path)
        return pd.read_parquet(io.BytesIO(data)) if data is not None else None
