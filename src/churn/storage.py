"""Folders of Parquet files that live on local disk or in an object store (`s3://...`).

Data written around the DVC graph (the inference log, monitoring tables) is shared by a
team when its root is an object-store URL. Both kinds of root keep one guarantee: a file
appears whole or not at all. Locally that is a temporary sibling renamed into place
(`churn.io.atomic_path`); in an object store, one PUT of the finished bytes (S3 makes an
object visible only when its upload completes, multipart included). Listings are never
served from fsspec's cache, so a reader sees what other writers added meanwhile.

Object-store settings come from the usual environment: for S3, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` (non-AWS servers) and a region.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churn.config import is_url
from churn.errors import ChurnError
from churn.io import write_parquet


@dataclass(frozen=True)
class Folder:
    """A folder under a local path (a Path) or an object-store URL (text)."""

    root: str | Path

    @property
    def remote(self) -> bool:
        return is_url(self.root)

    def child(self, *names: str) -> Folder:
        if self.remote:
            return Folder("/".join([str(self.root).rstrip("/"), *names]))
        return Folder(Path(self.root).joinpath(*names))

    @property
    def name(self) -> str:
        return str(self.root).rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return str(self.root)

    def _fs(self) -> tuple[Any, str]:
        import fsspec

        try:
            fs, path = fsspec.core.url_to_fs(str(self.root))
        except ImportError as exc:
            raise ChurnError(f"cannot open {self.root}: {exc}") from None
        fs.invalidate_cache()  # another writer may have added files since the last listing
        return fs, path

    def _remote_error(self, action: str, exc: Exception) -> ChurnError:
        return ChurnError(
            f"cannot {action} {self.root} ({exc.__class__.__name__}: {exc}): check the object store's "
            "address and credentials (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and that the bucket exists"
        )

    def is_dir(self) -> bool:
        """Locally a directory; in an object store, a prefix that holds at least one object."""
        if not self.remote:
            return Path(self.root).is_dir()
        fs, path = self._fs()
        try:
            return bool(fs.isdir(path))
        except Exception as exc:
            raise self._remote_error("check", exc) from None

    def subfolders(self) -> list[Folder]:
        """Direct subfolders, sorted by name; none when the folder does not exist."""
        if not self.remote:
            local = Path(self.root)
            return [Folder(p) for p in sorted(local.iterdir()) if p.is_dir()] if local.is_dir() else []
        names = sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in self._entries() if e["type"] == "directory")
        return [self.child(name) for name in names]

    def files(self, prefix: str, suffix: str) -> list[str | Path]:
        """Complete files named prefix*suffix, sorted by name (temporary files start with a dot)."""
        if not self.remote:
            local = Path(self.root)
            return list(sorted(local.glob(f"{prefix}*{suffix}"))) if local.is_dir() else []
        names = sorted(e["name"].rsplit("/", 1)[-1] for e in self._entries() if e["type"] == "file")
        return [f"{str(self.root).rstrip('/')}/{n}" for n in names if n.startswith(prefix) and n.endswith(suffix)]

    def _entries(self) -> list[dict[str, Any]]:
        """The remote folder's listing (fsspec detail dicts); empty when it does not exist."""
        fs, path = self._fs()
        try:
            return list(fs.ls(path, detail=True))
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self._remote_error("list", exc) from None

    def exists(self, name: str) -> bool:
        if not self.remote:
            return (Path(self.root) / name).exists()
        fs, path = self._fs()
        try:
            return bool(fs.exists(f"{path}/{name}"))
        except Exception as exc:
            raise self._remote_error("check", exc) from None

    def write_parquet(self, name: str, frame: pd.DataFrame) -> str | Path:
        """Write `frame` as `name` in this folder, whole or not at all; the file's location."""
        if not self.remote:
            target = Path(self.root) / name
            write_parquet(target, frame)
            return target
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False, engine="pyarrow", compression="snappy")
        fs, path = self._fs()
        try:
            fs.pipe_file(f"{path}/{name}", buffer.getvalue())  # one PUT: visible only when complete
        except Exception as exc:
            raise self._remote_error("write to", exc) from None
        return f"{str(self.root).rstrip('/')}/{name}"

    def put_file(self, name: str, source: str | Path) -> str | Path:
        """Move the finished file `source` into this folder as `name`, whole or not at all;
        the file's location. Locally a rename, so `source` must be on the same filesystem
        (a hidden sibling of the target). In an object store, `source` is a local file
        (one upload, visible only when complete, multipart included) or an object of the
        same store (one server-side copy, then the source is deleted)."""
        if not self.remote:
            target = Path(self.root) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            return target
        fs, path = self._fs()
        try:
            if is_url(source):
                _, source_path = fsspec_path(str(source))
                fs.copy(source_path, f"{path}/{name}")
                fs.rm(source_path)
            else:
                fs.put_file(str(source), f"{path}/{name}")
        except Exception as exc:
            raise self._remote_error("write to", exc) from None
        return f"{str(self.root).rstrip('/')}/{name}"

    def remove(self) -> None:
        """Delete this folder and everything in it (staging folders; never the log itself)."""
        if not self.remote:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        fs, path = self._fs()
        try:
            if fs.exists(path):
                fs.rm(path, recursive=True)
        except Exception as exc:
            raise self._remote_error("remove", exc) from None


def fsspec_path(url: str) -> tuple[Any, str]:
    """The filesystem and path fsspec gives for `url`."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def read_parquet(file: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """One Parquet file from disk or an object store (errors propagate: callers name the file)."""
    if not is_url(file):
        return pd.read_parquet(file, engine="pyarrow", columns=columns)
    import fsspec

    with fsspec.open(str(file), "rb") as handle:
        return pd.read_parquet(handle, engine="pyarrow", columns=columns)
