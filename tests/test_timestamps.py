"""churn.timestamps: ISO 8601 times read as UTC, future times refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from churn.errors import ChurnError
from churn.timestamps import parse_timestamp, refuse_future


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-26T09:30:00Z", datetime(2026, 11, 26, 9, 30, tzinfo=UTC)),
        ("2026-11-26T10:30:00+01:00", datetime(2026, 11, 26, 9, 30, tzinfo=UTC)),
        ("2026-11-26T09:30", datetime(2026, 11, 26, 9, 30, tzinfo=UTC)),  # no offset: UTC
        ("2026-11-26", datetime(2026, 11, 26, tzinfo=UTC)),
    ],
)
def test_parse_reads_iso_8601_as_utc(text, expected):
    parsed = parse_timestamp(text, "--as-of")
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "26/11/2026", "", "2026-13-01"])
def test_parse_names_the_option_and_the_format(text):
    with pytest.raises(ChurnError, match=r"--as-of .* is not an ISO 8601 time: write it like"):
        parse_timestamp(text, "--as-of")


def test_future_is_refused_past_and_present_pass():
    now = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    assert refuse_future(now, "t", now=now) == now
    assert refuse_future(now - timedelta(days=400), "t", now=now)
    with pytest.raises(ChurnError, match="t 2026-11-26T09:30:01\\+00:00 is in the future"):
        refuse_future(now + timedelta(seconds=1), "t", now=now)
