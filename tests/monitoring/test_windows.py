"""churn.monitoring.windows: fixed, UTC-aligned windows; weeks start on Monday."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from churn.monitoring.windows import parse_granularity, windows_of_days


@pytest.mark.parametrize("text, seconds", [("1 day", 86400), ("1 week", 604800), ("6 hours", 21600), ("2 days", 172800)])
def test_parse(text, seconds):
    assert parse_granularity(text).seconds == seconds


@pytest.mark.parametrize("text", ["day", "0 days", "1 fortnight", "7 hours", "1.5 days"])
def test_parse_rejects_what_does_not_tile_days(text):
    with pytest.raises(ValueError, match="granularity"):
        parse_granularity(text)


def test_window_starts():
    stamps = pd.Series(pd.to_datetime(["2026-11-04 23:59:59", "2026-11-09 00:00:00", "2026-11-08 12:00:00"], utc=True))
    day = parse_granularity("1 day").starts(stamps)
    week = parse_granularity("1 week").starts(stamps)
    as_time = lambda ns: [pd.Timestamp(v, tz="UTC") for v in ns]  # noqa: E731
    assert as_time(day) == list(pd.to_datetime(["2026-11-04", "2026-11-09", "2026-11-08"], utc=True))
    # 2026-11-02 and 2026-11-09 are Mondays.
    assert as_time(week) == list(pd.to_datetime(["2026-11-02", "2026-11-09", "2026-11-02"], utc=True))


def test_days_and_windows_cover_each_other():
    week = parse_granularity("1 week")
    start = week.start_of(datetime(2026, 11, 5, tzinfo=UTC))
    assert week.days_of_window(start) == [date(2026, 11, d) for d in range(2, 9)]
    assert week.windows_of_day(date(2026, 11, 8)) == [start]
    assert len(parse_granularity("6 hours").windows_of_day(date(2026, 11, 8))) == 4


def test_windows_of_days_cover_each_logged_day_per_granularity():
    days = [date(2026, 11, 8), date(2026, 11, 9), date(2026, 11, 11)]  # a Sunday, then a Monday
    windows = windows_of_days(["1 day", "1 week"], days)
    assert [(w.granularity.text, w.start.date()) for w in windows] == [
        ("1 day", date(2026, 11, 8)), ("1 day", date(2026, 11, 9)), ("1 day", date(2026, 11, 11)),
        ("1 week", date(2026, 11, 2)), ("1 week", date(2026, 11, 9)),
    ]
    week = windows[-1]
    assert week.days == [date(2026, 11, 9), date(2026, 11, 11)]  # only the days that were logged
    assert week.end == pd.Timestamp("2026-11-16", tz="UTC") and week.key == "1 week|2026-11-09T00:00:00+00:00"
