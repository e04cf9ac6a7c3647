"""Where a store lives: a local folder or an fsspec URL (``s3://bucket/key``).

Only what the commit protocol needs: atomic single-object writes (local: temp file +
``os.replace``; S3: one PUT), deletes, recursive listing, and a zarr store on the same root.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from dataclasses import dataclass, field
from typing import Any

import fsspec
import zarr.storage
from fsspec.implementations.local import LocalFileSystem


@dataclass
class Location:
    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self.root = self.root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)

    # ------------------------------------------------------------- naming
    def path(self, rel: str = "") -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def sibling(self, suffix: str) -> Location:
        return Location(self.url + suffix, dict(self.storage_options))

    @property
    def name(self) -> str:
        return posixpath.basename(self.root)

    # ------------------------------------------------------------- objects
    def read_bytes(self, rel: str) -> bytes | None:
        try:
            return self.fs.cat_file(self.path(rel))
        except (FileNotFoundError, OSError):
            return None

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Readers see the old object or the new one, never a torn write."""
        target = self.path(rel)
        if self.local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{target}.tmp-{uuid.uuid4().hex}"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        else:
            self.fs.pipe_file(target, data)

    def exists(self, rel: str = "") -> bool:
        self._invalidate()
        return self.fs.exists(self.path(rel))

    def delete(self, rels: list[str]) -> None:
        paths = [self.path(r) for r in rels]
        if not paths:
            return
        if self.local:
            for p in paths:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(p)
        else:
            self.fs.rm(paths)
        self._invalidate()

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every object under ``prefix`` (recursive), relative to the root."""
        self._invalidate()
        base = self.path(prefix)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        n = len(self.root) + 1
        return sorted(p[n:] for p in found if p.startswith(self.root + "/"))

    def remove_all(self) -> None:
        self._invalidate()
        if self.fs.exists(self.root):
            self.fs.rm(self.root, recursive=True)
        self._invalidate()

    def move(self, rel: str, dest: Location) -> None:
        """Move one object to the same key under ``dest`` (local: atomic rename)."""
        src, dst = self.path(rel), dest.path(rel)
        if self.local:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.replace(src, dst)
        else:
            self.fs.copy(src, dst)
            self.fs.rm(src)

    def _invalidate(self) -> None:
        if not self.local:
            self.fs.invalidate_cache()

    # ------------------------------------------------------------- zarr
    def zarr_store(self, read_only: bool = False) -> zarr.storage.StoreLike:
        if self.local:
            os.makedirs(self.root, exist_ok=True)
            return zarr.storage.LocalStore(self.root, read_only=read_only)
        return zarr.storage.FsspecStore.from_url(
            self.url, storage_options=self.storage_options, read_only=read_only
        )
