"""Streaming batch scoring: bounded memory, both cores, the same answer as one big frame.

Each batch of raw records is scored (`RecordScorer.score`: contract, cleaning, model) and
shaped into the rows to write (`shape`: for `churn predict`, the score file's and the
inference log's Arrow tables) by a pool of workers. Results are consumed in input order
and written as they come to temporary Parquet files, so the peak memory is a few batches,
not the file.

A large input is scored by worker processes, one per core. Validation, cleaning and the
conversions between pandas and Arrow hold the interpreter lock: on two threads, scoring
stopped at about 120k rows/s with the lock busy three quarters of the time. Workers are
sent Arrow record batches and send Arrow tables back; both cross the pipe as buffers, not
as a Python object per value. Their start-up (a second or so of imports) runs on the
second core while this process loads the model. A small input, one core or
CHURN_PRELOAD=0 scores on threads of this process instead: scikit-learn's tree traversal
releases the lock, so one batch is validated while another is scored.

Whole-file facts (repeated ids, float-coded categoricals) come from `records`; rows whose
id repeats are validated together at the end, and rejected rows are put back in input
order, so scores, rejected rows and log rows equal what scoring the whole frame gives.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn import progress
from churn.core import preload
from churn.core.side_process import forked_pool
from churn.deployment import records as rec
from churn.errors import ChurnError
from churn.servable.scoring import RecordScorer, ScoredBatch

# At 1M rows on two worker processes, 25,000 and 50,000 scored as fast; 25,000 held 865 MB
# summed over the processes, 50,000 1,030 MB.
DEFAULT_BATCH_ROWS = 25_000
# From this many rows, worker processes: below it their start-up (a second or so of
# imports on the other core) is a large part of the whole.
PROCESS_MIN_ROWS = 200_000
# A column no input has: carries each row's position through validation, so rejected rows
# validated out of order can be put back in input order.
POSITION = "__churn_row_position__"


class ParquetParts:
    """Write frames of one schema to one Parquet file, a row group per frame."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, rows: pd.DataFrame | pa.Table) -> None:
        if not len(rows):
            return
        table = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(rows, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(
                self.path, self._schema, compression="snappy", write_statistics=_statistics_columns(self._schema)
            )
        else:
            assert self._schema is not None
            table = table.cast(self._schema.remove_metadata()).replace_schema_metadata(self._schema.metadata)
        self._writer.write_table(table)
        self.rows += len(table)

    def close(self, empty: Callable[[], pd.DataFrame] | None) -> None:
        """Finish the file; with no rows written, write `empty()` (the whole-frame layout)
        or, without `empty`, nothing."""
        if self._writer is not None:
            self._writer.close()
        elif empty is not None:
            empty().to_parquet(self.path, index=False, engine="pyarrow", compression="snappy")

    def abort(self) -> None:
        if self._writer is not None:
            # Already failing: the first error is the one to report.
            with contextlib.suppress(Exception):
                self._writer.close()


def _statistics_columns(schema: pa.Schema) -> list[str]:
    """The columns whose row groups carry min/max statistics: all but text. A reader prunes
    row groups by time, score or number; min/max of ids and category names prunes nothing
    and cost a quarter of this process's writing time (1M log rows: 0.9 -> 0.65 s)."""
    return [field.name for field in schema if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))]


@dataclass(frozen=True)
class StreamTotals:
    read_rows: int
    scored_rows: int
    rejected: pd.DataFrame  # in input order, with their reasons


def workers() -> int:
    """One worker per core, and at least two: with threads, one batch is validated while
    another is in the model."""
    return max(2, (os.cpu_count() or 1))


class ScoringPool:
    """Where the batches are scored: worker processes for a large input, threads here for
    a small one (or with CHURN_PRELOAD=0, or one core).

    Made before the model is loaded, with the input's row count when it is known (Parquet
    metadata), so that the workers' start-up overlaps the loading; otherwise `executor`
    decides when the rows are counted. `processes` forces the choice (tests).
    """

    def __init__(self, rows: int | None = None, *, preload: tuple[str, ...] = (), processes: bool | None = None) -> None:
        self._preload, self._forced = preload, processes
        self._executor: Executor | None = None
        self._starting: threading.Thread | None = None
        self._start_error: Exception | None = None
        self.processes = False
        if rows is not None or processes is not None:
            self._start(rows or 0)

    def _start(self, rows: int) -> None:
        wanted = preload.enabled() and rows >= PROCESS_MIN_ROWS if self._forced is None else self._forced
        if not wanted:
            self._executor = self._threads()
            return
        count = workers()
        # The fork server imports the scoring libraries (a second or so) once; the workers
        # it forks start with them loaded.
        modules = ("churn.deployment.stream", *self._preload)
        executor = forked_pool(count, preload=modules, initializer=_warm, initargs=(modules,))
        self._executor, self.processes = executor, True
        # Starting a worker waits for the server's imports: on a thread, so that this
        # process goes on (loading the model) meanwhile. One job each makes every worker start.
        self._starting = threading.Thread(target=self._start_workers, args=(executor, count), name="churn-score-start")
        self._starting.start()

    def _start_workers(self, executor: ProcessPoolExecutor, count: int) -> None:
        try:
            for _ in range(count):
                executor.submit(_ready)
        except Exception as exc:  # raised again where the workers are first needed
            self._start_error = exc

    def executor(self, rows: int | None) -> Executor:
        if self._executor is None:
            self._start(rows or 0)
        self._started()
        assert self._executor is not None
        return self._executor

    def _started(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._start_error is not None:
            # Nothing was sent to a worker yet: the same batches on threads give the same
            # answer, only later. Said once, with the way to skip the attempt next time.
            error, self._start_error = self._start_error, None
            failed, self._executor, self.processes = self._executor, self._threads(), False
            if failed is not None:
                failed.shutdown(wait=False, cancel_futures=True)
            progress.summary(
                f"{progress.PREFIX}the scoring processes did not start ({error.__class__.__name__}: {error}): "
                "scoring on threads in this process instead (CHURN_PRELOAD=0 skips the attempt)"
            )

    @staticmethod
    def _threads() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="churn-score")

    def __enter__(self) -> ScoringPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._starting is not None:  # a start-up error, if any, is not this exit's to raise
            self._starting.join()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _warm(modules: tuple[str, ...]) -> None:
    """In a new worker: the libraries every batch needs (already there when the fork
    server, started by this pool, preloaded them)."""
    for name in modules:
        importlib.import_module(name)


def _ready() -> None:
    """A job that only makes a worker start."""


@dataclass(frozen=True)
class _Batches:
    """What every batch's job needs besides its rows."""

    scorer: RecordScorer
    facts: rec.WholeFileFacts
    records: rec.RecordFile
    source: str
    shape: Callable[[pd.DataFrame], object]


# What a worker process is sent with each batch: a key and the pickled `_Batches`, which
# it unpickles once. `churn predict` sends the path of the model's archive, which each
# worker loads once (`scoring.fitted`); a fitted model is a megabyte or so, and sending it
# with each batch still costs less than the bookkeeping of sending it once to each worker.
_Packed = tuple[str, bytes]
_unpacked: dict[str, _Batches] = {}


def _context(context: _Batches | _Packed) -> _Batches:
    if isinstance(context, _Batches):
        return context
    key, packed = context
    if key not in _unpacked:
        _unpacked.clear()
        _unpacked[key] = pickle.loads(packed)  # pickled by this run's own process, not read from a file
    return _unpacked[key]


@dataclass(frozen=True)
class _Outcome:
    """One batch's answer: its rows with a unique id (scored or rejected) and the rows
    whose id repeats somewhere, left for the end."""

    rows: int
    scored_rows: int
    shaped: object  # `shape` of the scored rows; None when none was scored
    rejected: pd.DataFrame
    repeated: pd.DataFrame


def _score_batch(context: _Batches | _Packed, raw: rec.RawBatch, start: int) -> _Outcome:
    batches = _context(context)
    batch = batches.facts.align_types(rec.as_frame(batches.records, raw)).reset_index(drop=True)
    batch[POSITION] = range(start, start + len(batch))
    unique, repeated = batches.facts.split_duplicates(batch, batches.scorer.dataset.id_column)
    if not len(unique):
        return _Outcome(0, 0, None, unique.iloc[0:0], repeated)
    result = batches.scorer.score(unique, source=batches.source)
    _check_accounting(result, len(unique), batches.source)
    shaped = batches.shape(result.scored) if len(result.scored) else None
    return _Outcome(len(unique), len(result.scored), shaped, result.rejected, repeated)


def _check_accounting(result: ScoredBatch, rows: int, source: str) -> None:
    if len(result.scored) + len(result.rejected) != rows:
        raise ChurnError(
            f"scoring accounted for {len(result.scored) + len(result.rejected)} of {rows} rows of "
            f"{source}: nothing was written (a bug in churn.servable.scoring)"
        )


def _as_is(scored: pd.DataFrame) -> pd.DataFrame:
    return scored


def _in_order(pool: Executor, jobs: Iterator[tuple[Callable[..., _Outcome], tuple[object, ...]]], ahead: int) -> Iterator[_Outcome]:
    """Run the jobs with at most `ahead` in flight; yield results in submission order."""
    pending: deque[Future[_Outcome]] = deque()
    try:
        for job, args in jobs:
            pending.append(pool.submit(job, *args))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool as exc:
        raise ChurnError(
            f"a scoring process ended without an answer ({exc}): out of memory? Rerun with a smaller "
            f"--batch-rows, or with CHURN_PRELOAD=0 to score in this process; nothing was written"
        ) from None
    finally:
        for future in pending:
            future.cancel()


def score_stream(
    scorer: RecordScorer,
    records: rec.RecordFile,
    *,
    source: str,
    batch_rows: int,
    on_scored: Callable[[Any], None],
    on_rows: Callable[[int], object] | None = None,
    facts: rec.WholeFileFacts | None = None,
    shape: Callable[[pd.DataFrame], Any] = _as_is,
    pool: ScoringPool | None = None,
) -> StreamTotals:
    """Score every batch of `records` with `scorer.score`; hand `shape` of each batch's
    scored rows to `on_scored` in input order; return the totals and every rejected row.

    `shape` runs where the batch is scored (a worker process for a large input), so it
    is a module-level function or a partial of one; it should return what crosses a pipe
    cheaply (Arrow tables)."""
    facts = rec.whole_file_facts(records, scorer.dataset) if facts is None else facts
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(ScoringPool())
        executor = pool.executor(facts.rows if facts.rows is not None else records.rows)
        batches = _Batches(scorer, facts, records, source, shape)
        context: _Batches | _Packed = (
            (uuid.uuid4().hex, pickle.dumps(batches, protocol=pickle.HIGHEST_PROTOCOL)) if pool.processes else batches
        )
        read_rows = scored_rows = 0
        rejected: list[pd.DataFrame] = []
        repeated: list[pd.DataFrame] = []

        def jobs() -> Iterator[tuple[Callable[..., _Outcome], tuple[object, ...]]]:
            nonlocal read_rows
            for raw in rec.iter_raw_batches(records, batch_rows):
                yield _score_batch, (context, raw, read_rows)
                read_rows += len(raw)

        for outcome in _in_order(executor, jobs(), ahead=workers() + 1):
            scored_rows += outcome.scored_rows
            if on_rows is not None and outcome.rows:
                on_rows(outcome.rows)
            if outcome.shaped is not None:
                on_scored(outcome.shaped)
            if len(outcome.rejected):
                rejected.append(outcome.rejected)
            if len(outcome.repeated):
                repeated.append(outcome.repeated)
    if read_rows == 0:
        # No rows: the contract's table check answers (no data rows), as for the whole frame.
        scorer.score(rec.empty_frame(records), source=source)
        raise ChurnError(f"input {source} has no rows to score")  # the contract raised above
    if repeated:
        together = pd.concat(repeated, ignore_index=True)
        result = scorer.score(together, source=source)
        if len(result.scored):
            raise ChurnError(f"rows with a repeated {scorer.dataset.id_column} were scored: a bug in the data contract")
        _check_accounting(result, len(together), source)
        if on_rows is not None:
            on_rows(len(together))
        if len(result.rejected):
            rejected.append(result.rejected)
    return StreamTotals(read_rows, scored_rows, _input_order(rejected))


def _input_order(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(POSITION, kind="stable").drop(columns=POSITION).reset_index(drop=True)
