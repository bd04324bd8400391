"""Streaming scoring equals scoring the whole frame at once, batch size notwithstanding."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.core.clean import clean_features, encode_labels
from churn.core.contract import REASONS_COLUMN, validate_raw
from churn.data.simulate import simulate
from churn.deployment import records as rec
from churn.deployment.outputs import written_tables
from churn.deployment.stream import POSITION, PROCESS_MIN_ROWS, ParquetParts, ScoringPool, score_stream
from churn.errors import ChurnError
from churn.servable.pyfunc import ChurnModel
from churn.training.pipeline import build_pipeline

WHOLE = 10**9  # one batch: the whole frame at once


@pytest.fixture(scope="module")
def scorer(params) -> ChurnModel:
    dataset = params.dataset
    raw = simulate(600, seed=11).astype(str)
    typed = validate_raw(raw, dataset)
    train = params.train.model_copy(update={"hyperparameters": {"hist_gradient_boosting": {"max_iter": 10}}})
    model = build_pipeline(dataset, train).fit(
        clean_features(typed, dataset)[dataset.feature_columns], encode_labels(typed, dataset)[dataset.label_column]
    )
    wrapper = ChurnModel()
    wrapper.model, wrapper.dataset, wrapper.threshold = model, dataset, params.train.decision_threshold
    return wrapper


def messy(dataset) -> pd.DataFrame:
    """Raw text records with rejects spread over the file and ids repeated across batches."""
    raw = simulate(120, seed=12).astype(str)
    raw.loc[3, "tenure"] = "-5"
    raw.loc[10, "Contract"] = "Weekly"
    raw.loc[42, "MonthlyCharges"] = "abc"
    raw.loc[42, "gender"] = "?"
    raw.loc[100, dataset.id_column] = raw.loc[5, dataset.id_column]  # far apart: other batches
    raw.loc[101, dataset.id_column] = raw.loc[5, dataset.id_column]
    raw.loc[101, "tenure"] = "x"  # a repeated id with another fault too
    raw.loc[60, "TotalCharges"] = " "
    return raw


def stream(scorer, path: Path, batch_rows: int, *, processes: bool | None = None, shape=None):
    scored: list = []
    with ScoringPool(processes=processes) as pool:
        totals = score_stream(
            scorer.record_scorer(), rec.open_records(path), source=str(path), batch_rows=batch_rows,
            on_scored=scored.append, pool=pool, **({"shape": shape} if shape else {}),
        )
    if scored and isinstance(scored[0], tuple):  # Arrow tables, from a shape
        return totals, [pa.concat_tables(part).to_pandas() for part in zip(*scored, strict=True)]
    return totals, (pd.concat(scored, ignore_index=True) if scored else None)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(("batch_rows", "processes"), [(7, False), (50, False), (7, True)])
def test_batches_give_the_whole_frame_answer(scorer, params, tmp_path, suffix, batch_rows, processes):
    raw = messy(params.dataset)
    path = tmp_path / f"records{suffix}"
    raw.to_csv(path, index=False) if suffix == ".csv" else raw.to_parquet(path, index=False)

    whole_totals, whole = stream(scorer, path, WHOLE, processes=False)
    totals, batched = stream(scorer, path, batch_rows, processes=processes)

    # The whole frame: what ChurnModel.score gives for the file read at once.
    direct = scorer.score(pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
                          if suffix == ".csv" else pd.read_parquet(path))
    pd.testing.assert_frame_equal(whole, direct.scored.reset_index(drop=True))
    pd.testing.assert_frame_equal(whole_totals.rejected, direct.rejected)

    pd.testing.assert_frame_equal(batched, whole)
    pd.testing.assert_frame_equal(totals.rejected, whole_totals.rejected)
    assert POSITION not in totals.rejected.columns
    # Row 60's blank TotalCharges is rejected too: main's contract fills blanks only at tenure 0.
    assert (totals.read_rows, totals.scored_rows, len(totals.rejected)) == (120, 113, 7)
    assert raw.loc[60, params.dataset.id_column] in set(totals.rejected[params.dataset.id_column])
    repeated = totals.rejected[totals.rejected[params.dataset.id_column] == raw.loc[5, params.dataset.id_column]]
    assert len(repeated) == 3 and repeated[REASONS_COLUMN].str.contains("duplicate").all()


def test_worker_processes_shape_the_rows_as_threads_do(scorer, params, tmp_path):
    # What `churn predict` writes (the score file's and the log's rows), made in the workers.
    path = tmp_path / "records.parquet"
    messy(params.dataset).to_parquet(path, index=False)
    shape = partial(
        written_tables, dataset=params.dataset, model_version="3", model_uri="models:/m/3",
        scored_at=datetime(2026, 11, 26, 10, tzinfo=UTC),
    )
    threads_totals, threads = stream(scorer, path, 9, processes=False, shape=shape)
    totals, processes = stream(scorer, path, 9, processes=True, shape=shape)
    for made_here, made_there in zip(threads, processes, strict=True):
        pd.testing.assert_frame_equal(made_there, made_here)
    assert len(processes[0]) == totals.scored_rows == 113
    pd.testing.assert_frame_equal(totals.rejected, threads_totals.rejected)


def _refuse(scored: pd.DataFrame) -> None:
    raise ChurnError(f"refused {len(scored)} rows")


def _die(scored: pd.DataFrame) -> None:
    os._exit(3)  # as the kernel's out-of-memory killer would end it: no answer at all


def test_a_worker_error_reaches_the_caller(scorer, params, tmp_path):
    path = tmp_path / "records.parquet"
    messy(params.dataset).to_parquet(path, index=False)
    with pytest.raises(ChurnError, match=r"refused \d+ rows"):
        stream(scorer, path, 9, processes=True, shape=_refuse)


def test_a_worker_that_dies_is_a_churn_error_that_names_the_way_out(scorer, params, tmp_path):
    path = tmp_path / "records.parquet"
    messy(params.dataset).to_parquet(path, index=False)
    with pytest.raises(ChurnError, match=r"scoring process ended without an answer.*CHURN_PRELOAD=0.*nothing was written"):
        stream(scorer, path, 9, processes=True, shape=_die)


def test_workers_that_cannot_start_leave_the_batches_to_threads_and_say_so(scorer, params, tmp_path, monkeypatch, capsys):
    def refuse(self, *args, **kwargs):
        raise OSError(24, "Too many open files")

    path = tmp_path / "records.parquet"
    messy(params.dataset).to_parquet(path, index=False)
    expected_totals, expected = stream(scorer, path, 9, processes=False)
    monkeypatch.setattr(ProcessPoolExecutor, "submit", refuse)
    with ScoringPool(processes=True) as pool:
        assert isinstance(pool.executor(None), ThreadPoolExecutor) and not pool.processes
    said = capsys.readouterr().err
    assert "scoring processes did not start (OSError: [Errno 24] Too many open files)" in said
    assert "CHURN_PRELOAD=0" in said
    totals, scored = stream(scorer, path, 9, processes=True)
    pd.testing.assert_frame_equal(scored, expected)
    pd.testing.assert_frame_equal(totals.rejected, expected_totals.rejected)


def test_the_pool_is_threads_for_a_small_input_and_processes_for_a_large_one(monkeypatch):
    monkeypatch.setenv("CHURN_PRELOAD", "1")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with ScoringPool(PROCESS_MIN_ROWS - 1) as small:
        assert not small.processes
    with ScoringPool(PROCESS_MIN_ROWS) as large:
        assert large.processes
    monkeypatch.setenv("CHURN_PRELOAD", "0")
    with ScoringPool(10 * PROCESS_MIN_ROWS) as switched_off:
        assert not switched_off.processes
    undecided = ScoringPool()  # a CSV: decided when its rows are counted
    with undecided:
        assert not undecided.processes
        undecided.executor(PROCESS_MIN_ROWS - 1)
        assert not undecided.processes


def test_float_codes_are_decided_for_the_whole_file(scorer, params, tmp_path):
    raw = simulate(40, seed=13)
    raw["SeniorCitizen"] = raw["SeniorCitizen"].astype(float)
    raw.loc[30, "SeniorCitizen"] = 0.5  # makes the whole column text ("0.0", "1.0", "0.5")
    path = tmp_path / "codes.parquet"
    raw.to_parquet(path, index=False)
    whole_totals, _ = stream(scorer, path, WHOLE)
    totals, _ = stream(scorer, path, 4)
    assert len(whole_totals.rejected) == 40
    pd.testing.assert_frame_equal(totals.rejected, whole_totals.rejected)


def test_a_missing_column_fails_before_any_batch_is_handed_on(scorer, params, tmp_path):
    path = tmp_path / "short.csv"
    messy(params.dataset).drop(columns=["Contract"]).to_csv(path, index=False)
    seen: list = []
    with pytest.raises(ChurnError, match="Contract"):
        score_stream(scorer.record_scorer(), rec.open_records(path), source="short.csv", batch_rows=10, on_scored=seen.append)
    assert seen == []


def test_no_rows_is_the_contract_error(scorer, params, tmp_path):
    path = tmp_path / "header.csv"
    messy(params.dataset).head(0).to_csv(path, index=False)
    with pytest.raises(ChurnError, match="no data rows"):
        stream(scorer, path, 10)


def test_repeated_ids_are_the_same_from_parquet_text_and_csv(params, tmp_path):
    id_column = params.dataset.id_column
    raw = simulate(6, seed=14).astype(str)
    raw[id_column] = ["a", "b", None, "a", None, "c"]  # two ids repeated: "a" and the missing one
    raw.to_parquet(tmp_path / "ids.parquet", index=False)
    raw.to_csv(tmp_path / "ids.csv", index=False)
    for name in ("ids.parquet", "ids.csv"):
        facts = rec.whole_file_facts(rec.open_records(tmp_path / name), params.dataset)
        assert (facts.duplicated_ids, facts.rows) == (frozenset({"a", None}), 6), name


def _parts_frame(start: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"c{i}" for i in range(start, start + rows)], "p": [i / 100 for i in range(rows)]})


def test_parquet_parts_writes_row_groups_in_order(tmp_path):
    parts = ParquetParts(tmp_path / "out.parquet")
    frames = [_parts_frame(i * 10, 10) for i in range(5)]
    for frame in frames:
        parts.write(frame)
    parts.write(frames[0].iloc[0:0])  # an empty frame adds nothing
    parts.close(None)
    assert parts.rows == 50
    assert pq.ParquetFile(tmp_path / "out.parquet").num_row_groups == 5
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out.parquet"), pd.concat(frames, ignore_index=True))


def test_parquet_parts_raises_a_failed_write_and_aborts_cleanly(tmp_path, monkeypatch):
    # A full disk half-way: the error reaches the caller, and abort then closes quietly.
    calls = []

    def full_disk(self, table, *args, **kwargs):
        calls.append(len(table))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full_disk)
    parts = ParquetParts(tmp_path / "out.parquet")
    with pytest.raises(OSError, match="No space left"):
        for i in range(5):
            parts.write(_parts_frame(i * 10, 10))
        parts.close(None)
    assert calls  # the failing write did run
    parts.abort()  # after a failure: no second error, the file is closed


def test_parts_keep_statistics_for_numbers_and_times_not_for_text(tmp_path):
    import pyarrow.parquet as pq

    parts = ParquetParts(tmp_path / "rows.parquet")
    stamp = pd.Timestamp("2026-11-30", tz="UTC")
    for start in (0, 3):
        parts.write(pd.DataFrame({"customerID": [f"c{i}" for i in range(start, start + 3)],
                                  "churn_probability": [0.1, 0.5, 0.9], "scored_at": [stamp] * 3}))
    parts.close(None)
    metadata = pq.ParquetFile(tmp_path / "rows.parquet").metadata
    assert metadata.num_row_groups == 2
    for group in range(2):
        columns = {metadata.row_group(group).column(i).path_in_schema: metadata.row_group(group).column(i)
                   for i in range(metadata.num_columns)}
        assert columns["churn_probability"].statistics.max == 0.9
        assert columns["scored_at"].is_stats_set
        assert not columns["customerID"].is_stats_set
    assert pd.read_parquet(tmp_path / "rows.parquet")["customerID"].tolist() == [f"c{i}" for i in range(6)]
