"""The incremental run's memory: what each window was computed from.

`state.json` records the settings and baseline the tables were made with, each log
partition's files (name, size) and the digest of the labels that matched its ids, and
per window the fingerprint of the partitions it covers. `sketches.parquet` keeps each
window's bucket counts so drift can be recomputed without re-reading the log.

The state is written after the tables: a crash in between leaves an older state, and the
next run recomputes more than needed, never less.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churn.io import read_json, write_json, write_parquet

STATE_FILE = "state.json"
SKETCH_FILE = "sketches.parquet"
FORMAT = 1


@dataclass
class State:
    settings: str = ""
    baseline: str = ""
    labels: str = ""
    partitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    windows: dict[str, str] = field(default_factory=dict)
    unknown_label_ids: int = 0
    drill_down: str = ""


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def window_key(granularity: str, start: pd.Timestamp) -> str:
    return f"{granularity}|{start.isoformat()}"


def load(directory: Path) -> State:
    raw = read_json(directory / STATE_FILE)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        return State()  # none yet, unreadable or older: everything is recomputed
    raw.pop("format")
    try:
        return State(**raw)
    except TypeError:
        return State()


def save(directory: Path, state: State) -> None:
    write_json(directory / STATE_FILE, {"format": FORMAT, **state.__dict__})


def load_sketches(directory: Path) -> pd.DataFrame | None:
    path = directory / SKETCH_FILE
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception:  # damaged: recompute rather than fail
        return None


def save_sketches(directory: Path, sketches: pd.DataFrame) -> None:
    write_parquet(directory / SKETCH_FILE, sketches)
