"""Reading a sample of a source's records, as the loaders read them.

The objects are listed and opened as a copy step does (``store.list`` with the metadata
folder left out, decompression chosen by suffix), their lines cut into records by the
loaders' exact reader (``loading.records.scan``: one record a line, pretty-printed records,
several on a line, malformed stretches), and each record decoded as the loaders decode it
(``convert.json_loads``: the first of duplicate keys counts, big integers keep their digits).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from arbalest import convert
from arbalest.errors import ConfigurationError
from arbalest.loading.reader import BOM, compression_of, open_decompressed
from arbalest.loading.records import scan
from arbalest.pipeline._warnings import empty_source
from arbalest.stores.base import ObjectInfo, ObjectStore, folder_prefix, outside_reason

__all__ = [
    "DEFAULT_SAMPLE",
    "MAX_OBJECTS",
    "Readable",
    "Sample",
    "choose",
    "read_sample",
    "records_of",
    "spread",
]

#: Records read by default.
DEFAULT_SAMPLE: Final = 1000
#: Objects the sample is taken from, at most: spread over the listing, first and last
#: included, so that keys that appear only in newer objects are seen.
MAX_OBJECTS: Final = 10
#: The pipeline's default metadata folder, never part of a source.
METADATA: Final = "_arbalest/"
_BLOCK: Final = 1024 * 1024
_LINES: Final = 2000


@dataclass
class Sample:
    """The records of a sample, decoded, and where they came from.

    Attributes:
        records: The decoded records (JSON objects; anything else counts as a record with no
            keys, as it loads as a row of NULLs).
        objects: The keys of the objects read.
        listed: How many objects the source has.
        malformed: Stretches that are not JSON: rejected by every load, whatever the class.
    """

    records: list[Any] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    listed: int = 0
    malformed: int = 0


def spread(count: int, most: int) -> list[int]:
    """Up to ``most`` indexes of ``range(count)``, evenly spread, first and last included."""
    if count <= most:
        return list(range(count))
    if most == 1:
        return [0]
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def choose(listing: Sequence[ObjectInfo]) -> list[ObjectInfo]:
    """The objects a sample is read from: up to :data:`MAX_OBJECTS` of ``listing`` (in its
    order), evenly spread, first and last included."""
    return [listing[i] for i in spread(len(listing), MAX_OBJECTS)]


def read_sample(store: ObjectStore, source: str, size: int) -> Sample:
    """Read up to ``size`` records of the objects under ``source``.

    The records come from up to ``MAX_OBJECTS`` objects spread over the listing (in
    key order), about the same number from each; an object with fewer leaves the rest to
    the objects after it.

    Raises:
        ConfigurationError: ``size`` is not positive, ``source`` leaves the store, or there
            are no objects under it (with the nearest existing prefixes).
    """
    if isinstance(size, bool) or size < 1:
        raise ConfigurationError(f"sample={size!r}: give a number of records, 1 or more")
    reason = outside_reason(source)
    if reason is not None:
        raise ConfigurationError(
            f"source {source!r} {reason}: give a prefix relative to the store's root"
        )
    exclude = METADATA if folder_prefix(source) != METADATA else None
    listing = [info for info in store.list(source, exclude=exclude) if info.size > 0]
    if not listing:
        raise ConfigurationError(empty_source(store, source))
    chosen = choose(listing)
    sample = Sample(listed=len(listing))
    for done, info in enumerate(chosen):
        left = size - len(sample.records)
        if left <= 0:
            break
        quota = math.ceil(left / (len(chosen) - done))
        sample.objects.append(info.key)
        _read_object(store, info, quota, sample)
    return sample


def _read_object(store: ObjectStore, info: ObjectInfo, quota: int, sample: Sample) -> None:
    """Add up to ``quota`` records of one object to the sample."""
    taken = 0
    with (
        store.open(info.key) as raw,
        open_decompressed(raw, compression_of(info.key, None)) as stream,
    ):
        for _, text in records_of(stream):
            if text is None:
                sample.malformed += 1
                continue
            try:
                value = convert.json_loads(text)
            except (ValueError, RecursionError):
                sample.malformed += 1
                continue
            sample.records.append(value)
            taken += 1
            if taken >= quota:
                return


class Readable(Protocol):
    """A byte stream: what ``records_of`` reads."""

    def read(self, size: int = -1, /) -> bytes: ...


def records_of(stream: Readable) -> Iterator[tuple[int, str | None]]:
    """The records of a decompressed object, in order, as the loaders find them: each as the
    line it ends on and its text, or ``None`` for a stretch that is not JSON (a malformed
    stretch, or a line that is not UTF-8), which every load rejects whatever the class.

    The object is read a few thousand lines at a time: a caller that stops early has read
    little more than it took.
    """
    first_line, carry = 1, None
    for lines, last in _blocks(stream):
        found: list[tuple[int, str | None]] = [
            (first_line + i, None) for i, line in enumerate(lines) if line is None
        ]
        text = ["" if line is None else line for line in lines]
        result = scan(
            text,
            first_line,
            range(first_line, first_line + len(text)),
            carry=carry,
            last=last,
        )
        carry = result.carry
        first_line += len(text)
        found += [(m.line, None) for m in result.malformed]
        found += [(r.line, r.text) for r in result.records]
        found.sort(key=lambda item: item[0])  # stable: a line's records keep their order
        yield from found
        if carry is None and last:
            return


def _blocks(stream: Readable) -> Iterator[tuple[Sequence[str | None], bool]]:
    """The object's lines, decoded (``None`` for a line that is not UTF-8), a few thousand at
    a time, each batch with whether it is the last."""
    pending: list[str | None] = []
    for number, line in enumerate(_lines(stream)):
        if number == 0 and line.startswith(BOM):
            line = line[len(BOM) :]
        try:
            pending.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            pending.append(None)
        if len(pending) > _LINES:
            yield pending[:-1], False
            pending = pending[-1:]
    yield pending, True


def _lines(stream: Readable) -> Iterator[bytes]:
    """The lines of a byte stream, without their line ends, read a block at a time (not every
    decompressor reads lines)."""
    rest = b""
    while block := stream.read(_BLOCK):
        rest += block
        *complete, rest = rest.split(b"\n")
        for line in complete:
            yield line.removesuffix(b"\r")
    if rest:
        yield rest.removesuffix(b"\r")
