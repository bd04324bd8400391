"""churn.core.side_process: a stage's slow job in a spawned process, or in line on one core."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from churn.core import preload
from churn.core.side_process import SideJob
from churn.entry import RECORD_MODULES_ENV
from churn.errors import ChurnError


# The jobs run in a spawned process, which imports them by name from this module.
def pid_and_logged_line(word: str) -> tuple[int, str]:
    logging.getLogger("churn.side-test").info("working on %s", word)
    logging.getLogger("churn.side-test").debug("not at the stage log's level")
    return os.getpid(), word.upper()


def refuse(reason: str) -> None:
    raise ChurnError(reason)


def die() -> None:
    os._exit(3)  # as the kernel's out-of-memory killer would end it: no answer at all


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch):
    def set_to(count: int) -> None:
        monkeypatch.setenv(preload.SWITCH, "1")
        monkeypatch.setattr(preload.os, "cpu_count", lambda: count)

    return set_to


def test_on_two_cores_the_job_runs_in_another_process_and_its_log_lines_come_back(cores, caplog):
    cores(2)
    with caplog.at_level(logging.DEBUG, logger="churn.side-test"), SideJob(
        pid_and_logged_line, "drift", what="a test"
    ) as job:
        pid, answer = job.result()
    assert pid != os.getpid()
    assert answer == "DRIFT"
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name == "churn.side-test"] == [
        ("churn.side-test", logging.INFO, "working on drift")
    ]


def test_on_one_core_the_job_runs_in_line_when_asked(cores):
    cores(1)
    started: list[str] = []

    def job(word: str) -> tuple[int, str]:  # local: it could not be sent to another process
        started.append(word)
        return os.getpid(), word

    side = SideJob(job, "x", what="a test")
    assert started == []  # nothing runs until the answer is wanted
    with side:
        assert side.result() == (os.getpid(), "x")


def test_the_jobs_error_is_raised_again(cores):
    cores(2)
    with SideJob(refuse, "the train set has no rows", what="a test") as job, pytest.raises(
        ChurnError, match="the train set has no rows"
    ):
        job.result()


def test_a_side_process_that_dies_is_an_error_naming_the_job_and_the_way_round_it(cores):
    cores(2)
    with SideJob(die, what="the drift summary") as job, pytest.raises(ChurnError) as raised:
        job.result()
    assert "the drift summary" in str(raised.value)
    assert "CHURN_PRELOAD=0" in str(raised.value)


def test_the_side_process_records_the_project_files_it_loads(cores, monkeypatch, tmp_path: Path):
    cores(2)
    record = tmp_path / "stage.modules"
    monkeypatch.setenv(RECORD_MODULES_ENV, str(record))
    with SideJob(pid_and_logged_line, "x", what="a test") as job:
        job.result()
    loaded = (tmp_path / "stage.modules.side").read_text().splitlines()
    assert any(line.endswith("churn/core/side_process.py") for line in loaded)
    assert not record.exists()  # the stage's own record is the stage's to write
