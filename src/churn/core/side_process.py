"""Run one slow, independent job of a stage in a process of its own, beside the stage's work.

Stages compute on one core (`runtime.threads`), so the second core of a laptop or a CI
runner sits idle. A thread cannot use it for work that holds the interpreter lock: on a
preload thread, evidently's import (Python code, about 3 s) slowed the scoring beside it
from 0.6 to 3.1 s at 200k rows. A process of its own has an interpreter of its own.
It comes from `forked_pool` (also `churn predict`'s scoring workers): forked by
multiprocessing's fork server, it ends with `os._exit` once its answer is sent. A spawned
one tore its interpreter down (evidently's and pandas' modules, hundreds of thousands of
objects) while the stage waited to shut the pool down, about a second of evaluate at 1M
rows.

The job is a module-level function of picklable arguments that reads what it needs from
files: pickling a million-row frame across would cost the stage more than the job saves.
Its log lines come back with its result and are logged here, so they reach the stage log
like the stage's own; its exception is raised again by `result()`. With preloading off
(one core, or CHURN_PRELOAD=0) the job runs in this process when `result()` asks for it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, Generic, TypeVar

from churn import entry
from churn.core import preload
from churn.errors import ChurnError

T = TypeVar("T")
# A log line as it travels back from the side process: logger name, level, message.
LogLine = tuple[str, int, str]


class SideJob(Generic[T]):
    """`job(*args)`, started now in a side process; `result()` waits for it."""

    def __init__(self, job: Callable[..., T], *args: Any, what: str) -> None:
        self._job, self._args, self._what = job, args, what
        self._pool: ProcessPoolExecutor | None = None
        self._future: Future[tuple[T, list[LogLine]]] | None = None
        if preload.enabled():
            self._pool = forked_pool(1)
            self._future = self._pool.submit(_logged, job, *args)

    def result(self) -> T:
        if self._future is None:
            return self._job(*self._args)
        try:
            value, lines = self._future.result()
        except BrokenProcessPool as exc:
            raise ChurnError(
                f"the process computing {self._what} ended without an answer ({exc}): out of memory? "
                f"Rerun with CHURN_PRELOAD=0 to compute it in the stage's own process"
            ) from None
        for name, level, message in lines:
            logging.getLogger(name).log(level, message)
        return value

    def __enter__(self) -> SideJob[T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # On a failure of the stage, the job still finishes (it may be writing a file
        # atomically; killing it would leave its temporary file behind).
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[LogLine] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.levelno, record.getMessage()))


def _logged(job: Callable[..., T], *args: Any) -> tuple[T, list[LogLine]]:
    """In the side process: run `job` with its log lines collected."""
    collect = _Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    root.setLevel(logging.INFO)
    try:
        return job(*args), collect.lines
    finally:
        root.removeHandler(collect)
        entry.record_loaded_modules(suffix=".side")


def forked_pool(
    workers: int, *, preload: tuple[str, ...] = (), initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> ProcessPoolExecutor:
    """A pool of `workers` processes forked by multiprocessing's fork server (`preload`: the
    modules the server imports first, so that every worker starts with them).

    Not fork from here: the caller already runs threads (progress, preload, MLflow's), and a
    forked child inherits their locks in whatever state they were. The fork server is a
    fresh single-threaded process; a worker gets the caller's cwd and sys.path from
    multiprocessing, and its environment as it is now from `_started` (the server's is the
    one the server started with). A worker ends with `os._exit`, not a teardown of its
    interpreter that the caller would wait for."""
    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(list(preload))
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_started, initargs=(dict(os.environ), initializer, initargs)
    )


def _started(environment: dict[str, str], initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """In a new worker: the caller's environment, libraries as quiet as in any `churn`
    process, then the caller's own initializer."""
    os.environ.clear()
    os.environ.update(environment)
    entry.quiet_libraries()
    if initializer is not None:
        initializer(*initargs)
