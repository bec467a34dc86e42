"""A local folder as an object store (also the main test double)."""

from __future__ import annotations

import builtins
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from arbalest.errors import ConfigurationError, ObjectNotFoundError, StoreError
from arbalest.stores.base import ObjectInfo, folder_prefix

__all__ = ["LocalStore"]


class LocalStore:
    """Objects are the files under a folder; keys are their paths relative to it.

    Example:
        ```python
        store = LocalStore("./lake")
        for info in store.list("events"):
            print(info.key, info.size)
        ```

    The ETag of a file is its size and modification time in nanoseconds, so a file that is
    rewritten gets a new one.
    """

    def __init__(self, root: str | os.PathLike[str], *, create: bool = False) -> None:
        path = Path(root).expanduser()
        if create:
            path.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            raise ConfigurationError(f"the store folder {str(path)!r} does not exist")
        self.root = path.resolve()

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file of a key (no check that it exists)."""
        path = Path(os.path.normpath(self.root / key))  # lexical: symlinked files are fine
        if path != self.root and self.root not in path.parents:
            raise StoreError(f"the key {key!r} is outside the store folder {str(self.root)!r}")
        return path

    def list(self, prefix: str = "", *, exclude: str | None = None) -> Iterator[ObjectInfo]:
        folder = folder_prefix(prefix)
        skip = folder_prefix(exclude) if exclude else None
        start = self.path(folder) if folder else self.root  # never a folder outside the store
        if not start.is_dir():
            return
        keys: list[tuple[str, os.stat_result]] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in filenames:
                key = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
                if skip and (key + "/").startswith(skip):
                    continue
                try:
                    keys.append((key, os.stat(os.path.join(dirpath, name))))
                except FileNotFoundError:  # removed while listing
                    continue
        keys.sort(key=lambda item: item[0])
        for key, st in keys:
            yield ObjectInfo(
                key=key,
                size=st.st_size,
                etag=f"{st.st_size}-{st.st_mtime_ns}",
                last_modified=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
            )

    def children(self, prefix: str = "") -> builtins.list[str]:
        folder = self.path(folder_prefix(prefix)) if prefix.strip("/") else self.root
        if not folder.is_dir():
            return []
        return sorted(entry.name for entry in folder.iterdir() if entry.is_dir())

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(f"no object {key!r} in {self.url}") from None
        except OSError as exc:
            raise StoreError(f"cannot read {key!r} in {self.url}: {exc.strerror}") from exc

    def get(self, key: str) -> bytes:
        with self.open(key) as fh:
            return fh.read()

    def tail(self, key: str, size: int) -> bytes:
        """The last ``size`` bytes of an object (all of it when it is smaller)."""
        with self.open(key) as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - max(1, size)))
            return fh.read()

    def put(self, key: str, data: bytes) -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".arbalest-tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers never see half a file
        except OSError as exc:
            raise StoreError(f"cannot write {key!r} in {self.url}: {exc.strerror}") from exc

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot delete {key!r} in {self.url}: {exc.strerror}") from exc

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()
