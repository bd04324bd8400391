"""External tools (git, dvc) run as subprocesses, with one way to say they are missing."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from churn.errors import ChurnError

FIXES = {
    "dvc": "run `make run`, or activate .venv first",
    "git": "install git",
}


def run_tool(
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    text: bool = True,
    missing_ok: bool = False,
) -> subprocess.CompletedProcess[Any] | None:
    """Run a tool and capture its output; the caller reads returncode.

    A tool that is not on PATH raises ChurnError naming the fix (or returns None with
    `missing_ok`); one that overruns `timeout` raises ChurnError.
    """
    try:
        return subprocess.run(
            list(args), cwd=cwd, env=None if env is None else dict(env), capture_output=True, text=text, timeout=timeout
        )
    except FileNotFoundError:
        if missing_ok:
            return None
        fix = FIXES.get(args[0], f"install {args[0]}")
        raise ChurnError(f"`{args[0]}` is not on PATH: {fix}.") from None
    except subprocess.TimeoutExpired:
        if missing_ok:
            return None
        raise ChurnError(f"`{' '.join(args)}` did not finish within {timeout:g} s.") from None
