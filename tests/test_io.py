"""churn.io: atomic writers and the DVC-compatible md5."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pandas as pd
import pytest

from churn.io import (
    atomic_path,
    md5_file,
    output_set,
    temporary_sibling,
    write_bytes,
    write_csv,
    write_json,
    write_parquet,
    write_text,
)


def _leftovers(directory, keep):
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_atomic_path_replaces_target_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp != target
        assert tmp.parent == target.parent
        tmp.write_text("new")
        assert target.read_text() == "old"  # not replaced before the block ends
    assert target.read_text() == "new"
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_atomic_path_keeps_old_file_on_exception(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_atomic_path_creates_nothing_on_exception_without_old_file(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise ValueError
    assert not target.exists()
    assert not target.parent.exists()  # the directory made for it went with it


def test_temporary_sibling_is_removed_with_the_folders_made_for_it_unless_moved(tmp_path):
    target = tmp_path / "log" / "date=2026-11-29" / "part.parquet"
    with temporary_sibling(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".part.parquet.")
        tmp.write_text("rows")
    assert not (tmp_path / "log").exists()
    with temporary_sibling(target) as tmp:
        tmp.write_text("rows")
        os.replace(tmp, target)
    assert target.read_text() == "rows" and _leftovers(target.parent, {"part.parquet"}) == []


def test_outputs_get_the_permissions_the_umask_gives(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "one.txt", "1")
        with output_set() as out:
            out.path(tmp_path / "two.txt").write_text("2")
    finally:
        os.umask(umask)
    assert {stat.S_IMODE((tmp_path / n).stat().st_mode) for n in ("one.txt", "two.txt")} == {0o644}


def test_failing_writer_leaves_old_json(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"a": 1})
    before = target.read_bytes()
    with pytest.raises(ValueError):
        write_json(target, {"a": float("nan")})  # allow_nan=False: fails mid-write
    assert target.read_bytes() == before
    assert _leftovers(tmp_path, {"metrics.json"}) == []


def test_write_creates_parent_directories(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    write_text(target, "hello ✓")
    assert target.read_text(encoding="utf-8") == "hello ✓"


def test_write_json_is_byte_stable_across_key_order(tmp_path):
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    write_json(first, {"b": 2, "a": {"y": [1, 2], "x": 0.5}, "c": None})
    write_json(second, {"c": None, "a": {"x": 0.5, "y": [1, 2]}, "b": 2})
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes().endswith(b"\n")
    assert json.loads(first.read_text()) == {"a": {"x": 0.5, "y": [1, 2]}, "b": 2, "c": None}


def test_write_json_differs_for_different_content(tmp_path):
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    write_json(first, {"a": 1})
    write_json(second, {"a": 2})
    assert first.read_bytes() != second.read_bytes()


@pytest.mark.parametrize("size", [0, 1, 1000, (1 << 20) + 17])
def test_md5_file_matches_hashlib(tmp_path, size):
    data = bytes((i * 31 + 7) % 256 for i in range(size))
    path = tmp_path / "blob.bin"
    write_bytes(path, data)
    assert path.read_bytes() == data
    assert md5_file(path) == hashlib.md5(data).hexdigest()


def test_parquet_and_csv_round_trip(tmp_path):
    df = pd.DataFrame({"id": ["a", "b"], "x": [1.5, 2.0]})
    write_parquet(tmp_path / "t.parquet", df)
    write_csv(tmp_path / "t.csv", df)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), df)
    assert (tmp_path / "t.csv").read_bytes() == b"id,x\na,1.5\nb,2.0\n"
    assert _leftovers(tmp_path, {"t.parquet", "t.csv"}) == []
