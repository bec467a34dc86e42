"""Reading Parquet and CSV objects into chunks, read ahead by worker threads (``TabularFeed``).

A Parquet object is read in place when it is a local, uncompressed file (else decompressed
into a scratch file) and cut into chunks of about ``PARQUET_CHUNK_BYTES`` (uncompressed).
When the schema's fields are of kinds the Parquet lane takes (``parquet_lane``), each chunk's
rows are read into Arrow here, in the reading threads, for the lane to convert; the query
(which reads the object's file) converts the chunks the lane leaves. CSV objects are read
into chunks by ``csv_feed.CsvChunks`` (converted by the CSV lane, else written to chunk
files for the query). Each chunk carries the query that converts it (``tabular``) and the
keys its object has (the drift report).
"""

from __future__ import annotations

import contextlib
import functools
import shutil
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from arbalest import convert
from arbalest.errors import StoreError
from arbalest.loading.csv_feed import EXTRA_COLUMNS, MISSING_COLUMNS, CsvChunks
from arbalest.loading.csv_reader import READ_BYTES
from arbalest.loading.drift import NameTree, read_objects, shape_of
from arbalest.loading.formats import CsvOptions
from arbalest.loading.parquet import parquet_columns, parquet_metadata, value_type
from arbalest.loading.parquet_lane import Lane, lane_for
from arbalest.loading.reader import Feed, compression_of, open_decompressed
from arbalest.loading.tabular import (
    TableChunk,
    arrow_without_huge_pages,
    parquet_query,
    release_arrow_memory,
)
from arbalest.schema._build import ColumnSpec
from arbalest.stores.base import ObjectInfo, ObjectStore
from arbalest.stores.local import LocalStore

__all__ = [
    "EXTRA_COLUMNS",
    "MISSING_COLUMNS",
    "READERS",
    "STREAMED_LOCAL_READERS",
    "TabularFeed",
]

#: Parquet rows are read in chunks of about this many bytes (uncompressed), held in memory
#: from reading to writing.
PARQUET_CHUNK_BYTES: Final = 4 * 1024 * 1024
#: Objects read at once by default.
READERS: Final = 2
#: Objects read at once from a folder for a warehouse that writes with threads of its own
#: (DuckDB, ``streamed``): one. Each reading thread holds its chunks and its own pages of
#: Arrow's and the C library's allocators: with two, a DuckDB load of 1M Parquet rows
#: peaked at about 245/254 MB (incremental/replace) against 232/240 with one (measured in
#: one process), as fast; 1M CSV rows at 241-256 MB against 229-241. CSV takes one since
#: the CSV lane converts in the converting thread (``csv_feed``): with the lane in the
#: reading thread, one took 11-19% more wall time than two.
STREAMED_LOCAL_READERS: Final = 1


class TabularFeed(Feed):
    """Chunks of Parquet or CSV objects, in order, read ahead by worker threads.

    Args:
        store: Where the objects are.
        objects: The objects, in load order.
        fmt: ``"parquet"`` or ``"csv"``.
        specs: The schema's columns.
        options: The conversion options.
        csv: The CSV options.
        compression: The declared compression (else by suffix).
        workdir: Where chunk files go.
        workers: Objects read at once (default: ``STREAMED_LOCAL_READERS`` for a ``streamed``
            load from a folder, else ``READERS``).
        streamed: The warehouse writes the batches with threads of its own (DuckDB).
    """

    def __init__(
        self,
        store: ObjectStore,
        objects: Sequence[ObjectInfo],
        *,
        fmt: str,
        specs: Sequence[ColumnSpec],
        options: convert.ConvertOptions,
        csv: CsvOptions,
        compression: str | None,
        workdir: Path,
        workers: int | None = None,
        streamed: bool = False,
    ) -> None:
        if workers is None:
            local = isinstance(store, LocalStore)
            workers = STREAMED_LOCAL_READERS if streamed and local else READERS
        super().__init__(store, objects, compression=compression, workdir=workdir, workers=workers)
        self._fmt = fmt
        self._specs = list(specs)
        self._options = options
        self._csv = csv
        self._objects_read = read_objects(self._specs)
        self._csv_chunks = CsvChunks(specs, options, csv, workdir)
        arrow_without_huge_pages()

    def _chunks(self, index: int, info: ObjectInfo) -> Iterator[TableChunk]:
        if self._fmt == "parquet":
            chunks = self._parquet(index, info)
        else:
            chunks = self._csv_chunks.chunks(self._store, index, info, self._compression)
        with contextlib.closing(chunks):  # (closed with this one: its clean-up runs now)
            for chunk in chunks:
                yield chunk
                if chunk.read_into_arrow:
                    # handed over: what reading it left in this thread's Arrow pages goes back
                    release_arrow_memory()

    # -- Parquet --

    def _local_copy(self, index: int, info: ObjectInfo) -> tuple[Path, bool]:
        """A file DuckDB can read: the object itself when it is a local, uncompressed file,
        else a decompressed copy (``True``: ours to delete)."""
        compression = compression_of(info.key, self._compression)
        if isinstance(self._store, LocalStore) and compression is None:
            return self._store.path(info.key), False
        path = self._workdir / f"object-{index:08d}.parquet"
        try:
            with (
                self._store.open(info.key) as raw,
                open_decompressed(raw, compression) as data,
                path.open("wb") as out,
            ):
                shutil.copyfileobj(data, out, READ_BYTES)
        except (OSError, EOFError) as exc:
            path.unlink(missing_ok=True)
            raise StoreError(f"cannot read {info.key!r}: {exc}") from exc
        return path, True

    def _parquet(self, index: int, info: ObjectInfo) -> Generator[TableChunk, None, None]:
        path, temporary = self._local_copy(index, info)
        handed = False
        try:
            metadata = parquet_metadata(path, info.key)
            schema = metadata.schema.to_arrow_schema()
            columns = parquet_columns(self._specs, schema, info.key, self._options)
            shape = shape_of(self._objects_read, _arrow_tree(schema))
            lane = lane_for(self._specs, columns)
            total = max(1, metadata.num_rows)
            given = 0  # the object's bytes handed out with chunks so far (for progress)
            # the top-level columns the fields read: read into Arrow when the lane may take them
            read = [str(s.path[0]) for s, (c, _) in zip(self._specs, columns, strict=True) if c]
            names = list(dict.fromkeys(read)) if lane is not None else None
            for start, end, table in _row_chunks(path, metadata, names):
                last = end >= metadata.num_rows
                # each chunk its share of the object's size, by rows: they add up to it
                share = info.size - given if last else info.size * (end - start) // total
                given += share
                chunk = TableChunk(
                    index, info, 1, path, share, temporary and last, last, shape=shape
                )
                # the query names the chunk by its sequence number, known when handed out
                chunk.query = functools.partial(
                    parquet_query, self._specs, columns, path, rows=(start, end)
                )
                if lane is not None and table is not None:
                    chunk.table = table
                    chunk.lane = functools.partial(_lane_at, lane, start)
                    chunk.read_into_arrow = True
                handed = handed or last
                yield chunk
        finally:
            if temporary and not handed:
                path.unlink(missing_ok=True)


def _lane_at(lane: Lane, first_row: int, table: pa.Table, seq: int) -> pa.Table | None:
    return lane(table, seq, first_row)


def _arrow_tree(schema: pa.Schema | pa.StructType) -> NameTree:
    tree: NameTree = {}
    for item in schema:
        kind = value_type(item.type)
        tree[item.name] = _arrow_tree(kind) if pa.types.is_struct(kind) else None
    return tree


def _row_chunks(
    path: Path, metadata: pq.FileMetaData, names: Sequence[str] | None
) -> Iterator[tuple[int, int, pa.Table | None]]:
    """The object's rows in chunks: each chunk's first row and the row after its last (from
    0), and its rows in Arrow (the columns ``names``), read a piece at a time, of about
    ``PARQUET_CHUNK_BYTES`` uncompressed; without ``names`` (nothing read), whole row groups
    of about that size. At least one chunk, empty for an object without rows."""
    rows = metadata.num_rows
    if names is None or not rows:
        for start, end in _row_ranges(metadata):
            yield start, end, None
        return
    size = sum(metadata.row_group(g).total_byte_size for g in range(metadata.num_row_groups))
    per_chunk = max(1, PARQUET_CHUNK_BYTES * rows // max(1, size))
    start = count = 0
    gathered: list[pa.RecordBatch] = []
    with pq.ParquetFile(path, metadata=metadata) as file:
        schema = pa.schema([file.schema_arrow.field(name) for name in names])
        for piece in file.iter_batches(
            batch_size=per_chunk, columns=list(names), use_threads=False
        ):
            gathered.append(piece)
            count += piece.num_rows
            if count >= per_chunk:
                yield start, start + count, pa.Table.from_batches(gathered, schema)
                start, gathered, count = start + count, [], 0
    if gathered:
        yield start, start + count, pa.Table.from_batches(gathered, schema)


def _row_ranges(metadata: pq.FileMetaData) -> list[tuple[int, int]]:
    """Rows of the object in chunks of whole row groups, about ``PARQUET_CHUNK_BYTES`` each
    (at least one range, empty for an object without rows)."""
    ranges: list[tuple[int, int]] = []
    start = end = size = 0
    for group in range(metadata.num_row_groups):
        info = metadata.row_group(group)
        end += info.num_rows
        size += info.total_byte_size
        if size >= PARQUET_CHUNK_BYTES:
            ranges.append((start, end))
            start, size = end, 0
    if start < end or not ranges:
        ranges.append((start, end))
    return ranges
