"""Streaming batch scoring: bounded memory, both cores, the same answer as one big frame.

Each batch of raw records goes through `ChurnModel.score` (contract, cleaning, model) in a
small thread pool: pandas validation holds the GIL, but scikit-learn's tree traversal
releases it, so one batch is validated while the previous one is scored. Results are
consumed in input order and written as they come to temporary Parquet files (the scores
and the inference-log rows), so the peak memory is a few batches, not the file.

Whole-file facts (repeated ids, float-coded categoricals) come from `records`; rows whose
id repeats are validated together at the end, and rejected rows are put back in input
order, so scores, rejected rows and log rows equal what scoring the whole frame gives.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn.deployment import records as rec
from churn.errors import ChurnError
from churn.servable.scoring import ScoredBatch

if TYPE_CHECKING:  # typing only: the pyfunc module imports MLflow
    from churn.servable.pyfunc import ChurnModel

DEFAULT_BATCH_ROWS = 50_000
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

    def write(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.path, self._schema, compression="snappy")
        else:
            assert self._schema is not None
            table = table.cast(self._schema.remove_metadata()).replace_schema_metadata(self._schema.metadata)
        self._writer.write_table(table)
        self.rows += len(frame)

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


@dataclass(frozen=True)
class StreamTotals:
    read_rows: int
    scored_rows: int
    rejected: pd.DataFrame  # in input order, with their reasons


def _in_order(pool: ThreadPoolExecutor, work: Iterator[Callable[[], object]], ahead: int) -> Iterator[object]:
    """Run the callables with at most `ahead` in flight; yield results in submission order."""
    pending: deque[Future[object]] = deque()
    for job in work:
        pending.append(pool.submit(job))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _score(scorer: ChurnModel, frame: pd.DataFrame, source: str) -> tuple[int, ScoredBatch]:
    return len(frame), scorer.score(frame, source=source)


def workers() -> int:
    """Two batches in flight per core: one being validated, one in the model."""
    return max(2, (os.cpu_count() or 1))


def score_stream(
    scorer: ChurnModel,
    records: rec.RecordFile,
    *,
    source: str,
    batch_rows: int,
    on_scored: Callable[[pd.DataFrame], None],
    on_rows: Callable[[int], object] | None = None,
    facts: rec.WholeFileFacts | None = None,
) -> StreamTotals:
    """Score every batch of `records` with `scorer.score`; hand each batch's scored rows to
    `on_scored` in input order; return the totals and every rejected row."""
    facts = rec.whole_file_facts(records, scorer.dataset) if facts is None else facts
    id_column = scorer.dataset.id_column
    read_rows = scored_rows = 0
    rejected: list[pd.DataFrame] = []
    repeated: list[pd.DataFrame] = []

    def batches() -> Iterator[Callable[[], object]]:
        nonlocal read_rows
        for batch in rec.iter_batches(records, batch_rows):
            batch = facts.align_types(batch).reset_index(drop=True)
            batch[POSITION] = range(read_rows, read_rows + len(batch))
            read_rows += len(batch)
            unique, dup = facts.split_duplicates(batch, id_column)
            if len(dup):
                repeated.append(dup)
            if len(unique):
                yield partial(_score, scorer, unique, source)

    def take(rows: int, result: ScoredBatch) -> None:
        nonlocal scored_rows
        if len(result.scored) + len(result.rejected) != rows:
            raise ChurnError(
                f"scoring accounted for {len(result.scored) + len(result.rejected)} of {rows} rows of "
                f"{source}: nothing was written (a bug in churn.servable.scoring)"
            )
        scored_rows += len(result.scored)
        if on_rows is not None:
            on_rows(rows)
        if len(result.scored):
            on_scored(result.scored)
        if len(result.rejected):
            rejected.append(result.rejected)

    with ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="churn-score") as pool:
        for done in _in_order(pool, batches(), ahead=workers()):
            rows, result = cast(tuple[int, ScoredBatch], done)
            take(rows, result)
    if read_rows == 0:
        # No rows: the contract's table check answers (no data rows), as for the whole frame.
        scorer.score(rec.empty_frame(records), source=source)
        raise ChurnError(f"input {source} has no rows to score")  # the contract raised above
    if repeated:
        together = pd.concat(repeated, ignore_index=True)
        result = scorer.score(together, source=source)
        if len(result.scored):
            raise ChurnError(f"rows with a repeated {id_column} were scored: a bug in the data contract")
        take(len(together), result)
    return StreamTotals(read_rows, scored_rows, _input_order(rejected))


def _input_order(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(POSITION, kind="stable").drop(columns=POSITION).reset_index(drop=True)
