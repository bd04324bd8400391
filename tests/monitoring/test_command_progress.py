"""`churn monitor` shows its progress (issue 13): a bar in a terminal, plain phase lines when
piped, nothing with --quiet; the tables are the same whichever way it ran."""

from __future__ import annotations

import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn import progress
from tests.conftest import REPO_ROOT
from tests.helpers import run_command

from .conftest import World, world_params, write_baseline

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but \t and \n
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ENVIRONMENT = ("CI", "TERM", progress.QUIET_ENV, progress.MODE_ENV)


MODES = {"terminal": ((), True), "piped": ((), False), "quiet": (("--quiet",), False)}


@pytest.fixture(scope="module")
def runs(params, fitted, tmp_path_factory) -> dict[str, tuple[str, pd.DataFrame, pd.DataFrame]]:
    """One two-day log, monitored three times at once (own state and tables each): in a
    terminal, piped, and piped with --quiet. Per mode: the output and the two tables."""
    root = tmp_path_factory.mktemp("monitor-progress")
    baseline = write_baseline(fitted[0], params, root / "baseline.parquet", rows=1500)
    world = World(fitted[0], world_params(params, root, baseline), root)
    for day in range(2):
        world.log_day(day, 120)
    files = {}
    for mode in MODES:
        mine = world_params(params, root / mode, baseline)
        mine = mine.model_copy(update={"paths": mine.paths.model_copy(update={"inference_log": root / "log"})})
        files[mode] = root / f"{mode}.yaml"
        files[mode].write_text(yaml.safe_dump(mine.model_dump(mode="json", by_alias=True)))
    with ThreadPoolExecutor(len(MODES)) as pool:  # the commands wait on their own processes
        outputs = dict(zip(MODES, pool.map(lambda mode: run_cli(files[mode], *MODES[mode][0], terminal=MODES[mode][1]),
                                           MODES), strict=True))
    out = {}
    for mode, text in outputs.items():
        assert "monitor: 3 of 3 windows recomputed from 240 rows" in ESCAPE.sub("", text), text
        tables = root / mode / "mon"
        out[mode] = (text, pd.read_parquet(tables / "profile_metrics.parquet"), pd.read_parquet(tables / "drift_metrics.parquet"))
    return out


def same_tables(runs, mode: str) -> None:
    """Progress never changes what is computed."""
    pd.testing.assert_frame_equal(runs[mode][1], runs["quiet"][1])
    pd.testing.assert_frame_equal(runs[mode][2], runs["quiet"][2])


def run_cli(params_file: Path, *options: str, terminal: bool) -> str:
    """`churn [options] monitor --no-drill-down`'s stdout and stderr together, from a
    pseudo-terminal or a pipe (as tests/test_progress.py runs `churn prep`)."""
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT}
    env.update(TERM="xterm-256color", COLUMNS="120", PYTHONPATH=str(REPO_ROOT / "src"))
    command = [sys.executable, "-m", "churn.cli", "--params", str(params_file), *options, "monitor", "--no-drill-down"]
    code, out = run_command(command, terminal=terminal, env=env, timeout=120)
    assert code == 0, out
    return out


def test_monitor_in_a_terminal_shows_a_bar_of_windows(runs):
    out = runs["terminal"][0]
    assert "\x1b[" in out and "━" in out
    text = ESCAPE.sub("", out)
    assert "monitoring windows" in text and "of 3 windows" in text
    assert re.search(r"churn: monitoring windows: 3 of 3 windows in \d+\.\d s", text), text
    same_tables(runs, "terminal")


def test_monitor_piped_prints_plain_phase_lines(runs):
    out = runs["piped"][0]
    assert not CONTROL.search(out), repr(out)
    assert "━" not in out
    lines = out.splitlines()
    assert any(re.fullmatch(r"churn: reading the attached labels: 0 labelled ids in \d+\.\d s", line) for line in lines), out
    assert any(re.fullmatch(
        r"churn: monitoring windows: 3 of 3 windows in \d+\.\d s \([\d,.]+ windows/s\); 240 rows read", line
    ) for line in lines), out
    assert any(line.startswith("churn: drift against the baseline") for line in lines), out
    same_tables(runs, "piped")


def test_monitor_quiet_shows_neither(runs):
    out = runs["quiet"][0]
    assert "churn: " not in out and "━" not in out and "\x1b[" not in out
    assert out.startswith("monitor: 3 of 3 windows recomputed")
