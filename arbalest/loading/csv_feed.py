"""Reading CSV objects into chunks (``CsvChunks``): records read in Redshift's CSV dialect
(``CsvReader``) into tables of text values, at most ``CSV_CHUNK_ROWS`` records or about
``CSV_CHUNK_BYTES`` each.

A chunk's lines are split by Arrow's CSV reader, from the object's bytes where it can
(``Block``: records with quoted fields read in Python and kept beside the others), else
from text; record by record in Python when Arrow's reader would not split them as Redshift
does; a record with the wrong field count is rejected here. Each chunk carries its text
values to the converting thread, where the CSV lane (``csv_lane``) converts them when it can
prove them plain, else they are written to a chunk file for the query that converts it
(``tabular``); it carries the keys its object has (the drift report). (The lane ran in the
reading thread until the reading thread alone had to keep up with a DuckDB load; chunks
waiting as text once raised a load's peak memory by about 170 MB per 1M rows, from a
growth of the process beyond Arrow's allocations that was not explained then: probably
pyarrow's allocator keeping its huge pages (``tabular.arrow_without_huge_pages``), not
measured apart. Measured now, 1M rows into DuckDB and PostgreSQL both peak lower with the
lane in the converting thread.)
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from arbalest import convert
from arbalest.errors import StoreError
from arbalest.loading import fastlane
from arbalest.loading.csv_lane import CsvLane, csv_lane_for
from arbalest.loading.csv_reader import Block, CsvReader, CsvRecord, Lines, shown
from arbalest.loading.drift import KeyShape, NameTree, read_objects, shape_of
from arbalest.loading.formats import CsvOptions, delimiter_for
from arbalest.loading.parquet_lane import counting
from arbalest.loading.reader import compression_of, open_decompressed
from arbalest.loading.rejects import Reject
from arbalest.loading.tabular import TableChunk, csv_name, csv_query
from arbalest.schema._build import ColumnSpec
from arbalest.stores.base import ObjectInfo, ObjectStore

__all__ = [
    "CSV_CHUNK_BYTES",
    "CSV_CHUNK_ROWS",
    "EXTRA_COLUMNS",
    "MISSING_COLUMNS",
    "CsvChunks",
    "write_chunk",
]

#: A CSV chunk holds at most this many records, or about this many bytes of them.
CSV_CHUNK_ROWS: Final = 100_000
CSV_CHUNK_BYTES: Final = 4 * 1024 * 1024
EXTRA_COLUMNS: Final = 1202
MISSING_COLUMNS: Final = 1203


def _csv_tree(names: Sequence[str]) -> NameTree:
    """The header's names as a tree (``child.name``: ``name`` inside ``child``)."""
    tree: NameTree = {}
    for name in names:
        parts = name.split(".")
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            node = child
        node.setdefault(parts[-1], None)
    return tree


class _Columns:
    """Collects the mapped values of CSV records and writes them out as chunk files."""

    def __init__(self, count: int, workdir: Path, obj: int) -> None:
        self.count = count
        self.workdir = workdir
        self.obj = obj
        self.number = 0
        self.lines: list[int] = []
        self.rows: list[list[str | None]] = []
        self.tables: list[pa.Table] = []  # records collected before ``lines``, as tables
        self.taken = 0  # the records in ``tables``
        self.schema = pa.schema(
            [pa.field("line", pa.int64())]
            + [pa.field(f"c{i}", pa.string()) for i in range(1, count + 1)]
        )

    def add(self, line: int, values: list[str | None]) -> None:
        self.lines.append(line)
        self.rows.append(values)

    def extend(self, lines: list[int], rows: list[list[str | None]]) -> None:
        self.lines += lines
        self.rows += rows

    @property
    def size(self) -> int:
        """The records collected so far."""
        return self.taken + len(self.lines)

    def extend_table(
        self,
        lines: Sequence[int] | pa.Array,
        table: pa.Table,
        mapping: Sequence[int | None] | None,
    ) -> None:
        """Collect records read as a table of text columns, that start on ``lines``, each
        field's value picked from its place in the records (``mapping``)."""
        self._gather(mapping)
        count = table.num_rows
        arrays: list[pa.Array | pa.ChunkedArray] = [
            lines if isinstance(lines, pa.Array) else pa.array(lines, pa.int64())
        ]
        for place in mapping or [None] * self.count:
            if place is None:
                arrays.append(pa.nulls(count, pa.string()))
            else:
                arrays.append(table.column(place))
        self.tables.append(pa.Table.from_arrays(arrays, schema=self.schema))
        self.taken += count

    def _gather(self, mapping: Sequence[int | None] | None) -> None:
        """Turn the records collected as Python values into a table (none when there are
        none, unless no table was made yet)."""
        if not self.lines and self.tables:
            return
        columns = list(zip(*self.rows, strict=True))
        count = len(self.lines)
        arrays = [pa.array(self.lines, pa.int64())]
        for place in mapping or [None] * self.count:
            if place is None or not columns:
                arrays.append(pa.nulls(count, pa.string()))
            else:
                arrays.append(pa.array(columns[place], pa.string()))
        self.tables.append(pa.Table.from_arrays(arrays, schema=self.schema))
        self.taken += count
        self.lines, self.rows = [], []

    def take(self, mapping: Sequence[int | None] | None) -> pa.Table:
        """The records collected (maybe none), as a table (``line``, ``c1..cn``), each
        field's value picked from its place in the records (``mapping``); then none."""
        self._gather(mapping)
        table = self.tables[0] if len(self.tables) == 1 else pa.concat_tables(self.tables)
        self.tables, self.taken = [], 0
        return table

    def chunk_path(self) -> Path:
        """A new chunk file's name (``write_chunk`` writes it)."""
        path = self.workdir / f"{self.obj:08d}-{self.number:06d}.parquet"
        self.number += 1
        return path


def write_chunk(table: pa.Table, path: Path) -> None:
    """Write records taken (``_Columns.take``) to their chunk file (``chunk_path``)."""
    pq.write_table(table, path, compression="none")


class CsvChunks:
    """Reads CSV objects into chunks for a schema's columns.

    Args:
        specs: The schema's columns.
        options: The conversion options.
        csv: The CSV options.
        workdir: Where chunk files go.
    """

    def __init__(
        self,
        specs: Sequence[ColumnSpec],
        options: convert.ConvertOptions,
        csv: CsvOptions,
        workdir: Path,
    ) -> None:
        self._workdir = workdir
        self._specs = list(specs)
        self._options = options
        self._csv = csv
        self._objects_read = read_objects(self._specs)
        off = fastlane.turned_off()
        self._lane: CsvLane | None = None if off else csv_lane_for(self._specs, options)

    def chunks(
        self, store: ObjectStore, index: int, info: ObjectInfo, compression: str | None
    ) -> Generator[TableChunk, None, None]:
        """The chunks of one CSV object, in order."""
        options = self._csv
        reader = CsvReader(options, delimiter_for(info.key, options))
        compression = compression_of(info.key, compression)
        n = len(self._specs)
        state = _CsvState(
            _Columns(n, self._workdir, index),
            None if options.header else list(range(n)),
            n,
        )
        pending: TableChunk | None = None
        segment = _Segment()
        try:
            with store.open(info.key) as raw, open_decompressed(raw, compression) as stream:
                reader.blocks = state.blocks()
                for item in reader.items(stream):
                    if isinstance(item, CsvRecord):
                        self._take_record(info.key, reader, state, segment, item)
                    elif isinstance(item, Block):
                        self._take_block(info.key, reader, state, segment, item)
                    else:
                        self._take_lines(info.key, reader, state, segment, item)
                    reader.blocks = state.blocks()
                    if state.collected.size + len(segment.lines) >= CSV_CHUNK_ROWS or (
                        state.nbytes >= CSV_CHUNK_BYTES
                    ):
                        self._flush(info.key, reader, state, segment)
                        if pending is not None:
                            yield pending
                        pending = self._csv_chunk(index, info, state, last=False)
                self._flush(info.key, reader, state, segment)
        except (OSError, EOFError) as exc:
            if pending is not None:
                pending.discard()
            raise StoreError(f"cannot read {info.key!r} as CSV: {exc}") from exc
        if pending is not None:
            yield pending
        yield self._csv_chunk(index, info, state, last=True)

    def _take_record(
        self, key: str, reader: CsvReader, state: _CsvState, segment: _Segment, item: CsvRecord
    ) -> None:
        """Collect a record read in Python: into the segment when it is a good one and the
        segment can take it, else now (a reject, or the header)."""
        if (
            state.mapping is not None
            and state.expected > 1
            and item.error is None
            and len(item.values) == state.expected
        ):
            segment.add_record(item, reader.delimiter * (state.expected - 1) + "\n")
            state.nbytes += len(item.text) + 1
            return
        if state.mapping is None:
            self._flush(key, reader, state, segment)
        self._take(key, state, [item.line], [item.values], [item.text], item)

    def _take_block(
        self, key: str, reader: CsvReader, state: _CsvState, segment: _Segment, item: Block
    ) -> None:
        """Collect a block of lines as bytes: split by Arrow's CSV reader, else (a line with
        another field count, bytes that are not UTF-8) as text, line by line."""
        self._flush(key, reader, state, segment)
        state.nbytes += len(item.data)
        table = reader.split(item.plain, state.expected)
        if table is None:  # line by line: those without a quote split in Python
            self._take_block_lines(key, reader, state, item)
            return
        rows = table.num_rows
        lines = pc.add(counting(rows), item.first - 1)
        extra = 0  # the lines of the records read in Python so far
        shift = [0] * rows if item.places else []
        numbers = []
        for place, span in zip(item.places, item.spans, strict=True):
            numbers.append(item.first + place + extra)
            extra += span
            if place < rows:
                shift[place] += span
        if shift:
            lines = pc.add(lines, pc.cumulative_sum(pa.array(shift, pa.int64())))
        state.collected.extend_table(lines, table, state.mapping)
        if numbers:  # (after the others: rows come in no particular order)
            state.collected.extend(numbers, item.values)

    def _take_block_lines(self, key: str, reader: CsvReader, state: _CsvState, item: Block) -> None:
        """Collect a block's records line by line: the runs of lines without a quote
        character split in Python (``rows_of``: it rejects wrong field counts)."""
        lines = item.plain.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        done = extra = 0  # the next line of plain; the lines of records before it
        ends: list[tuple[int, list[str | None], int]] = [(len(lines), [], 0)]
        for place, values, span in [*zip(item.places, item.values, item.spans, strict=True), *ends]:
            if place > done:
                run = b"".join(line + b"\n" for line in lines[done:place])
                first = item.first + done + extra
                self._take_rows(key, reader, state, reader.lines_of(first, run))
            if values:
                state.collected.extend([item.first + place + extra], [values])
            done, extra = place, extra + span

    def _take_lines(
        self, key: str, reader: CsvReader, state: _CsvState, segment: _Segment, item: Lines
    ) -> None:
        """Collect a run of lines without a quote character: into the segment, split by
        Arrow's CSV reader with the records around it, when it can (``CsvReader.plain``),
        else record by record in Python."""
        state.nbytes += len(item.text)
        if state.mapping is None:  # the header first, on its own (unless an empty line)
            end = item.text.find("\n")
            if end <= 0 or item.text[: end + 1] in ("\r\n",):
                self._take_rows(key, reader, state, item)
                return
            self._take_rows(key, reader, state, Lines(item.first, item.text[: end + 1]))
            item = Lines(item.first + 1, item.text[end + 1 :])
            if not item.text:
                return
        if state.mapping is not None and state.expected > 1 and reader.plain(item, state.expected):
            segment.add_lines(item)
            return
        self._flush(key, reader, state, segment)
        self._take_rows(key, reader, state, item)

    def _flush(self, key: str, reader: CsvReader, state: _CsvState, segment: _Segment) -> None:
        """Collect the records of the segment: split by Arrow's CSV reader, the records read
        in Python put in their places; or, when a line has another field count, item by item
        in Python (which rejects it)."""
        if not segment.items:
            return
        table = reader.split("".join(segment.texts), state.expected)
        if table is None:
            for item in segment.items:
                if isinstance(item, CsvRecord):
                    state.collected.extend([item.line], [item.values])
                else:
                    self._take_rows(key, reader, state, item)
        else:
            if segment.places:
                table = _put_in_place(table, segment.places, segment.values, state.expected)
            state.collected.extend_table(segment.lines, table, state.mapping)
        segment.clear()

    def _take_rows(self, key: str, reader: CsvReader, state: _CsvState, item: Lines) -> None:
        numbers, rows, errors, texts = reader.rows_of(item)
        for error in errors:
            state.reject(key, error)
        self._take(key, state, numbers, rows, texts, None)

    def _take(
        self,
        key: str,
        state: _CsvState,
        numbers: list[int],
        rows: list[list[str | None]],
        texts: list[str],
        record: CsvRecord | None,
    ) -> None:
        """Collect records: the header first; a record with a wrong field count rejected."""
        if record is not None:
            if record.error is not None:
                state.reject(key, record)
                return
            state.nbytes += len(record.text) + 1
        if state.mapping is None and rows:  # the header
            names = rows[0]
            state.mapping = self._header(key, names)
            state.expected = len(names)
            state.shape = shape_of(self._objects_read, _csv_tree([v or "" for v in names]))
            numbers, rows, texts = numbers[1:], rows[1:], texts[1:]
        expected = state.expected
        counts = [len(row) for row in rows]
        if counts.count(expected) != len(counts):
            kept = []
            for i, count in enumerate(counts):
                if count == expected:
                    kept.append(i)
                    continue
                reason = (
                    f"Extra column(s) found: {count} fields, {expected} expected"
                    if count > expected
                    else f"Missing column(s): {count} fields, {expected} expected"
                )
                code = EXTRA_COLUMNS if count > expected else MISSING_COLUMNS
                state.reject(key, CsvRecord(numbers[i], [], (code, reason), texts[i]))
            numbers = [numbers[i] for i in kept]
            rows = [rows[i] for i in kept]
        state.collected.extend(numbers, rows)

    def _header(self, key: str, names: list[str | None]) -> list[int | None]:
        """Where each field's value is in the records, by the header's names."""
        where: dict[str, int] = {}
        twice: set[str] = set()
        for position, name in enumerate(names):
            if name is None:
                continue
            if name in where:
                twice.add(name)
            where.setdefault(name, position)
        mapping: list[int | None] = []
        for spec in self._specs:
            name = csv_name(spec)
            if name in twice:
                raise StoreError(
                    f"{key!r}: the header names {name!r} more than once, so which column the "
                    f"field {spec.qualname!r} reads cannot be told"
                )
            if name not in where and not spec.nullable:
                raise StoreError(
                    f"{key!r}: the header has no column {name!r} for the NOT NULL field "
                    f"{spec.qualname!r}: every row would be rejected"
                )
            mapping.append(where.get(name))
        return mapping

    def _csv_chunk(
        self, index: int, info: ObjectInfo, state: _CsvState, *, last: bool
    ) -> TableChunk:
        """The records collected as a chunk: their text values, for the lane to convert in
        the converting thread (``_converted``), which writes them to the chunk file for the
        query when it cannot; without a lane, written to the chunk file here."""
        table = state.collected.take(state.mapping)
        path = state.collected.chunk_path()
        lane = self._lane
        if lane is None:
            write_chunk(table, path)
        # (with the lane, the file is the converting thread's to write, and delete)
        chunk = TableChunk(
            index, info, 1, path, state.nbytes, lane is None, last, shape=state.shape
        )
        chunk.read_rejects = sorted(state.rejects, key=lambda r: r.line)
        state.rejects, state.nbytes = [], 0
        specs, options = self._specs, self._options
        chunk.query = lambda seq: csv_query(specs, path, seq, options)
        if lane is not None:
            chunk.table = table
            chunk.lane = functools.partial(_converted, lane, chunk)
        return chunk


def _converted(lane: CsvLane, chunk: TableChunk, table: pa.Table, seq: int) -> pa.Table | None:
    """A chunk's text values converted by the lane, numbered (``_numbered``); ``None`` when
    the lane cannot prove them plain: then written to the chunk's file, for its query.

    The lane runs here, in the converting thread, not in the reading one: the reading
    thread alone then keeps up with a DuckDB load (``tabular_feed.STREAMED_LOCAL_READERS``).
    """
    rows = lane(table)
    if rows is not None:
        return _numbered(rows, seq)
    chunk.temporary = True  # (ours to delete from now on, written or not)
    write_chunk(table, chunk.path)
    return None


def _put_in_place(
    table: pa.Table, places: list[int], values: list[list[str | None]], expected: int
) -> pa.Table:
    """Records split by Arrow's reader, with the records read in Python (``values``) put
    in their rows (``places``) in place of placeholders."""
    mask = [False] * table.num_rows
    for place in places:
        mask[place] = True
    marks = pa.array(mask, pa.bool_())
    columns = list(zip(*values, strict=True))
    return pa.Table.from_arrays(
        [
            pc.replace_with_mask(
                table.column(i).combine_chunks(), marks, pa.array(columns[i], pa.string())
            )
            for i in range(expected)
        ],
        names=table.column_names,
    )


def _numbered(rows: pa.Table, seq: int) -> pa.Table:
    """The lane's rows of a chunk, as the query gives them: ``chunk`` (its sequence number,
    known once the feed hands it out), ``line``, ``idx``, ``v1..vn``."""
    count = rows.num_rows
    return rows.add_column(0, "chunk", pa.repeat(pa.scalar(seq, pa.int32()), count)).add_column(
        2, "idx", pa.repeat(pa.scalar(0, pa.int32()), count)
    )


@dataclass
class _Segment:
    """Records gathered to be split by Arrow's CSV reader in one call: runs of lines without
    a quote character as they are, and each record read in Python (quoted fields) as a
    placeholder line of empty fields, its values put in its place afterwards."""

    items: list[Lines | CsvRecord] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line each record starts on
    places: list[int] = field(default_factory=list)  # the rows of the records read in Python
    values: list[list[str | None]] = field(default_factory=list)  # and their values

    def add_lines(self, item: Lines) -> None:
        text = item.text
        count = text.count("\n")
        if not text.endswith("\n"):  # the object's last line
            text += "\n"
            count += 1
        self.items.append(item)
        self.texts.append(text)
        self.lines.extend(range(item.first, item.first + count))

    def add_record(self, record: CsvRecord, placeholder: str) -> None:
        self.items.append(record)
        self.texts.append(placeholder)
        self.places.append(len(self.lines))
        self.lines.append(record.line)
        self.values.append(record.values)

    def clear(self) -> None:
        for part in (self.items, self.texts, self.lines, self.places, self.values):
            part.clear()


@dataclass
class _CsvState:
    """What reading one CSV object has gathered so far."""

    collected: _Columns
    mapping: list[int | None] | None  # where each field's value is (None: no header yet)
    expected: int  # fields per record
    shape: KeyShape | None = None
    nbytes: int = 0
    rejects: list[Reject] = field(default_factory=list)

    def blocks(self) -> int:
        """The fields per record, once records may be read as blocks of bytes, else 0."""
        return self.expected if self.mapping is not None and self.expected > 1 else 0

    def reject(self, key: str, record: CsvRecord) -> None:
        assert record.error is not None
        code, reason = record.error
        self.rejects.append(Reject(key, record.line, None, shown(record.text), reason, code))
