"""Parquet and CSV objects: the same schema classes, rules, rejects and batches as JSON.

Each object is cut into chunks, read ahead by worker threads as JSON objects are
(``TabularFeed``). A chunk carries the DuckDB query that converts its rows; a batch of
chunks is converted with one query in a private DuckDB (``TabularTransform``), and leaves
the same ``Batch`` the JSON transform does, so every warehouse Arbalest feeds writes it the
same way.

- **Parquet**: fields map to the object's columns by ``key=``, a ``Nested`` class to a struct
  and an index in ``path=`` to a list element. A column's Parquet type must fit the field's
  type (``parquet_conversion``): Redshift's ``COPY ... FORMAT AS PARQUET`` refuses a column
  whose type differs from the table's, so a Parquet value is never read as text and
  converted; a column that does not fit fails the step, naming the object and the column.
  Values that fit the type but not the column (an overlong string, NULL in a NOT NULL
  column) are rejects, at the row's number in the object (from 1).
- **CSV**: records are read by ``CsvReader`` (Redshift's CSV dialect: a quote inside quotes
  written twice, blanks around a quoted field ignored, ``NULL AS``, ``EMPTYASNULL``,
  ``BLANKSASNULL``) into chunk files of text values, which then take COPY's rules for text, as
  JSON strings do. A record's line is the line it starts on in the object, counted from 1
  with the header, skipped lines and blank lines included.
"""

from __future__ import annotations

import functools
import logging
import queue
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from arbalest import convert
from arbalest.convert import (
    BAD_RECORD,
    BAD_SUPER,
    NOT_NULL,
    sql_literal,
)
from arbalest.errors import ConfigurationError, StoreError
from arbalest.loading.csv_reader import _BLOCK, CsvReader, _Record, _shown
from arbalest.loading.drift import KeyShape, ReadObjects, read_objects
from arbalest.loading.formats import CsvOptions, delimiter_for
from arbalest.loading.parquet import (
    Conversion,
    _ident,
    _Source,
    _value_type,
    parquet_columns,
    parquet_conversion,
    parquet_metadata,
    parquet_schema_from_tail,
)
from arbalest.loading.reader import Chunk, Feed, compression_of, open_decompressed
from arbalest.loading.records import Carry
from arbalest.loading.rejects import Reject
from arbalest.loading.transform import Batch, Converter, Transform, connect_private
from arbalest.schema._build import ColumnSpec
from arbalest.stores.base import ObjectInfo, ObjectStore
from arbalest.stores.local import LocalStore

__all__ = [
    "CsvReader",
    "TableChunk",
    "TabularConverter",
    "TabularFeed",
    "TabularTransform",
    "check_fields",
    "csv_name",
    "parquet_columns",
    "parquet_conversion",
]

logger = logging.getLogger(__name__)

#: A CSV chunk file holds at most this many records, or about this many bytes of them.
CSV_CHUNK_ROWS: Final = 100_000
CSV_CHUNK_BYTES: Final = 4 * 1024 * 1024
#: Parquet row groups are gathered into chunks of about this many bytes (uncompressed).
PARQUET_CHUNK_BYTES: Final = 64 * 1024 * 1024
EXTRA_COLUMNS: Final = 1202
MISSING_COLUMNS: Final = 1203
_INDEX_ERROR: Final = "Not an array or index out of range"


def csv_name(spec: ColumnSpec) -> str:
    """The CSV header name a field reads: its keys joined with ``.`` (``child.someBoolean``)."""
    return ".".join(str(step) for step in spec.path)


def check_fields(fmt: str, specs: Sequence[ColumnSpec]) -> None:
    """Refuse a schema that a format cannot feed (a list index has no meaning in CSV).

    Raises:
        ConfigurationError: Naming the field.
    """
    if fmt != "csv":
        return
    for spec in specs:
        if any(isinstance(step, int) for step in spec.path):
            raise ConfigurationError(
                f"field {spec.qualname!r} reads {spec.jsonpath}, an array element, and CSV "
                "has no arrays: give it a key (the header name) instead of a path"
            )


@dataclass
class TableChunk(Chunk):
    """Rows of one Parquet or CSV object, with the query that converts them.

    ``first_line`` is always 1: no record continues from one chunk into the next.

    Attributes:
        query: Given the chunk's sequence number, the query selecting ``chunk, line, idx,
            v1..vn, err_col, err_code, err_value``.
        shape: The keys of the objects the schema reads into (the drift report), or
            ``None`` when the object names no columns (CSV without a header).
        read_rejects: Records rejected while reading (wrong field counts, bad quoting or
            encoding), before any conversion.
    """

    query: Callable[[int], str] = lambda seq: ""
    shape: KeyShape | None = None
    read_rejects: list[Reject] = field(default_factory=list)


# -- shapes and field sources ----------------------------------------------------------------

#: A tree of names: each column or struct field, with its own fields (or ``None``).
NameTree = dict[str, "NameTree | None"]


def _shape(objects: ReadObjects, tree: NameTree) -> KeyShape:
    shape: list[tuple[str, ...] | None] = []
    for path in objects.paths:
        node: NameTree | None = tree
        for step in path:
            node = node.get(str(step)) if node is not None and isinstance(step, str) else None
        shape.append(None if node is None else tuple(node))
    return tuple(shape)


def _csv_tree(names: Sequence[str]) -> NameTree:
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


def _arrow_tree(schema: pa.Schema | pa.StructType) -> NameTree:
    tree: NameTree = {}
    for item in schema:
        kind = _value_type(item.type)
        tree[item.name] = _arrow_tree(kind) if pa.types.is_struct(kind) else None
    return tree


# -- the conversion query ---------------------------------------------------------------------


def _conversion_query(
    specs: Sequence[ColumnSpec],
    source: str,
    sources: Sequence[str | None],
    conversions: Sequence[Conversion | None],
    lists: Sequence[Sequence[tuple[str, int]]],
) -> str:
    """Convert ``source`` (which gives ``_arb_chunk, _arb_line`` and the columns the
    expressions in ``sources`` read) into ``chunk, line, idx, v1..vn, err_col, err_code,
    err_value``."""
    n = len(specs)
    level1 = ["_arb_chunk AS chunk", "_arb_line AS line"]
    for i, expr in enumerate(sources, start=1):
        level1.append(f"{expr if expr is not None else 'NULL'} AS s{i}")
    checks: list[list[str]] = [[] for _ in specs]
    k = 0
    for i, field_lists in enumerate(lists):
        for parent, index in field_lists:
            k += 1
            level1.append(f"{parent} AS p{k}")
            checks[i].append(
                f"CASE WHEN p{k} IS NOT NULL AND len(p{k}) <= {index} THEN {BAD_RECORD} END"
            )
    names_s = [f"s{i}" for i in range(1, n + 1)]
    names_p = [f"p{j}" for j in range(1, k + 1)]
    level2 = ["chunk", "line", *names_s, *names_p]
    for i, (spec, conversion) in enumerate(zip(specs, conversions, strict=True), start=1):
        value = "NULL" if conversion is None else conversion[0](f"s{i}")
        if value == "NULL":  # typed, as the warehouse's bulk load needs every column to be
            value = f"CAST(NULL AS {spec.rule.sql_type})"
        level2.append(f"{value} AS v{i}")
    names_v = [f"v{i}" for i in range(1, n + 1)]
    level3 = ["chunk", "line", *names_s, *names_v, *names_p]
    for i, (spec, conversion) in enumerate(zip(specs, conversions, strict=True), start=1):
        terms = list(checks[i - 1])
        if conversion is not None:
            terms.append(conversion[1](f"s{i}", f"v{i}"))
        if not spec.nullable:
            terms.append(f"CASE WHEN v{i} IS NULL THEN {NOT_NULL} END")
        level3.append(f"{'coalesce(' + ', '.join(terms) + ')' if terms else 'NULL'} AS e{i}")
    first = " ".join(f"WHEN e{i} IS NOT NULL THEN {i}" for i in range(1, n + 1))
    errors = ", ".join(f"e{i}" for i in range(1, n + 1))
    shown_values = []
    k = 0
    for i, field_lists in enumerate(lists, start=1):
        value = f"CAST(s{i} AS VARCHAR)"
        if field_lists:
            # an index out of range: show the list it was applied to
            lists_shown = ", ".join(
                f"CASE WHEN p{k + j} IS NOT NULL AND len(p{k + j}) <= {index} "
                f"THEN CAST(p{k + j} AS VARCHAR) END"
                for j, (_, index) in enumerate(field_lists, start=1)
            )
            value = f"CASE WHEN e{i} = {BAD_RECORD} THEN coalesce({lists_shown}) ELSE {value} END"
            k += len(field_lists)
        shown_values.append(f"WHEN {i} THEN {value}")
    shown = " ".join(shown_values)
    level4 = [
        "chunk",
        "line",
        "0 AS idx",
        *names_v,
        f"CASE {first} END AS err_col",
        f"coalesce({errors}) AS err_code",
        f"CASE CASE {first} END {shown} END AS err_value",
    ]
    query = source
    for cols in (level1, level2, level3, level4):
        query = f"SELECT {', '.join(cols)} FROM ({query})"
    return query


def _csv_query(
    specs: Sequence[ColumnSpec], path: Path, seq: int, options: convert.ConvertOptions
) -> str:
    """The conversion of a CSV chunk file (``line``, ``c1..cn`` text): COPY's text rules,
    with a blank field NULL for every type but CHAR, VARCHAR."""
    sources = []
    conversions: list[Conversion | None] = []
    for i, spec in enumerate(specs, start=1):
        rule = spec.field.rule
        if isinstance(rule, convert.VarcharRule | convert.CharRule):
            sources.append(f"c{i}")
        else:
            # Redshift: "Blank fields for other data types, such as INT, are always loaded
            # with NULL" (EMPTYASNULL, BLANKSASNULL)
            sources.append(f"CASE WHEN trim(c{i}, ' \t') = '' THEN NULL ELSE c{i} END")
        conversions.append(_text_conversion(rule, options))
    source = (
        f"SELECT {seq} AS _arb_chunk, line AS _arb_line, * "
        f"FROM read_parquet({sql_literal(str(path))})"
    )
    return _conversion_query(specs, source, sources, conversions, [[] for _ in specs])


def _text_conversion(rule: convert.Rule, options: convert.ConvertOptions) -> Conversion:
    if isinstance(rule, convert.SuperRule):
        # a SUPER field holds JSON text: parsed, or 1224 when it is not JSON
        def super_value(s: str) -> str:
            return rule.sql_value(f"CASE WHEN json_valid({s}) THEN CAST({s} AS JSON) END", options)

        def super_error(s: str, v: str) -> str:
            parsed = f"CASE WHEN json_valid({s}) THEN CAST({s} AS JSON) END"
            return (
                f"coalesce(CASE WHEN {s} IS NOT NULL AND NOT json_valid({s}) THEN {BAD_SUPER} "
                f"END, {rule.sql_error(parsed, v, options)})"
            )

        return super_value, super_error
    return (lambda s: rule.sql_value(s, options)), (lambda s, v: rule.sql_error(s, v, options))


def _parquet_query(
    specs: Sequence[ColumnSpec],
    columns: Sequence[tuple[_Source | None, Conversion | None]],
    path: Path,
    seq: int,
    *,
    rows: tuple[int, int],
) -> str:
    read = [str(spec.path[0]) for spec, (s, _) in zip(specs, columns, strict=True) if s]
    names = ", ".join(_ident(name) for name in dict.fromkeys(read))
    source = (
        f"SELECT {seq} AS _arb_chunk, file_row_number + 1 AS _arb_line"
        f"{', ' + names if names else ''} "
        f"FROM read_parquet({sql_literal(str(path))}, file_row_number = true) "
        f"WHERE file_row_number >= {rows[0]} AND file_row_number < {rows[1]}"
    )
    return _conversion_query(
        specs,
        source,
        [None if s is None else s.expr for s, _ in columns],
        [c for _, c in columns],
        [() if s is None else s.lists for s, _ in columns],
    )


# -- reading objects into chunks -------------------------------------------------------------


class _Columns:
    """Collects the mapped values of CSV records and writes them out as chunk files."""

    def __init__(self, count: int, workdir: Path, obj: int) -> None:
        self.count = count
        self.workdir = workdir
        self.obj = obj
        self.number = 0
        self.lines: list[int] = []
        self.rows: list[list[str | None]] = []
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

    def write(self, mapping: Sequence[int | None] | None) -> tuple[Path, int]:
        """Write the rows collected (maybe none) to a new chunk file, each field's value
        picked from its place in the records (``mapping``)."""
        columns = list(zip(*self.rows, strict=True))
        count = len(self.lines)
        arrays = [pa.array(self.lines, pa.int64())]
        for place in mapping or [None] * self.count:
            if place is None or not columns:
                arrays.append(pa.nulls(count, pa.string()))
            else:
                arrays.append(pa.array(columns[place], pa.string()))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        path = self.workdir / f"{self.obj:08d}-{self.number:06d}.parquet"
        self.number += 1
        pq.write_table(table, path, compression="none")
        rows = len(self.lines)
        self.lines, self.rows = [], []
        return path, rows


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
        workers: int = 2,
    ) -> None:
        super().__init__(store, objects, compression=compression, workdir=workdir, workers=workers)
        self._fmt = fmt
        self._specs = list(specs)
        self._options = options
        self._csv = csv
        self._objects_read = read_objects(self._specs)

    def _read(self, index: int, q: queue.Queue[Any]) -> None:
        info = self._objects[index]
        try:
            chunks = (
                self._parquet(index, info)
                if self._fmt == "parquet"
                else self._csv_chunks(index, info)
            )
            for chunk in chunks:
                if not self._put(q, chunk):
                    chunk.discard()
                    return
            self._put(q, None)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(q, exc)

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
                shutil.copyfileobj(data, out, _BLOCK)
        except (OSError, EOFError) as exc:
            path.unlink(missing_ok=True)
            raise StoreError(f"cannot read {info.key!r}: {exc}") from exc
        return path, True

    def _parquet(self, index: int, info: ObjectInfo) -> Iterator[TableChunk]:
        path, temporary = self._local_copy(index, info)
        handed = False
        try:
            metadata = parquet_metadata(path, info.key)
            schema = metadata.schema.to_arrow_schema()
            columns = parquet_columns(self._specs, schema, info.key, self._options)
            shape = _shape(self._objects_read, _arrow_tree(schema))
            ranges = _row_ranges(metadata)
            total = max(1, metadata.num_rows)
            given = 0  # the object's bytes handed out with chunks so far (for progress)
            for number, rows in enumerate(ranges):
                last = number == len(ranges) - 1
                # each chunk its share of the object's size, by rows: they add up to it
                share = info.size - given if last else info.size * (rows[1] - rows[0]) // total
                given += share
                chunk = TableChunk(
                    index, info, 1, path, share, temporary and last, last, shape=shape
                )
                # the query names the chunk by its sequence number, known when handed out
                chunk.query = functools.partial(
                    _parquet_query, self._specs, columns, path, rows=rows
                )
                handed = handed or last
                yield chunk
        finally:
            if temporary and not handed:
                path.unlink(missing_ok=True)

    # -- CSV --

    def _csv_chunks(self, index: int, info: ObjectInfo) -> Iterator[TableChunk]:
        options = self._csv
        reader = CsvReader(options, delimiter_for(info.key, options))
        compression = compression_of(info.key, self._compression)
        n = len(self._specs)
        state = _CsvState(
            _Columns(n, self._workdir, index),
            None if options.header else list(range(n)),
            n,
        )
        pending: TableChunk | None = None
        try:
            with self._store.open(info.key) as raw, open_decompressed(raw, compression) as stream:
                for item in reader.items(stream):
                    if isinstance(item, _Record):
                        self._take(info.key, state, [item.line], [item.values], [item.text], item)
                    else:
                        numbers, rows, errors, texts = reader.rows_of(item)
                        for error in errors:
                            state.reject(info.key, error)
                        self._take(info.key, state, numbers, rows, texts, None)
                        state.nbytes += len(item.text)
                    if len(state.collected.lines) >= CSV_CHUNK_ROWS or (
                        state.nbytes >= CSV_CHUNK_BYTES
                    ):
                        if pending is not None:
                            yield pending
                        pending = self._csv_chunk(index, info, state, last=False)
        except (OSError, EOFError) as exc:
            if pending is not None:
                pending.discard()
            raise StoreError(f"cannot read {info.key!r} as CSV: {exc}") from exc
        if pending is not None:
            yield pending
        yield self._csv_chunk(index, info, state, last=True)

    def _take(
        self,
        key: str,
        state: _CsvState,
        numbers: list[int],
        rows: list[list[str | None]],
        texts: list[str],
        record: _Record | None,
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
            state.shape = _shape(self._objects_read, _csv_tree([v or "" for v in names]))
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
                state.reject(key, _Record(numbers[i], [], (code, reason), texts[i]))
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
        path, _ = state.collected.write(state.mapping)
        chunk = TableChunk(index, info, 1, path, state.nbytes, True, last, shape=state.shape)
        chunk.read_rejects = sorted(state.rejects, key=lambda r: r.line)
        state.rejects, state.nbytes = [], 0
        specs, options = self._specs, self._options
        chunk.query = lambda seq: _csv_query(specs, path, seq, options)
        return chunk


@dataclass
class _CsvState:
    """What reading one CSV object has gathered so far."""

    collected: _Columns
    mapping: list[int | None] | None  # where each field's value is (None: no header yet)
    expected: int  # fields per record
    shape: KeyShape | None = None
    nbytes: int = 0
    rejects: list[Reject] = field(default_factory=list)

    def reject(self, key: str, record: _Record) -> None:
        assert record.error is not None
        code, reason = record.error
        self.rejects.append(Reject(key, record.line, None, _shown(record.text), reason, code))


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


# -- converting -------------------------------------------------------------------------------


class TabularTransform(Transform):
    """Converts batches of ``TableChunk``s: each chunk's own query, all in one statement."""

    def convert(self, chunks: Sequence[Chunk]) -> Batch:
        batch = Batch(list(chunks))
        parts = []
        for chunk in chunks:
            assert isinstance(chunk, TableChunk)
            batch.rejects += chunk.read_rejects
            # the chunk's number is known only now (the feed numbers chunks as it hands them out)
            parts.append(chunk.query(chunk.seq))
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE _arb_batch AS "
            + " UNION ALL ".join(f"({p})" for p in parts)
        )
        return batch

    def finish(self, batch: Batch, carries: dict[int, Carry]) -> None:
        chunks = batch.chunks
        batch.finished = True
        order = {c.seq: i for i, c in enumerate(chunks)}
        rejects = list(batch.rejects) + self._sql_rejects(chunks)
        first: dict[str, int] = {}
        for chunk in chunks:
            first.setdefault(chunk.info.key, order[chunk.seq])
        # an object's rejects in line order (those found reading it, and converting it)
        batch.rejects = sorted(rejects, key=lambda r: (first[r.key], r.line))
        filled = ", ".join(f"count(v{i})" for i in range(1, len(self.specs) + 1))
        batch.filled = [0] * len(self.specs)
        for seq, count, *values in self.con.execute(
            f"SELECT chunk, count(*), {filled} FROM _arb_batch WHERE err_code IS NULL "
            "GROUP BY chunk"
        ).fetchall():
            batch.rows[int(seq)] = int(count)
            batch.filled = [a + int(b) for a, b in zip(batch.filled, values, strict=True)]
        for chunk in chunks:
            assert isinstance(chunk, TableChunk)
            rows = batch.rows.get(chunk.seq, 0)
            if rows and chunk.shape is not None:
                batch.shapes[chunk.shape] = batch.shapes.get(chunk.shape, 0) + rows


class TabularConverter(Converter):
    """``Converter`` for Parquet and CSV chunks: every batch stands alone."""

    def __init__(
        self,
        specs: Sequence[ColumnSpec],
        options: convert.ConvertOptions,
        *,
        workers: int | None = None,
    ) -> None:
        import os
        from collections import deque

        count = workers or min(4, max(1, os.cpu_count() or 1))
        self._transforms = [
            TabularTransform(specs, options, connect_private(threads=1)) for _ in range(count)
        ]
        self._carries = {}
        self._in_flight = deque()


__all__ += ["parquet_metadata", "parquet_schema_from_tail"]
