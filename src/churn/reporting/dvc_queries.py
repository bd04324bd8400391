"""What changed against a base revision, asked of DVC and git."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pandas as pd

from churn.errors import ChurnError


def _run(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise ChurnError(f"`{args[0]}` is not on PATH: run `make install` and use .venv/bin.") from None


def resolve(ref: str) -> str:
    """The commit of `ref`, or a clear error (CI must fetch the base with full history)."""
    result = _run("git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if result.returncode:
        raise ChurnError(
            f"base ref {ref!r} is not in this clone: fetch it (`git fetch origin <branch>`; in CI "
            "check out with fetch-depth: 0)."
        )
    return result.stdout.strip()


def dvc_json(*args: str) -> dict:
    result = _run("dvc", *args, "--json")
    if result.returncode:
        raise ChurnError(f"`dvc {' '.join(args)}` failed: {result.stderr.strip()[:500]}")
    text = result.stdout.strip()
    return json.loads(text) if text else {}


def dvc_markdown(*args: str) -> str:
    result = _run("dvc", *args, "--md")
    if result.returncode:
        raise ChurnError(f"`dvc {' '.join(args)}` failed: {result.stderr.strip()[:500]}")
    return result.stdout.strip()


def params_diff(base: str) -> tuple[dict, str]:
    changes = dvc_json("params", "diff", base)
    return changes, (dvc_markdown("params", "diff", base) if changes else "")


def metrics_diff(base: str) -> dict:
    """{file: {metric: {"old", "new", "diff"}}}, unchanged metrics included."""
    return dvc_json("metrics", "diff", base, "--all")


def data_diff(base: str) -> dict:
    return dvc_json("diff", base)


def git_show(path: str | Path, base: str) -> bytes | None:
    result = subprocess.run(["git", "show", f"{base}:{path}"], capture_output=True, timeout=120)
    return result.stdout if result.returncode == 0 else None


def dvc_read(path: str | Path, base: str) -> bytes | None:
    """A DVC-tracked file as it was at `base`, from the cache or the remote; None if neither
    holds it (the report then says the base copy is unavailable)."""
    import dvc.api

    try:
        with dvc.api.open(str(path), rev=base, mode="rb") as handle:
            return handle.read()
    except Exception:  # any "not there": missing at that revision, not in cache or remote
        return None


def row_count(path: str, data: bytes | None) -> int | None:
    if data is None:
        return None
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
    if path.endswith(".csv"):
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        return max(lines - 1, 0)
    return None


def read_parquet_at(path: str | Path, base: str) -> pd.DataFrame | None:
    data = dvc_read(path, base)
    return pd.read_parquet(io.BytesIO(data)) if data is not None else None
