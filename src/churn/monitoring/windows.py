"""Time windows: "1 day", "1 week", "6 hours" ... as fixed-width, UTC-aligned intervals.

A window is [start, start + width). Widths are whole minutes, hours, days or weeks; weeks
start on Monday (ISO), everything else is aligned on the Unix epoch, so a window's start
is a pure function of the timestamp and the granularity: the same on every run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from churn.monitoring.state import window_key

_UNITS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s+(minute|hour|day|week)s?\s*$")
_NS = 1_000_000_000
# 1970-01-05 was a Monday: weeks are counted from there.
_WEEK_ANCHOR_S = 4 * 86400


@dataclass(frozen=True)
class Granularity:
    text: str
    seconds: int
    anchor_seconds: int

    @property
    def width(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.seconds)

    def starts(self, scored_at: pd.Series) -> np.ndarray:
        """The window start (int64 ns since the epoch, UTC) of every timestamp."""
        ns = scored_at.to_numpy(dtype="datetime64[ns]").view("int64")
        width, anchor = self.seconds * _NS, self.anchor_seconds * _NS
        starts: np.ndarray = (ns - anchor) // width * width + anchor
        return starts

    def start_of(self, moment: datetime) -> pd.Timestamp:
        ns = pd.Timestamp(moment).tz_convert("UTC").value
        width, anchor = self.seconds * _NS, self.anchor_seconds * _NS
        return pd.Timestamp((ns - anchor) // width * width + anchor, tz="UTC")

    def windows_of_day(self, day: date) -> list[pd.Timestamp]:
        """Starts of every window that overlaps the UTC day (a log partition)."""
        begin = datetime(day.year, day.month, day.day, tzinfo=UTC)
        first = self.start_of(begin)
        end = pd.Timestamp(begin + timedelta(days=1))
        out = []
        current = first
        while current < end:
            out.append(current)
            current = current + self.width
        return out

    def days_of_window(self, start: pd.Timestamp) -> list[date]:
        """The UTC days (log partitions) a window overlaps."""
        end = start + self.width
        day = start.date()
        out = []
        while pd.Timestamp(datetime(day.year, day.month, day.day, tzinfo=UTC)) < end:
            out.append(day)
            day = day + timedelta(days=1)
        return out


def parse_granularity(text: str) -> Granularity:
    """"1 day" -> Granularity; anything else is a ValueError naming the accepted forms."""
    match = _PATTERN.match(str(text))
    if not match or int(match.group(1)) < 1:
        raise ValueError(
            f"granularity {text!r} is not '<n> minute|hour|day|week' (e.g. '1 day', '1 week', '6 hours')"
        )
    count, unit = int(match.group(1)), match.group(2)
    seconds = count * _UNITS[unit]
    if 86400 % seconds and seconds % 86400:
        raise ValueError(f"granularity {text!r} must divide a day or be whole days, so windows align with days")
    anchor = _WEEK_ANCHOR_S if unit == "week" else 0
    return Granularity(text=str(text).strip(), seconds=seconds, anchor_seconds=anchor)


@dataclass(frozen=True)
class Window:
    """One window of the log: its granularity, start and the UTC days (log partitions) of
    it that hold rows."""

    granularity: Granularity
    start: pd.Timestamp
    days: list[date]

    @property
    def end(self) -> pd.Timestamp:
        return self.start + self.granularity.width

    @property
    def key(self) -> str:
        return window_key(self.granularity.text, self.start)


def windows_of_days(granularities: list[str], days: list[date]) -> list[Window]:
    """Every window of each granularity that overlaps one of `days`, granularity by granularity."""
    out = []
    available = set(days)
    for text in granularities:
        granularity = parse_granularity(text)
        starts = sorted({start for day in days for start in granularity.windows_of_day(day)})
        for start in starts:
            covered = [d for d in granularity.days_of_window(start) if d in available]
            out.append(Window(granularity, start, covered))
    return out
