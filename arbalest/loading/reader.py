"""From objects to chunk files: streaming, decompression, and read-ahead.

Each object is read as a stream (never whole in memory), decompressed by its declared
compression or its suffix, and cut at line ends into chunk files of a bounded size that the
vectorised transform reads. Worker threads read the next objects while the current ones are
converted, with a bounded number of chunks waiting, so memory and disk stay bounded however
large an object or a load is.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Final, cast

import zstandard

from arbalest.convert import MAX_RECORD_BYTES
from arbalest.errors import ConfigurationError, StoreError
from arbalest.stores.base import ObjectInfo, ObjectStore
from arbalest.stores.local import LocalStore

__all__ = [
    "COMPRESSIONS",
    "IN_PLACE_BYTES",
    "LOCAL_READERS",
    "Chunk",
    "Feed",
    "compression_of",
    "open_decompressed",
    "spool",
    "spool_stream",
]

logger = logging.getLogger(__name__)

COMPRESSIONS: Final = ("gzip", "bzip2", "zstd")
_SUFFIXES: Final = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".bz2": "bzip2",
    ".zst": "zstd",
    ".zstd": "zstd",
}
#: A UTF-8 byte-order mark: skipped at the start of an object (after decompression).
BOM: Final = b"\xef\xbb\xbf"
#: Chunk files are cut at the first line end after this many bytes. Small, so that the
#: threads reading, converting and writing hold little each (2 MB instead of 8 took the peak
#: of 1M records in 33 MB objects from ~255 MB to ~225 MB, at the same CPU).
CHUNK_BYTES: Final = 2 * 1024 * 1024
#: A local, uncompressed object up to this size is read where it is, as one chunk: no copy.
IN_PLACE_BYTES: Final = 8 * 1024 * 1024
#: Objects read at once from a folder (a local disk needs fewer than S3's round trips).
LOCAL_READERS: Final = 2
_BLOCK: Final = 1024 * 1024


def compression_of(key: str, declared: str | None) -> str | None:
    """The compression of an object: the declared one, else the key's suffix, else none."""
    if declared is not None:
        if declared not in COMPRESSIONS:
            raise ConfigurationError(
                f"compression {declared!r} is not one of {', '.join(COMPRESSIONS)}"
            )
        return declared
    return _SUFFIXES.get(os.path.splitext(key)[1].lower())


def open_decompressed(raw: BinaryIO, compression: str | None) -> IO[bytes]:
    """Wrap a byte stream so that reading it gives the decompressed bytes."""
    if compression is None:
        return raw
    if compression == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if compression == "bzip2":
        return cast(IO[bytes], bz2.BZ2File(raw, mode="rb"))
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    raise ConfigurationError(f"unknown compression {compression!r}")


@dataclass
class Chunk:
    """Complete lines of one object, in a file the transform reads.

    Attributes:
        obj: The object's position in the load order.
        info: The object.
        first_line: The line number of the chunk's first line (1-based).
        path: The file with the lines (a temporary file, or the object's own file).
        nbytes: Its size.
        temporary: Whether ``path`` is ours to delete.
        last: Whether this is the object's last chunk.
        oversized: Lines longer than the 4 MB record limit, blanked in the file, with the
            start of each (the reject's value).
        seq: The chunk's position in the load (set when it is handed out).
    """

    obj: int
    info: ObjectInfo
    first_line: int
    path: Path
    nbytes: int
    temporary: bool
    last: bool
    oversized: dict[int, str] = field(default_factory=dict)
    seq: int = -1

    @property
    def batch_bytes(self) -> int:
        """What the chunk counts for in a batch (``converter.batches``): its bytes."""
        return self.nbytes

    def discard(self) -> None:
        """Delete the file if it is ours."""
        if self.temporary:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def spool(
    store: ObjectStore,
    info: ObjectInfo,
    obj: int,
    compression: str | None,
    workdir: Path,
    chunk_bytes: int = CHUNK_BYTES,
    in_place_bytes: int | None = None,
) -> Iterator[Chunk]:
    """Yield the chunks of one object, reading it as a stream.

    A local, uncompressed object of at most ``in_place_bytes`` (default: ``chunk_bytes``) is
    read where it is, as one chunk, without a copy (unless it starts with a byte-order mark,
    which the copy leaves out).
    """
    limit = chunk_bytes if in_place_bytes is None else in_place_bytes
    if isinstance(store, LocalStore) and compression is None and info.size <= limit:
        path = store.path(info.key)
        if not _starts_with_bom(path):
            yield Chunk(obj, info, 1, path, info.size, False, True)
            return
    try:
        with store.open(info.key) as raw, open_decompressed(raw, compression) as stream:
            yield from _cut(stream, info, obj, workdir, chunk_bytes)
    except (OSError, EOFError, zstandard.ZstdError) as exc:
        raise StoreError(
            f"cannot read {info.key!r} as {compression or 'uncompressed'} data: {exc}"
        ) from exc


def spool_stream(
    stream: IO[bytes],
    info: ObjectInfo,
    obj: int,
    workdir: Path,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[Chunk]:
    """Yield the chunks of an object already open, decompressed, as ``stream``: what
    ``spool`` does once it has opened the object (a byte-order mark left out, lines over the
    record limit blanked and kept in ``Chunk.oversized``, the last chunk marked ``last``)."""
    return _cut(stream, info, obj, workdir, chunk_bytes)


def _cut(
    stream: IO[bytes], info: ObjectInfo, obj: int, workdir: Path, chunk_bytes: int
) -> Iterator[Chunk]:
    """Cut a stream into chunk files of complete lines, each about ``chunk_bytes``.

    Lines are written to the chunk file as they are read, so memory holds one read and the
    unfinished line, not a chunk.
    """
    out = _ChunkWriter(info, obj, workdir, chunk_bytes)
    pending = b""  # the incomplete last line
    skipping = False  # inside a line longer than the record limit, dropping it
    # A read is never longer than the record limit, so that a line over the limit always
    # spans reads and is seen here, as the unfinished line or when it finishes.
    size = max(1, min(_BLOCK, chunk_bytes, MAX_RECORD_BYTES))
    try:
        head = _head(stream)
        cut = head.rfind(b"\n")
        if cut >= 0:
            out.write(head[: cut + 1])
        pending = head[cut + 1 :]
        while block := stream.read(size):
            if skipping:
                end = block.find(b"\n")
                if end < 0:
                    continue
                block = block[end + 1 :]
                out.write(b"\n")  # the dropped line keeps its place: line numbers stay right
                skipping = False
            elif pending:
                end = block.find(b"\n")
                if (  # it finishes too long
                    end >= 0
                    and len(pending) + end > MAX_RECORD_BYTES
                    and _too_long(pending + block[:end])
                ):
                    out.oversized[out.line] = _start_of(pending)
                    pending = b""
                    block = block[end:]  # its line end stays: the line is blanked
            cut = block.rfind(b"\n")
            if cut >= 0:
                out.write(pending + block[: cut + 1])
                pending = block[cut + 1 :]
            else:
                pending += block
            if _too_long(pending, unfinished=True):
                out.oversized[out.line] = _start_of(pending)
                pending = b""
                skipping = True
            yield from out.ready()
        if skipping:
            out.write(b"\n")
        elif pending:
            out.write(pending + b"\n")
        out.finish()
        yield from out.ready()
    finally:
        out.close()


class _ChunkWriter:
    """Writes complete lines into chunk files, cut at the first line end at or after
    ``chunk_bytes``. Each chunk is handed out once the next one is begun, so that the chunk
    that ends the object is the one marked last (never an empty one after it, which would
    be read as a blank line after the object's last)."""

    def __init__(self, info: ObjectInfo, obj: int, workdir: Path, chunk_bytes: int) -> None:
        self._info = info
        self._obj = obj
        self._workdir = workdir
        self._chunk_bytes = chunk_bytes
        self._number = 0
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._first_line = 1  # of the chunk being written
        self._lines = 0  # complete lines in it
        self._size = 0
        self._held: Chunk | None = None  # the last chunk cut, not handed out yet
        self._ready: list[Chunk] = []
        #: Lines over the record limit (blanked), by line number, with their start.
        self.oversized: dict[int, str] = {}

    @property
    def line(self) -> int:
        """The number of the next line to be written."""
        return self._first_line + self._lines

    def write(self, data: bytes) -> None:
        """Append complete lines (``data`` ends with a line end)."""
        while data:
            if self._file is None:
                self._open()
            room = self._chunk_bytes - self._size
            end = data.find(b"\n", room - 1) if len(data) >= room else -1
            part = data if end < 0 else data[: end + 1]
            self._put(part)
            if end < 0:
                return
            self._cut(last=False)
            data = data[end + 1 :]

    def finish(self) -> None:
        """The object has ended."""
        if self._file is None and self._held is not None:
            self._held.last = True
            self._ready.append(self._held)
            self._held = None
            return
        if self._file is None:  # an empty object: one empty chunk
            self._open()
        self._cut(last=True)
        if self._held is not None:
            self._ready.append(self._held)
            self._held = None

    def ready(self) -> Iterator[Chunk]:
        """Hand out the chunks that are ready, in order."""
        while self._ready:
            yield self._ready.pop(0)

    def close(self) -> None:
        """Delete what was not handed out (nothing, unless reading stopped part-way)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            if self._path is not None:
                self._path.unlink(missing_ok=True)
        for chunk in [*self._ready, *([self._held] if self._held else [])]:
            chunk.discard()
        self._ready, self._held = [], None

    def _open(self) -> None:
        self._path = self._workdir / f"{self._obj:08d}-{self._number:06d}.ndjson"
        self._number += 1
        self._file = self._path.open("wb")

    def _put(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._size += len(data)
        self._lines += data.count(b"\n")

    def _cut(self, *, last: bool) -> None:
        assert self._file is not None
        assert self._path is not None
        self._file.close()
        self._file = None
        end = self.line
        mine = {n: v for n, v in self.oversized.items() if n < end}
        self.oversized = {n: v for n, v in self.oversized.items() if n >= end}
        chunk = Chunk(
            self._obj, self._info, self._first_line, self._path, self._size, True, last, mine
        )
        if self._held is not None:
            self._ready.append(self._held)
        self._held = chunk
        self._first_line, self._lines, self._size = end, 0, 0


def _head(stream: IO[bytes]) -> bytes:
    """The object's first bytes, without a byte-order mark if it starts with one (however
    the reads split it)."""
    head = b""
    while len(head) < len(BOM) and (more := stream.read(len(BOM) - len(head))):
        head += more
    return head[len(BOM) :] if head == BOM else head


def _starts_with_bom(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(BOM)) == BOM
    except OSError:
        return False  # reading it in place reports the error


def _too_long(line: bytes, *, unfinished: bool = False) -> bool:
    """Whether a line is over the record limit, not counting whitespace at its ends (the
    carriage return of a CRLF line end is not part of the record).

    An unfinished line counts as over once it is, trailing whitespace aside, or once it is
    twice the limit whatever it holds (so that memory stays bounded).
    """
    if len(line) <= MAX_RECORD_BYTES:
        return False
    if unfinished and len(line) > 2 * MAX_RECORD_BYTES:
        return True
    return len(line.strip(b" \t\r")) > MAX_RECORD_BYTES


def _start_of(line: bytes) -> str:
    """The first 1,024 characters of an overlong line, as a reject's value."""
    return line.lstrip(b" \t\r")[:4096].decode("utf-8", errors="ignore")[:1024]


class Feed:
    """Chunks of many objects, in order, read ahead by worker threads.

    Iterate it for the chunks; ``close()`` (or leaving a ``with`` block) stops the workers
    and deletes the files of chunks nobody took.
    """

    def __init__(
        self,
        store: ObjectStore,
        objects: Sequence[ObjectInfo],
        *,
        compression: str | None,
        workdir: Path,
        workers: int | None = None,
        depth: int = 2,
        chunk_bytes: int = CHUNK_BYTES,
        in_place_bytes: int = IN_PLACE_BYTES,
    ) -> None:
        self._store = store
        self._objects = objects
        self._compression = compression
        self._workdir = workdir
        self._chunk_bytes = chunk_bytes
        self._in_place_bytes = in_place_bytes
        if workers is None:  # each reading thread holds a read and its own malloc arena
            workers = LOCAL_READERS if isinstance(store, LocalStore) else 4
        self._workers = max(1, workers)
        self._depth = max(1, depth)
        self._cancel = threading.Event()
        self._queues: dict[int, queue.Queue[Any]] = {}
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="arbalest-read")

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self, index: int) -> None:
        q: queue.Queue[Any] = queue.Queue(self._depth)
        self._queues[index] = q
        self._pool.submit(self._read, index, q)

    def _chunks(self, index: int, info: ObjectInfo) -> Iterator[Chunk]:
        """The chunks of one object, in order (a subclass reads another format here)."""
        compression = compression_of(info.key, self._compression)
        return spool(
            self._store,
            info,
            index,
            compression,
            self._workdir,
            self._chunk_bytes,
            self._in_place_bytes,
        )

    def _read(self, index: int, q: queue.Queue[Any]) -> None:
        try:
            for chunk in self._chunks(index, self._objects[index]):
                if not self._put(q, chunk):
                    chunk.discard()
                    return
            self._put(q, None)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(q, exc)

    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        while not self._cancel.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Chunk]:
        seq = 0
        started = 0
        for index in range(len(self._objects)):
            while started < len(self._objects) and started <= index + self._workers:
                self._start(started)
                started += 1
            q = self._queues[index]
            while True:
                item = q.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                item.seq = seq
                seq += 1
                yield item
            del self._queues[index]

    def close(self) -> None:
        """Stop reading ahead and delete chunk files that were not handed out."""
        self._cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for q in self._queues.values():
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, Chunk):
                    item.discard()
        self._queues.clear()
