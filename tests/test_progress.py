"""churn.progress: a live bar in a terminal, plain phase lines in logs, nothing with --quiet.

The first tests drive the module in this process; the last ones run `churn prep` as a real
command under a pseudo-terminal, through a pipe, and with --quiet.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from churn import progress
from tests.conftest import PARAMS_FILE, REPO_ROOT
from tests.helpers import run_command

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but \t and \n
ENVIRONMENT = ("CI", "TERM", progress.QUIET_ENV, progress.MODE_ENV)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    """Each test chooses its own mode from a clean environment."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(progress, "_mode", None)
    yield
    assert progress._bars is None and progress._stages == [], "a display or stage was left open"


def use(monkeypatch, mode: str | None = None, *, terminal: bool = False) -> io.StringIO:
    stream = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    if mode:
        monkeypatch.setenv(progress.MODE_ENV, mode)
    progress.configure()
    return stream


# --- choosing the mode --------------------------------------------------------------------------


def test_a_terminal_gets_bars_unless_ci_or_a_dumb_terminal(monkeypatch):
    assert use(monkeypatch, terminal=True) and progress.mode() == "live"
    monkeypatch.setenv("CI", "true")
    assert progress.configure() == "plain"
    monkeypatch.setenv("CI", "false")  # some runners export CI=false locally
    assert progress.configure() == "live"
    monkeypatch.setenv("TERM", "dumb")
    assert progress.configure() == "plain"


def test_a_pipe_or_file_gets_plain_lines(monkeypatch):
    use(monkeypatch, terminal=False)
    assert progress.mode() == "plain"


def test_quiet_wins_and_is_inherited_by_child_processes(monkeypatch):
    use(monkeypatch, terminal=True)
    assert progress.configure(quiet=True) == "quiet"
    assert os.environ[progress.QUIET_ENV] == "1"
    child = subprocess.run(
        [sys.executable, "-c", "from churn import progress; print(progress.detect_mode())"],
        capture_output=True, text=True, check=True,
    )
    assert child.stdout.strip() == "quiet"


# --- what each mode prints ----------------------------------------------------------------------


def work(step: float = 0.0) -> None:
    with progress.stage("demo"):
        with progress.phase("reading input") as reading:
            reading.done("1,234 rows")
        with progress.task("scoring", total=1000, unit="rows") as scoring:
            for _ in range(4):
                time.sleep(step)
                scoring.advance(250)
            scoring.note("best 0.8412")
        progress.did("everything")


def test_plain_mode_prints_one_line_per_phase_with_counts_time_and_rate(monkeypatch, capsys):
    stream = use(monkeypatch, "plain")
    work()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("churn: reading input: 1,234 rows in ") and lines[0].endswith(" s")
    assert re.fullmatch(r"churn: scoring: 1,000 of 1,000 rows in \d+\.\d s \([\d,]+ rows/s\); best 0\.8412", lines[1])
    assert re.fullmatch(r"churn: demo done in \d+\.\d s: everything", lines[2])
    assert len(lines) == 3
    assert not CONTROL.search(stream.getvalue())
    assert capsys.readouterr().out == ""  # progress never touches stdout


def test_quiet_mode_prints_only_the_stage_summary(monkeypatch):
    stream = use(monkeypatch, "quiet")
    work()
    assert re.fullmatch(r"churn: demo done in \d+\.\d s: everything\n", stream.getvalue())


def test_live_mode_draws_bars_and_keeps_the_closing_lines(monkeypatch):
    stream = use(monkeypatch, "live", terminal=True)
    work(step=0.15)  # long enough for the display to redraw
    out = stream.getvalue()
    assert "\x1b[" in out and "━" in out  # rich's bar, drawn with escape sequences
    assert "of 1,000 rows" in out
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert "churn: scoring: 1,000 of 1,000 rows in " in text
    assert "churn: demo done in " in text


def test_a_failed_phase_prints_no_closing_line(monkeypatch):
    stream = use(monkeypatch, "plain")
    with pytest.raises(RuntimeError), progress.stage("demo"), progress.task("scoring", total=10, unit="rows"):
        raise RuntimeError("boom")
    assert stream.getvalue() == ""


def test_durations_read_well():
    assert progress.format_seconds(0.04) == "0.0 s"
    assert progress.format_seconds(59.54) == "59.5 s"
    assert progress.format_seconds(125.2) == "2 min 05 s"


def test_log_lines_follow_the_current_stderr(monkeypatch):
    import logging

    stream = use(monkeypatch, "plain")
    handler = progress.LogHandler()
    record = logging.LogRecord("churn", logging.WARNING, __file__, 1, "a warning", None, None)
    handler.emit(record)
    assert stream.getvalue() == "a warning\n"


# --- watching work that has no callback ---------------------------------------------------------


def test_watch_polls_the_probe_and_ends_on_the_exact_count(monkeypatch):
    stream = use(monkeypatch, "plain")
    seen: list[float] = []
    done = [0]

    def probe() -> int:
        seen.append(done[0])
        return done[0]

    with progress.task("fitting", total=50, unit="iterations") as fitting, progress.watch(fitting, probe, every=0.01):
        for _ in range(30):
            time.sleep(0.005)
            done[0] += 1
    assert len(seen) > 2  # polled while the body ran, not only at the end
    assert fitting.completed == 30
    assert stream.getvalue().startswith("churn: fitting: 30 of 50 iterations in ")


def test_a_failing_probe_never_breaks_the_work(monkeypatch):
    use(monkeypatch, "plain")

    def probe() -> int:
        raise AttributeError("renamed in a new release")

    with progress.task("fitting", total=5) as fitting, progress.watch(fitting, probe, every=0.01):
        time.sleep(0.03)
    assert fitting.completed == 0


def test_optuna_callback_counts_trials_and_notes_the_best(monkeypatch):
    stream = use(monkeypatch, "plain")

    class Study:
        best_value = 0.0

    class NoTrialYet:
        @property
        def best_value(self) -> float:
            raise ValueError("no trials are completed yet")

    with progress.task("tuning", total=3, unit="trials") as tuning:
        callback = progress.optuna_callback(tuning)
        callback(NoTrialYet(), None)
        for value in (0.81, 0.84):
            Study.best_value = value
            callback(Study(), None)
    assert tuning.completed == 3
    assert "churn: tuning: 3 of 3 trials in " in stream.getvalue()
    assert stream.getvalue().rstrip().endswith("; best 0.8400")


# --- a real command: terminal, pipe, --quiet ----------------------------------------------------


PREP_OUTPUTS = ("feature_table", "label_table", "train_set", "validation_set", "test_set", "prep_report")


def prep_outputs(params_file: Path) -> dict[str, str]:
    from churn.config import load_params
    from churn.io import md5_file

    paths = load_params(params_file).paths
    return {name: md5_file(getattr(paths, name)) for name in PREP_OUTPUTS}


@pytest.fixture(scope="module")
def prep_project(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Params with every path in a temporary directory, a small simulated raw snapshot, and
    the md5s of the prep outputs made in this process with no progress at all."""
    from churn.config import load_params
    from churn.data import snapshot
    from churn.prep import stage

    directory = tmp_path_factory.mktemp("progress")
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    raw["paths"] = {name: str(directory / path) for name, path in raw["paths"].items()}
    params_file = directory / "test-params.yaml"
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params(params_file)
    snapshot.simulate_to(params.paths.raw, snapshot.simulated_meta(3000, 1, None))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(progress.MODE_ENV, "quiet")
        mp.setattr(progress, "_mode", None)
        stage.run(params)
    return params_file, prep_outputs(params_file)


def churn_prep(project: tuple[Path, dict[str, str]], *options: str, terminal: bool) -> str:
    """`churn [options] prep`'s stdout and stderr together, from a terminal or a pipe; its
    outputs must be byte-identical to those made without progress (DVC hashes them)."""
    from churn.config import load_params

    params_file, expected = project
    paths = load_params(params_file).paths
    for name in PREP_OUTPUTS:  # the run must write them again, not leave the reference's
        getattr(paths, name).unlink()
    out = _run_prep(params_file, *options, terminal=terminal)
    assert prep_outputs(params_file) == expected
    return out


def _run_prep(params_file: Path, *options: str, terminal: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT}
    env.update(TERM="xterm-256color", COLUMNS="120", PYTHONPATH=str(REPO_ROOT / "src"))
    command = [sys.executable, "-m", "churn.cli", "--params", str(params_file), *options, "prep"]
    code, out = run_command(command, terminal=terminal, env=env, timeout=120)
    assert code == 0, out
    return out


def test_a_command_in_a_terminal_shows_a_progress_bar(prep_project):
    out = churn_prep(prep_project, terminal=True)
    assert "\x1b[" in out and "━" in out
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert "churn: reading and checking" in text and ": 3,000 rows in " in text
    assert "churn: prep done in " in text


def test_the_same_command_piped_prints_plain_phase_lines(prep_project):
    out = churn_prep(prep_project, terminal=False)
    assert not CONTROL.search(out), repr(out)
    assert "━" not in out
    lines = out.splitlines()
    assert any(re.fullmatch(r"churn: reading and checking .*telco_churn\.csv: 3,000 rows in \d+\.\d s", line) for line in lines), out
    assert any(re.fullmatch(r"churn: prep done in \d+\.\d s: 3,000 raw rows -> .*", line) for line in lines), out


def test_quiet_shows_neither_bars_nor_phase_lines(prep_project):
    # In a terminal, where bars would otherwise be drawn; only the stage's summary is left.
    out = churn_prep(prep_project, "--quiet", terminal=True)
    assert "\x1b[" not in out and "━" not in out
    assert "reading and checking" not in out
    assert re.fullmatch(r"churn: prep done in \d+\.\d s: 3,000 raw rows -> .*", out.strip()), out


def test_slow_rates_keep_two_digits():
    assert [progress._rate(r) for r in (12_345.6, 10.0, 9.87, 0.4234, 0.0412)] == ["12,346", "10", "9.9", "0.42", "0.041"]


def test_waiting_says_what_it_waits_for_as_it_begins_and_leaves_the_end_to_the_caller(monkeypatch):
    stream = use(monkeypatch, "plain")
    with progress.waiting("starting a server", "on 127.0.0.1:1") as wait:
        assert stream.getvalue() == "churn: starting a server on 127.0.0.1:1\n"  # before the wait ends
        time.sleep(0.01)
    assert stream.getvalue() == "churn: starting a server on 127.0.0.1:1\n" and wait.elapsed >= 0.01
    stream = use(monkeypatch, "quiet")
    with progress.waiting("starting a server"):
        pass
    assert stream.getvalue() == ""
    stream = use(monkeypatch, "live", terminal=True)
    with progress.waiting("starting a server", "on 127.0.0.1:1"):
        time.sleep(0.15)
    drawn = stream.getvalue()
    assert "starting a server" in drawn and "on 127.0.0.1:1" in drawn and "churn:" not in drawn  # a spinner, no line
