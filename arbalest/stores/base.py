"""The object store protocol: list, read and write objects under a root."""

from __future__ import annotations

import builtins
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

__all__ = ["ObjectInfo", "ObjectStore", "folder_prefix", "join_key", "outside_reason"]


@dataclass(frozen=True, order=True)
class ObjectInfo:
    """One object: its key (relative to the store's root), size, ETag and modification time."""

    key: str
    size: int
    etag: str
    last_modified: dt.datetime


@runtime_checkable
class ObjectStore(Protocol):
    """Where the JSON objects are: a local folder or an S3 prefix.

    Keys are relative to the store's root and use ``/`` as the separator.
    """

    @property
    def url(self) -> str:
        """The root as a URL: ``s3://bucket/prefix`` or ``file:///path``."""
        ...

    def list(self, prefix: str = "", *, exclude: str | None = None) -> Iterator[ObjectInfo]:
        """Yield the objects under ``prefix`` read as a folder, in key order, page by page.

        ``"events"`` and ``"events/"`` are the same and never match ``events_old/``; ``""`` is
        the whole store. Objects under ``exclude`` (a folder prefix) are left out.
        """
        ...

    def children(self, prefix: str = "") -> builtins.list[str]:
        """The names of the folders directly under ``prefix`` (S3: common prefixes), sorted."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open one object for reading as a stream (its bytes as stored, not decompressed)."""
        ...

    def get(self, key: str) -> bytes:
        """Read one small object whole."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Write one object."""
        ...

    def delete(self, key: str) -> None:
        """Delete one object; a missing one is not an error."""
        ...

    def uri(self, key: str) -> str:
        """The full URL of a key (``s3://bucket/prefix/key``)."""
        ...


def folder_prefix(prefix: str) -> str:
    """Normalise a prefix to a folder: ``"events"`` -> ``"events/"``; ``""`` stays ``""``."""
    prefix = prefix.strip("/")
    return prefix + "/" if prefix else ""


def join_key(*parts: str) -> str:
    """Join key parts with single slashes."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def outside_reason(prefix: str) -> str | None:
    """Why ``prefix`` would name something outside a store's root, or ``None`` if it stays
    inside: an absolute path (``/data``, ``C:\\data``) or a ``..`` segment (``../other``,
    ``events/../../x``). A prefix is relative to the store, whatever the store."""
    if prefix.startswith(("/", "\\")) or _DRIVE.match(prefix):
        return "is an absolute path"
    if ".." in prefix.replace("\\", "/").split("/"):
        return "has a '..' segment"
    return None
