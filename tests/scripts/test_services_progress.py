"""`make services` (scripts/services.py) says which server is starting: a spinner with elapsed
time in a terminal, a line as it starts in a log, nothing with --quiet; `up` then prints
`<name>: ready at ... after 3.2 s` (tests/e2e/test_team_mode.py checks that line on a full `up`).
Each test starts a real S3 server (rclone, under a second) the way `up` starts every server."""

from __future__ import annotations

import io
import re
import secrets
import sys

import pytest

from churn import progress
from tests.helpers import CONTROL_CHARACTERS, free_port, stderr_in_a_terminal, without_escapes


def start_s3(tmp_path, monkeypatch, *, terminal: bool, quiet: bool = False) -> tuple[float, str]:
    """services.start("s3", ...) with stderr a pseudo-terminal or a file; the seconds it
    reported and what reached stderr. The server is stopped again."""
    from scripts import services

    for name in (progress.MODE_ENV, progress.QUIET_ENV, "CI", "TERM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(progress, "_mode", None)
    port = free_port()
    keys = {"s3_access_key": "test" + secrets.token_hex(6), "s3_secret_key": secrets.token_urlsafe(24)}
    layout = services.Layout(tmp_path)

    def run() -> tuple[services.Record, float]:
        progress.configure(quiet=quiet)
        if quiet:
            monkeypatch.setenv(progress.QUIET_ENV, "1")  # configure set it; monkeypatch now restores it
        return services.start("s3", layout, {"s3": port}, keys)

    if terminal:
        with stderr_in_a_terminal(monkeypatch) as output:
            record, seconds = run()
        err = output.text
    else:
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        record, seconds = run()
        err = stream.getvalue()
    try:
        assert services.port_in_use(port) and record.port == port  # it really answers
    finally:
        services.stop(record)
    assert 0 < seconds < services.START_TIMEOUT
    return seconds, err


def test_in_a_terminal_a_spinner_shows_which_server_starts(tmp_path, monkeypatch):
    _, err = start_s3(tmp_path, monkeypatch, terminal=True)
    assert "\x1b[" in err  # drawn, then cleared: the result line is the caller's
    text = without_escapes(err)
    assert "starting the S3 server" in text and "on 127.0.0.1:" in text and re.search(r"\d\.\d s", text)
    assert "churn:" not in text


def test_in_a_log_one_line_says_which_server_is_awaited(tmp_path, monkeypatch):
    _, err = start_s3(tmp_path, monkeypatch, terminal=False)
    assert not re.search(CONTROL_CHARACTERS, err), repr(err)
    assert re.fullmatch(r"churn: starting the S3 server on 127\.0\.0\.1:\d+, waiting until it answers\n", err), err


def test_quiet_shows_nothing_while_a_server_starts(tmp_path, monkeypatch):
    _, err = start_s3(tmp_path, monkeypatch, terminal=True, quiet=True)
    assert err == ""


@pytest.mark.parametrize("argv", [["status", "--quiet"], ["status", "-q"]])
def test_services_accepts_quiet(tmp_path, argv, capsys):
    from scripts import services

    assert services.main([*argv, "--dir", str(tmp_path)]) == 1  # nothing runs there
    assert "postgres: not started" in capsys.readouterr().out  # results still print
