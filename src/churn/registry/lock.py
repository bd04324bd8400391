"""Serialise registry read-modify-write sequences (registration, promotion, rollback).

MLflow has no transactions across calls, so two promotions racing could each read the
old champion and both record it as "previous". An exclusive lock makes the sequence
atomic for every process on this machine; for a shared server, CI serialises promotions
with a concurrency group.
"""

from __future__ import annotations

import fcntl
import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_DIR = Path.home() / ".cache" / "churn" / "locks"


def lock_path(tracking_uri: str) -> Path:
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///")).resolve()
        return database.with_name(database.name + ".registry.lock")
    digest = hashlib.md5(tracking_uri.encode()).hexdigest()[:16]
    return LOCK_DIR / f"registry-{digest}.lock"


@contextmanager
def registry_lock(tracking_uri: str) -> Iterator[None]:
    path = lock_path(tracking_uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
