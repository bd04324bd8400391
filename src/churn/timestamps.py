"""Points in time given on the command line or in files: ISO 8601, read as UTC.

One rule everywhere (`churn predict --as-of`, `churn label`'s `labelled_at`, `churn refresh
--as-of`): an offset or `Z` is honoured; a time without one is taken as UTC (said in the
README), because the log's partitions are UTC dates and a local-time guess would move rows
between days depending on the machine. A time in the future is refused: the log records
what happened, and a future stamp would put rows in windows that have not happened yet.
"""

from __future__ import annotations

from datetime import UTC, datetime

from churn.errors import ChurnError

EXAMPLE = "2026-11-26T09:30:00Z"


def parse_timestamp(text: str, what: str) -> datetime:
    """`text` as an aware UTC datetime; a naive time is UTC; ChurnError names `what`."""
    value = str(text).strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ChurnError(
            f"{what} {text!r} is not an ISO 8601 time: write it like {EXAMPLE} "
            "(a date alone means its midnight; no offset means UTC)"
        ) from None
    return as_utc(moment)


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def aware_utc(moment: datetime, what: str) -> datetime:
    """`moment` in UTC; a time from code (not from a person) must say its zone."""
    if not isinstance(moment, datetime):
        raise ChurnError(f"{what} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ChurnError(f"{what} must be timezone-aware (e.g. datetime.now(timezone.utc)), got {moment!r}")
    return moment.astimezone(UTC)


def refuse_future(moment: datetime, what: str, now: datetime | None = None) -> datetime:
    """`moment` unchanged, or ChurnError when it is later than `now` (default: the clock)."""
    now = datetime.now(UTC) if now is None else as_utc(now)
    if as_utc(moment) > now:
        raise ChurnError(
            f"{what} {as_utc(moment).isoformat()} is in the future (now is {now.isoformat(timespec='seconds')}): "
            "give the time the data stands for, at the latest now"
        )
    return moment
