"""churn.entry: what every `churn` process sets up first."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("library", ["matplotlib.font_manager", "mlflow.store", "evidently.core"])
def test_libraries_info_lines_stay_out_of_the_commands_output(library):
    # In a child process: logging.basicConfig configures the root logger once per process.
    code = (
        "import logging\n"
        "from churn.entry import configure_process\n"
        "configure_process()\n"
        f"logging.getLogger({library!r}).info('generated new fontManager')\n"
        f"logging.getLogger({library!r}).warning('a real warning')\n"
        "logging.getLogger('churn.prep').info('a line of our own')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CHURN_PROGRESS": "plain"})
    assert done.returncode == 0, done.stderr
    assert "generated new fontManager" not in done.stderr
    assert f"{library}: a real warning" in done.stderr
    assert "churn.prep: a line of our own" in done.stderr


def test_at_exit_garbage_is_finalized_once_then_the_rest_is_frozen():
    # The first handler registered runs last: it sees what churn's handler left.
    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen at the end:', gc.get_freeze_count() > 0))\n"
        "from churn.entry import configure_process\n"
        "configure_process()\n"
        "configure_process()\n"
        "gc.disable()  # only the exit's collection may find the cycle below\n"
        "class Cyclic:\n"
        "    def __del__(self):\n"
        "        print('finalized, frozen:', gc.get_freeze_count() > 0)\n"
        "cycle = Cyclic()\n"
        "cycle.me = cycle\n"
        "del cycle\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["finalized, frozen: False", "frozen at the end: True"]
