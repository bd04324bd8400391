"""Atomic writers: a stage's output is either the complete new file or the old one."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


def _sibling(target: Path, suffix: str) -> Path:
    """A new empty hidden file beside `target` (same directory, so same device: moving it
    into place is a rename), with the permissions the umask gives any new file."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    # mkstemp creates 0600; outputs get the usual permissions the umask allows.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    return tmp


@contextmanager
def temporary_sibling(target: str | Path) -> Iterator[Path]:
    """A hidden temporary path beside `target` (readers of the inference log skip dot
    files) for the caller to move into place; removed on exit if it was not, and so is any
    directory made for it that is left empty."""
    target = Path(target)
    made = [d for d in (target.parent, *target.parent.parents) if not d.exists()]  # innermost first
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, ".tmp")
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
        for directory in made:
            try:
                directory.rmdir()
            except OSError:  # not empty: the file was moved into place
                break


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `target`; it replaces `target` only if the block succeeds."""
    with temporary_sibling(target) as tmp:
        yield tmp
        os.replace(tmp, target)


class OutputSet:
    """Outputs written to temporary siblings, moved into place together (see `output_set`)."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def path(self, target: str | Path) -> Path:
        """Where to write `target` for now: a temporary file beside it, on the same device."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _sibling(target, ".staged")
        self._staged.append((tmp, target))
        return tmp

    def _commit(self) -> None:
        # Renames within a directory need no space, so once every file is written the
        # set lands whole.
        for tmp, target in self._staged:
            os.replace(tmp, target)

    def _discard(self) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)


@contextmanager
def output_set() -> Iterator[OutputSet]:
    """Write several outputs as one: every target is replaced only if all were written.

    A failure (a full disk, a bad value) leaves every target as it was and no temporary
    file behind.
    """
    staged = OutputSet()
    try:
        yield staged
        staged._commit()
    finally:
        staged._discard()


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, obj: Any) -> None:
    """Sorted keys and a trailing newline, so equal content gives equal bytes."""
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_parquet(target: str | Path, df: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression="snappy")


def write_csv(target: str | Path, df: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON report, or None when it is missing or unreadable (callers then say so)."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    # Every report is a JSON object; anything else is as unreadable to the callers.
    return report if isinstance(report, dict) else None


def md5_file(path: str | Path) -> str:
    """The digest DVC 3 records for a single file."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_md5(value: Any) -> str:
    """A stable digest of JSON-able content (sorted keys): the key of params, verdicts, reports."""
    return hashlib.md5(json.dumps(value, sort_keys=True).encode()).hexdigest()
