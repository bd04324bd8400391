"""`benchmarks.measure.run`: a command's figures are its own, not the suite's."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from benchmarks import measure


def _env():
    return dict(os.environ)


def test_peak_memory_is_the_commands_not_the_suites(tmp_path):
    # The suite (this process) touches 400 MB and frees it, as it does with a simulated
    # table; a command started afterwards must not report that as its own peak.
    held = np.ones(50_000_000)
    del held
    small = measure.run([sys.executable, "-c", "pass"], cwd=tmp_path, env=_env())
    large = measure.run([sys.executable, "-c", "import numpy as np; a = np.ones(40_000_000); a += 1"],
                        cwd=tmp_path, env=_env())
    assert small.peak_mb < 150
    assert 320 < large.peak_mb < 320 + 150  # 320 MB of array, plus the interpreter and numpy
    assert large.cpu_s > 0 and large.wall_s > 0
    assert not list(tmp_path.glob(".bench.*"))  # the figures and output files are cleaned up


def test_output_and_failures_are_reported(tmp_path):
    done = measure.run([sys.executable, "-c", "print('out'); import sys; print('err', file=sys.stderr)"],
                       cwd=tmp_path, env=_env())
    assert (done.stdout, done.stderr) == ("out\n", "err\n")
    with pytest.raises(measure.CommandFailed, match="exited with 3"):
        measure.run([sys.executable, "-c", "import sys; print('why'); sys.exit(3)"], cwd=tmp_path, env=_env())
    with pytest.raises(measure.CommandFailed, match="did not finish in 1 s"):
        measure.run([sys.executable, "-c", "import time; time.sleep(30)"], cwd=tmp_path, env=_env(), timeout=1)
    assert not list(tmp_path.glob(".bench.*"))


ORPHAN = """
import os, time
if os.fork() == 0:  # the child outlives its parent, as a fork server's workers do
    time.sleep(0.3)
    import numpy as np
    a = np.ones(40_000_000)  # 320 MB
    end = time.process_time() + 0.5
    while time.process_time() < end:
        a += 1
    os._exit(0)
"""


def test_an_orphaned_descendant_is_counted(tmp_path):
    # Its parent never waits for it, so without the launcher reaping it, its CPU and its
    # memory would be missing from the figures.
    measured = measure.run([sys.executable, "-c", ORPHAN], cwd=tmp_path, env=_env())
    assert measured.cpu_s >= 0.5
    assert measured.peak_mb > 320
