"""Progress on long work: a live bar in a terminal, one plain line per phase in logs.

The whole API, for every command (stages, predict, report, monitor, tune, refresh, benchmarks):

    from churn import progress

    with progress.phase("reading raw data") as p:          # spinner and elapsed time
        frame = read(...)
        p.done(f"{len(frame):,} rows")                     # what its closing line says

    with progress.task("scoring", total=n, unit="rows") as t:   # bar: done of total, rate, time left
        for batch in batches:
            ...
            t.advance(len(batch))
            t.note(f"best {best:.4f}")                     # optional text after the counts

    with progress.task("fitting", total=300, unit="iterations") as t, progress.watch(t, probe):
        model.fit(...)                                     # probe() -> done so far, polled by a thread

    with progress.stage("training"):                      # a whole command or DVC stage:
        ...                                                # its closing line is always printed,
        progress.did("14,000 rows, validation roc_auc 0.84")   # `churn: training done in 59.5 s: 14,000 rows, ...`

    with progress.waiting("starting PostgreSQL", "on 127.0.0.1:55432") as wait:  # spinner; in logs a
        start_and_wait()                                   # line as it begins; the caller prints
    print(f"postgres: ready after {progress.format_seconds(wait.elapsed)}")      # the end itself

    progress.summary("...")                                # any line printed even with --quiet

`progress.optuna_callback(t)` advances a task once per finished Optuna trial and notes the
best value (pass it in `study.optimize(callbacks=[...])`, with Optuna's own bar off).

Modes, chosen once per process (`configure`; the CLI calls it from `--quiet`):
- live: stderr is a terminal and CI is unset: rich's bars, redrawn in place; each finished
  phase leaves its closing line above them.
- plain: stderr is not a terminal, or CI is set, or TERM=dumb: no bars and no control
  characters, only the closing line of each phase, with its counts and elapsed time.
- quiet: `churn --quiet ...` or CHURN_QUIET=1 (inherited by child processes, so stages under
  `dvc repro` and `make run` are quiet too): nothing. Errors and summaries still print.
`CHURN_PROGRESS=live|plain|quiet` forces a mode (tests use it).

Progress is written to stderr only, never to stdout or a file, so nothing of it can reach a
DVC output and `dvc.lock` is the same whichever mode ran.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:  # rich is imported only when a bar is drawn
    from rich.progress import Progress, Task, TaskID
    from rich.text import Text

Mode = Literal["live", "plain", "quiet"]
PREFIX = "churn: "
QUIET_ENV = "CHURN_QUIET"
MODE_ENV = "CHURN_PROGRESS"
_FALSE = ("", "0", "false", "no", "off")

_mode: Mode | None = None
_lock = threading.RLock()
_bars: Progress | None = None  # the one live display of this process, while a task is open
_open = 0
_stages: list[Tracker] = []  # open `stage` blocks, innermost last, for `did`


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in _FALSE


def detect_mode() -> Mode:
    """The mode the environment asks for (see the module docstring)."""
    forced = os.environ.get(MODE_ENV, "").strip().lower()
    if forced in ("live", "plain", "quiet"):
        return cast(Mode, forced)
    if _flag(QUIET_ENV):
        return "quiet"
    stream = sys.stderr
    is_terminal = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
    if not is_terminal or _flag("CI") or os.environ.get("TERM") == "dumb":
        return "plain"
    return "live"


def configure(*, quiet: bool = False) -> Mode:
    """Fix the mode for this process. `quiet` also sets CHURN_QUIET, so the commands this
    one starts (dvc repro -> churn <stage>, make) stay quiet as well."""
    global _mode
    if quiet:
        os.environ[QUIET_ENV] = "1"
    _mode = detect_mode()
    return _mode


def mode() -> Mode:
    global _mode
    if _mode is None:
        _mode = detect_mode()
    return _mode


def summary(line: str) -> None:
    """A closing line that is printed in every mode, --quiet included."""
    _emit(line, always=True)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _rate(per_second: float) -> str:
    # Slow units (trials, windows) keep two digits: `0.42 trials/s`, not `0 trials/s`.
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.2g}"


@dataclass
class Tracker:
    """One phase or task in flight. Methods are thread-safe and cheap in every mode."""

    description: str
    total: float | None = None
    unit: str = ""
    completed: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    _note: str = ""
    _done_text: str | None = None
    _task_id: TaskID | None = None

    def advance(self, amount: float = 1) -> None:
        with _lock:
            self.completed += amount
            self._refresh()

    def update(self, completed: float | None = None, *, total: float | None = None) -> None:
        """Set the count done so far (and the total, once it is known)."""
        with _lock:
            if completed is not None:
                self.completed = completed
            if total is not None:
                self.total = total
            self._refresh()

    def note(self, text: str) -> None:
        """Short text shown after the counts (e.g. `best 0.8412`), and kept in the closing line."""
        with _lock:
            self._note = text
            self._refresh()

    def done(self, text: str) -> None:
        """Replace the counts in the closing line with this text (e.g. `7,043 rows`)."""
        self._done_text = text

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def counts(self) -> str:
        if self.total is None and not self.completed:
            return ""
        unit = f" {self.unit}" if self.unit else ""
        if self.total is None:
            return f"{_count(self.completed)}{unit}"
        return f"{_count(self.completed)} of {_count(self.total)}{unit}"

    def closing_line(self) -> str:
        """`churn: scoring: 1,000 of 1,000 rows in 0.4 s (2,500 rows/s); best 0.84`."""
        what = self._done_text if self._done_text is not None else self.counts()
        elapsed = self.elapsed
        rate = ""
        if self._done_text is None and self.unit and self.completed and elapsed > 0:
            rate = f" ({_rate(self.completed / elapsed)} {self.unit}/s)"
        line = f"{PREFIX}{self.description}: {what} in {format_seconds(elapsed)}{rate}" if what else (
            f"{PREFIX}{self.description} in {format_seconds(elapsed)}"
        )
        return line + (f"; {self._note}" if self._note else "")

    def _refresh(self) -> None:
        if _bars is not None and self._task_id is not None:
            _bars.update(
                self._task_id, completed=self.completed, total=self.total, counts=self.counts(), note=self._note
            )


@contextmanager
def task(description: str, *, total: float | None = None, unit: str = "") -> Iterator[Tracker]:
    """Work with a count: a bar in a terminal (a spinner while `total` is unknown); one
    closing line with counts, elapsed time and rate. Nothing is printed if the body raises:
    the error itself is what the user needs to see."""
    tracker = Tracker(description, total=total, unit=unit)
    _open_bar(tracker)
    try:
        yield tracker
    except BaseException:
        _close_bar(tracker, None)
        raise
    _close_bar(tracker, tracker.closing_line())


@contextmanager
def stage(name: str) -> Iterator[Tracker]:
    """A whole stage or command. Its closing line, `churn: <name> done in 2.1 s: <what>`, is a
    summary: printed in every mode. Call `did(what)` inside it to say what it did."""
    tracker = Tracker(name)
    _open_bar(tracker)
    _stages.append(tracker)
    try:
        yield tracker
    except BaseException:
        _close_bar(tracker, None)
        raise
    finally:
        _stages.remove(tracker)
    what = f": {tracker._done_text}" if tracker._done_text else ""
    _close_bar(tracker, f"{PREFIX}{name} done in {format_seconds(tracker.elapsed)}{what}", always=True)


def did(what: str) -> None:
    """What the innermost open `stage` did, for its closing line; ignored outside a stage
    (a stage module's `run` called from a test or another command)."""
    if _stages:
        _stages[-1].done(what)


@contextmanager
def phase(description: str) -> Iterator[Tracker]:
    """Work without a count: a spinner with elapsed time; one closing line. `p.done(text)`
    says what it did."""
    with task(description) as tracker:
        yield tracker


@contextmanager
def waiting(description: str, detail: str = "") -> Iterator[Tracker]:
    """A wait whose end the caller reports itself, in its own result line (`postgres: ready at
    ... after 3.2 s`): a spinner with elapsed time in a terminal (`detail` after it, where a
    long description would be cut); in a log one line as it begins, `churn: <description>
    <detail>`, so the log shows what is being waited on; no closing line."""
    tracker = Tracker(description, _note=detail)
    if mode() == "plain":
        _emit(PREFIX + " ".join(filter(None, (description, detail))))
    _open_bar(tracker)
    try:
        yield tracker
    finally:
        _close_bar(tracker, None)


@contextmanager
def watch(tracker: Tracker, probe: Callable[[], float | None], every: float = 0.25) -> Iterator[None]:
    """Poll `probe()` from a daemon thread while the body runs, and show its value as the
    count done. For work that offers no callback (HistGradientBoosting's fit): the probe
    only reads, so the work and its results are the same with or without it. A final poll
    after the body makes the count exact."""
    if mode() == "quiet":
        # Counts still make the closing line right if someone prints it; no thread needed.
        yield
        _poll(tracker, probe)
        return
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            _poll(tracker, probe)

    thread = threading.Thread(target=loop, name=f"progress: {tracker.description}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        _poll(tracker, probe)


def _poll(tracker: Tracker, probe: Callable[[], float | None]) -> None:
    try:
        value = probe()
    except Exception:  # a probe reads another library's internals: never let it break the work
        return
    if value is not None:
        tracker.update(value)


def optuna_callback(tracker: Tracker, *, direction_word: str = "best") -> Callable[[Any, Any], None]:
    """An Optuna `callbacks=[...]` entry: one step per finished trial, best value in the note.
    Duck-typed, so this module does not import Optuna."""

    def callback(study: Any, trial: Any) -> None:
        tracker.advance(1)
        with suppress(ValueError):  # no completed trial yet (all pruned or failed)
            tracker.note(f"{direction_word} {study.best_value:.4f}")

    return callback


# ---- output --------------------------------------------------------------------------


def _emit(line: str, *, always: bool = False) -> None:
    current = mode()
    if current == "quiet" and not always:
        return
    with _lock:
        if _bars is not None:
            _bars.console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
    print(line, file=sys.stderr, flush=True)


def _open_bar(tracker: Tracker) -> None:
    global _bars, _open
    if mode() != "live":
        return
    with _lock:
        if _bars is None:
            _bars = _new_bars()
            _bars.start()
        _open += 1
        tracker._task_id = _bars.add_task(
            tracker.description, total=tracker.total, counts=tracker.counts(), note=tracker._note, unit=tracker.unit
        )


def _close_bar(tracker: Tracker, line: str | None, *, always: bool = False) -> None:
    global _bars, _open
    with _lock:
        if _bars is not None and tracker._task_id is not None:
            _bars.remove_task(tracker._task_id)
            tracker._task_id = None
            _open -= 1
        if line is not None:
            _emit(line, always=always)
        if _bars is not None and _open == 0:
            _bars.stop()
            _bars = None


def _new_bars() -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
    )
    from rich.table import Column
    from rich.text import Text

    class Counts(ProgressColumn):
        """`1,000 of 5,000 rows  2,400 rows/s  best 0.84`; empty for a bare spinner."""

        def render(self, task: Task) -> Text:
            parts = [task.fields.get("counts", "")]
            speed, unit = task.speed, task.fields.get("unit", "")
            if speed and unit:  # the unit is already in the counts
                parts.append(f"{_rate(speed)}/s")
            parts.append(task.fields.get("note", ""))
            return Text("  ".join(part for part in parts if part), style="progress.download")

    class Times(ProgressColumn):
        """Elapsed time, and the time left once there is a total and a rate."""

        def render(self, task: Task) -> Text:
            text = format_seconds(task.elapsed or 0.0)
            left = task.time_remaining
            if task.total is not None and left is not None and not task.finished:
                text += f", ~{format_seconds(left)} left"
            return Text(text, style="progress.elapsed")

    console = Console(file=sys.stderr, force_terminal=True, highlight=False)
    return Progress(
        # Fits an 80-column terminal: a long description is cut (its closing line is whole).
        SpinnerColumn(),
        TextColumn(
            "{task.description}", style="progress.description", markup=False,  # paths may hold [ ]
            table_column=Column(no_wrap=True, overflow="ellipsis", max_width=34),
        ),
        BarColumn(bar_width=16),
        Counts(table_column=Column(no_wrap=True)),
        Times(table_column=Column(no_wrap=True)),
        console=console,
        transient=True,  # the bars vanish; the closing lines printed above them stay
        # Only stderr is redirected above the bars: stdout may be a pipe or a file and
        # must receive exactly what the command prints.
        redirect_stdout=bool(sys.stdout is not None and sys.stdout.isatty()),
        redirect_stderr=True,
    )


class LogHandler(logging.Handler):
    """Writes log records to whatever `sys.stderr` is now, so that while bars are drawn
    (and rich has redirected stderr) a warning appears above them instead of through them."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)
