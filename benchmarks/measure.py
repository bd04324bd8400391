"""Run one command and measure it: wall time, CPU time and peak memory of its process tree.

The command is started by a small launcher process (`python -m benchmarks.measure`), not by
the suite itself. Linux records, when a process calls exec, the high-water mark of the
memory it came from as part of its own peak (`ru_maxrss`); a command started straight from
the suite, which has held a whole simulated table in memory, reported the suite's peak as
its own (every step after the 5M table read showed at least 4 GB). The launcher's memory is
a few MB, so what it reports is the command's.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float  # user + system of the process and every descendant, orphans included
    peak_mb: float  # largest resident set of the process or any descendant
    stdout: str
    stderr: str


class CommandFailed(RuntimeError):
    pass


def run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 7200) -> Measured:
    """Runs `command` under the launcher and reads the figures it wrote."""
    out_path, err_path, figures_path = (cwd / f".bench.{name}" for name in ("stdout", "stderr", "figures"))
    figures_path.unlink(missing_ok=True)
    launcher = [sys.executable, "-m", "benchmarks.measure", str(figures_path), *command]
    launcher_env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent.parent),
                                                                       env.get("PYTHONPATH")]))}
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(launcher, cwd=cwd, env=launcher_env, stdout=out, stderr=err,
                                   start_new_session=True)
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)  # the command and whatever it started
            process.wait()
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    out_path.unlink()
    err_path.unlink()
    if timed_out:
        raise CommandFailed(f"{' '.join(command)} did not finish in {timeout:.0f} s:\n{stderr[-4000:]}")
    if process.returncode != 0:
        raise CommandFailed(f"{' '.join(command)} exited with {process.returncode}:\n{stdout[-2000:]}\n{stderr[-4000:]}")
    figures = json.loads(figures_path.read_text())
    figures_path.unlink()
    return Measured(figures["wall_s"], figures["cpu_s"], figures["peak_mb"], stdout, stderr)


def launch(figures_path: str, command: list[str]) -> int:
    """Starts `command`, waits for it and writes its figures.

    The figures are the launcher's children's rusage: Linux adds to it every descendant
    that was waited for (ru_maxrss is the maximum over them), so a `dvc repro` is measured
    with its stage. A process that outlives its parent (multiprocessing's fork server, and
    through it the workers and side processes it forked) is waited for by nobody in the
    tree; the launcher makes itself the subreaper, so such orphans become its children, and
    waits for them too. Wall time ends when the command itself exits."""
    _become_subreaper()
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, _ = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    _reap_orphans()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = os.waitstatus_to_exitcode(status)
    figures = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}
    Path(figures_path).write_text(json.dumps(figures))
    return code if code >= 0 else 128 - code


_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def _become_subreaper() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed: the figures would miss orphans")


def _reap_orphans(grace_s: float = 30.0) -> None:
    """Wait for the command's orphaned descendants (a fork server ends when its parent has)."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # none left
        if pid == 0:
            time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1], sys.argv[2:]))
