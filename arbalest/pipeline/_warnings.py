"""Warnings for mistakes that load nothing: a source with no objects under it, a column that
no record filled. Both are looked into only once the mistake is seen (a listing of the
parent folders, a look at the first records of one object), never on the load's way."""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import Iterator, Sequence
from typing import Any, Final

from arbalest.errors import ArbalestError
from arbalest.loading.formats import CsvOptions, delimiter_for
from arbalest.loading.reader import compression_of, open_decompressed
from arbalest.schema._build import ColumnSpec
from arbalest.stores.base import ObjectInfo, ObjectStore, folder_prefix

__all__ = ["empty_source", "unfilled_columns"]

#: How much of an object is read, at most, to see which keys its records have.
SAMPLE_BYTES: Final = 1024 * 1024
#: The records looked at, at most.
SAMPLE_RECORDS: Final = 200
#: Near misses named, at most.
SUGGESTIONS: Final = 3
#: How deep nested keys are collected (``actor.login`` is 2).
DEPTH: Final = 4


def _close(word: str, candidates: Sequence[str]) -> list[str]:
    """The candidates close to ``word``, closest first, ignoring case."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=SUGGESTIONS, cutoff=0.6)
    return [by_lower[f] for f in found]


def _near(key: str, seen: Sequence[str]) -> list[str]:
    """The seen key paths close to ``key``: among its siblings when its parent was seen
    (``actor.logn``: ``actor.login``), else among the paths as deep as it."""
    parent, dot, last = key.rpartition(".")
    if dot and parent in seen:
        siblings = [p[len(parent) + 1 :] for p in seen if p.startswith(parent + ".")]
        return [f"{parent}.{c}" for c in _close(last, [s for s in siblings if "." not in s])]
    return _close(key, [p for p in seen if p.count(".") == key.count(".")])


def empty_source(store: ObjectStore, source: str) -> str:
    """The warning for a source with no objects under it: ``nothing under 'evnts/'; did you
    mean 'events/'?`` (near misses among the folders of the deepest existing parent)."""
    prefix = folder_prefix(source)
    if not prefix:
        return "nothing in the store: it has no objects at all"
    message = f"nothing under {prefix!r}"
    segments = prefix.rstrip("/").split("/")
    with contextlib.suppress(ArbalestError):  # a warning never fails the step
        for depth in range(len(segments) - 1, -1, -1):
            parent = "/".join(segments[:depth])
            names = store.children(parent)
            if not names:
                continue
            close = _close(segments[depth], names)
            if close:
                shown = [
                    repr(folder_prefix("/".join([*segments[:depth], c, *segments[depth + 1 :]])))
                    for c in close
                ]
                return f"{message}; did you mean {' or '.join(shown)}?"
            shown = [repr(folder_prefix("/".join([*segments[:depth], n]))) for n in names[:5]]
            more = ", ..." if len(names) > 5 else ""
            return f"{message}; there are {', '.join(shown)}{more}"
    return message


def _display(spec: ColumnSpec) -> str:
    """A column's JSON key as people write it: ``createdAt``, ``actor.login``, ``a[0].b``."""
    out = ""
    for step in spec.path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _records(text: str) -> Iterator[Any]:
    """The JSON values of ``text`` one after another (one a line, or spread over lines),
    until one is cut off or not JSON."""
    decoder = json.JSONDecoder()
    at, count = 0, 0
    while count < SAMPLE_RECORDS:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        if at >= len(text):
            return
        try:
            value, at = decoder.raw_decode(text, at)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python reads
            return
        count += 1
        yield value


def _keys(value: Any, prefix: str = "", depth: int = 1) -> Iterator[tuple[str, bool]]:
    """Every key path of a record's objects, with whether its value is not null."""
    if not isinstance(value, dict) or depth > DEPTH:
        return
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        yield path, item is not None
        yield from _keys(item, path, depth + 1)


def _seen(store: ObjectStore, info: ObjectInfo, compression: str | None) -> dict[str, bool]:
    """The key paths of the first records of one object: whether any had a value there."""
    with (
        store.open(info.key) as raw,
        open_decompressed(raw, compression_of(info.key, compression)) as stream,
    ):
        data = stream.read(SAMPLE_BYTES)
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    seen: dict[str, bool] = {}
    for record in _records(text):
        for value in record if isinstance(record, list) else [record]:
            for path, filled in _keys(value):
                seen[path] = seen.get(path, False) or filled
    return seen


def _seen_columns(
    store: ObjectStore,
    info: ObjectInfo,
    compression: str | None,
    fmt: str,
    csv: CsvOptions,
) -> dict[str, bool]:
    """The column names of a CSV header or a Parquet object (a struct's fields as
    ``column.field``), as key paths."""
    from arbalest.loading import tabular

    codec = compression_of(info.key, compression)
    if fmt == "csv":
        if not csv.header:
            return {}
        reader = tabular.CsvReader(csv, delimiter_for(info.key, csv))
        with store.open(info.key) as raw, open_decompressed(raw, codec) as stream:
            for record in reader.records(stream):
                return {name: True for name in record.values if name}
        return {}
    import pyarrow as pa

    tail = getattr(store, "tail", None)
    if codec is None and tail is not None:
        data = tail(info.key, SAMPLE_BYTES)
    else:
        with store.open(info.key) as raw, open_decompressed(raw, codec) as stream:
            data = stream.read()
    seen: dict[str, bool] = {}

    def walk(fields: Any, prefix: str, depth: int) -> None:
        for item in fields:
            path = f"{prefix}.{item.name}" if prefix else item.name
            seen[path] = True
            if pa.types.is_struct(item.type) and depth < DEPTH:
                walk(item.type, path, depth + 1)

    walk(tabular.parquet_schema_from_tail(data, info.key), "", 1)
    return seen


def unfilled_columns(
    specs: Sequence[ColumnSpec],
    filled: dict[str, int],
    store: ObjectStore,
    objects: Sequence[ObjectInfo],
    compression: str | None,
    *,
    fmt: str = "json",
    csv: CsvOptions | None = None,
) -> list[str]:
    """Warnings for the columns NULL in every row loaded: ``no record had the key
    'createdAt'; records have 'created_at'``, with near misses among the keys of the first
    records of the first object loaded (for CSV and Parquet: among its column names)."""
    empty = [spec for spec in specs if filled.get(spec.name, 1) == 0]
    if not empty or not objects:
        return []
    seen: dict[str, bool] = {}
    # a warning never fails a step: a sample that cannot be read suggests nothing
    with contextlib.suppress(ArbalestError, OSError, EOFError, ValueError, RecursionError):
        if fmt == "json":
            seen = _seen(store, objects[0], compression)
        else:
            seen = _seen_columns(store, objects[0], compression, fmt, csv or CsvOptions())
    out = []
    for spec in empty:
        key = _display(spec)
        if key in seen:
            out.append(
                f"column {spec.name!r} is NULL in every row: no record's {key!r} held a value "
                "it could load"
            )
            continue
        close = _near(key, list(seen))
        have = f"; records have {', '.join(repr(c) for c in close)}" if close else ""
        out.append(f"no record had the key {key!r}{have}")
    return out
