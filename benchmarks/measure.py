"""Run one command and measure it: wall time, CPU time and peak memory of its process tree."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float  # user + system of the process and every descendant it waited for
    peak_mb: float  # largest resident set of the process or any waited-for descendant
    stdout: str
    stderr: str


class CommandFailed(RuntimeError):
    pass


def run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 7200) -> Measured:
    """`wait4` reports the child's own rusage including its reaped descendants (Linux:
    ru_maxrss is the maximum over them), so a `dvc repro` is measured with its stage."""
    out_path, err_path = cwd / ".bench.stdout", cwd / ".bench.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    out_path.unlink()
    err_path.unlink()
    if process.returncode != 0:
        raise CommandFailed(f"{' '.join(command)} exited with {process.returncode}:\n{stdout[-2000:]}\n{stderr[-4000:]}")
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout, stderr)
