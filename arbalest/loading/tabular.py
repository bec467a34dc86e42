"""Parquet and CSV objects: the same schema classes, rules, rejects and batches as JSON.

Each object is cut into chunks, read ahead by worker threads as JSON objects are
(``TabularFeed``, in ``tabular_feed``). A chunk carries the DuckDB query that converts its
rows (built here); a batch of chunks is converted with one query in a private DuckDB
(``TabularTransform``), but for the Parquet chunks the lane takes (``parquet_lane``: no value
a reject, converted in Arrow), and leaves the same ``Batch`` the JSON transform does, so
every warehouse Arbalest feeds writes it the same way.

- **Parquet**: fields map to the object's columns by ``key=``, a ``Nested`` class to a struct
  and an index in ``path=`` to a list element. A column's Parquet type must fit the field's
  type (``parquet_conversion``): Redshift's ``COPY ... FORMAT AS PARQUET`` refuses a column
  whose type differs from the table's, so a Parquet value is never read as text and
  converted; a column that does not fit fails the step, naming the object and the column.
  Values that fit the type but not the column (an overlong string, NULL in a NOT NULL
  column) are rejects, at the row's number in the object (from 1).
- **CSV**: records are read by ``CsvReader`` (Redshift's CSV dialect: a quote inside quotes
  written twice, blanks around a quoted field ignored, ``NULL AS``, ``EMPTYASNULL``,
  ``BLANKSASNULL``) into chunks of text values (``csv_feed``), which then take COPY's
  rules for text, as JSON strings do: in Arrow by the CSV lane (``csv_lane``) when it can
  prove every value plain, else by the query over a chunk file. A record's line is the
  line it starts on in the object, counted from 1 with the header, skipped lines and blank
  lines included.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from arbalest import convert
from arbalest.convert import (
    BAD_RECORD,
    BAD_SUPER,
    NOT_NULL,
    sql_literal,
)
from arbalest.errors import ConfigurationError
from arbalest.loading.converter import Converter
from arbalest.loading.csv_reader import CsvReader
from arbalest.loading.drift import KeyShape
from arbalest.loading.parquet import (
    Conversion,
    ParquetSource,
    parquet_columns,
    parquet_conversion,
    parquet_metadata,
    parquet_schema_from_tail,
    quoted_name,
)
from arbalest.loading.reader import Chunk
from arbalest.loading.records import Carry
from arbalest.loading.rejects import Reject
from arbalest.loading.transform import Batch, Transform
from arbalest.schema._build import ColumnSpec

__all__ = [
    "CsvReader",
    "TableChunk",
    "TabularConverter",
    "TabularTransform",
    "arrow_without_huge_pages",
    "check_fields",
    "csv_name",
    "csv_query",
    "parquet_columns",
    "parquet_conversion",
    "parquet_query",
    "release_arrow_memory",
]


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


#: A chunk whose rows are held in Arrow counts in a batch (``converter.batches``, about 4 MB
#: a batch, ``backends.base.BATCH_BYTES``) as this many times their size: about what the
#: same rows are as JSON text, so that a batch holds about as many rows as a JSON batch.
#: Counted by their objects' bytes, a batch held 7 times as many Parquet rows (compressed)
#: and 3 times as many CSV rows, and a load of 1M rows peaked 75 MB (Parquet) and 20 MB
#: (CSV) higher (measured).
ARROW_WEIGHT: Final = 4


def release_arrow_memory() -> None:
    """Give what pyarrow's default pool keeps of the calling thread's freed memory back to
    the system now, when that pool is mimalloc (pyarrow's default where it is built in).

    mimalloc keeps a thread's freed pages, and returns them after a second, in an arena the
    kernel backs with 2 MB transparent huge pages: in a DuckDB load of 1M Parquet rows it
    held 34-48 MB resident for at most 15 MB of live Arrow data (measured). Called by the
    threads that allocate (the reading thread after each chunk, the converting one after
    each batch): a collection frees only the calling thread's pages, with every page that
    waits to be returned. Other pools are left alone (the C library's would trim every arena
    at each call).
    """
    pool = pa.default_memory_pool()
    if pool.backend_name == "mimalloc":
        pool.release_unused()


#: The smallest mapping taken for mimalloc's arena (it reserves 1 GiB at a time).
_ARENA_BYTES: Final = 64 * 1024 * 1024


def arrow_without_huge_pages() -> None:
    """Ask Linux not to back the arena of pyarrow's default pool with transparent huge
    pages, when that pool is mimalloc (pyarrow's default where it is built in).

    mimalloc advises huge pages (``MADV_HUGEPAGE``) over the arena it reserves, so each
    2 MB of it that holds one live block is resident whole: in a DuckDB load of 1M CSV rows
    the arena held about 50 MB resident for 5-11 MB of live Arrow data (measured). The
    advice is taken back (``MADV_NOHUGEPAGE``) over that one mapping, the one that holds an
    Arrow buffer; the process's other memory, and the system's settings, are left alone.
    Idempotent and cheap (one read of ``/proc/self/maps``); it does nothing where it cannot
    (another pool, another system, a refused call).
    """
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    pool = pa.default_memory_pool()
    if advice is None or pool.backend_name != "mimalloc" or not sys.platform.startswith("linux"):
        return
    address = pa.allocate_buffer(1, memory_pool=pool).address
    try:
        with open("/proc/self/maps", "rb") as maps:
            for line in maps:
                fields = line.split()
                start, end = (int(x, 16) for x in fields[0].split(b"-"))
                if start <= address < end:
                    break
            else:
                return
    except OSError:
        return
    anonymous = len(fields) < 6 or fields[5].startswith(b"[anon")
    if anonymous and end - start >= _ARENA_BYTES:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), advice)


@dataclass
class TableChunk(Chunk):
    """Rows of one Parquet or CSV object, with the query that converts them.

    ``first_line`` is always 1: no record continues from one chunk into the next.

    Attributes:
        query: Given the chunk's sequence number, the query selecting ``chunk, line, idx,
            v1..vn, err_col, err_code, err_value``; it reads the chunk's file (CSV) or
            the object's (Parquet). Unset for a CSV chunk the CSV lane converted.
        shape: The keys of the objects the schema reads into (the drift report), or
            ``None`` when the object names no columns (CSV without a header).
        read_rejects: Records rejected while reading (wrong field counts, bad quoting or
            encoding), before any conversion.
        table: A Parquet chunk's rows as read, in Arrow (the columns the fields read), or a
            CSV chunk's text values (``line``, ``c1..cn``) for the CSV lane; else ``None``.
        lane: Given ``table`` and the sequence number, the converted rows, or ``None`` when
            a value may be a reject: by the Parquet lane (``parquet_lane``), or by the CSV
            lane (``csv_feed._converted``, which then writes the chunk's file for the
            query); ``None``: the query converts the chunk.
        read_into_arrow: ``table`` holds Parquet rows as read: the threads that read and
            convert them give Arrow's freed pages back (``release_arrow_memory``). Not CSV:
            there it cost 6-10% more CPU time for about 10 MB (measured).
    """

    query: Callable[[int], str] = lambda seq: ""
    shape: KeyShape | None = None
    read_rejects: list[Reject] = field(default_factory=list)
    table: pa.Table | None = None
    lane: Callable[[pa.Table, int], pa.Table | None] | None = None
    read_into_arrow: bool = False

    @property
    def batch_bytes(self) -> int:
        """Rows held in Arrow count ``ARROW_WEIGHT`` times their size, the others (a chunk
        file, an object's rows the query reads) their object's bytes."""
        return self.nbytes if self.table is None else ARROW_WEIGHT * self.table.nbytes

    def discard(self) -> None:
        self.table = None  # the rows are let go once written, as a chunk file is deleted
        super().discard()


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


def csv_query(
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


def parquet_query(
    specs: Sequence[ColumnSpec],
    columns: Sequence[tuple[ParquetSource | None, Conversion | None]],
    path: Path,
    seq: int,
    *,
    rows: tuple[int, int],
) -> str:
    read = [str(spec.path[0]) for spec, (s, _) in zip(specs, columns, strict=True) if s]
    names = ", ".join(quoted_name(name) for name in dict.fromkeys(read))
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


# -- converting -------------------------------------------------------------------------------


class TabularTransform(Transform):
    """Converts batches of ``TableChunk``s: each chunk's own query, all in one statement."""

    def convert(self, chunks: Sequence[Chunk]) -> Batch:
        batch = Batch(list(chunks))
        parts, fast = [], []
        read = any(isinstance(c, TableChunk) and c.read_into_arrow for c in chunks)
        try:
            for chunk in chunks:
                assert isinstance(chunk, TableChunk)
                batch.rejects += chunk.read_rejects
                table = chunk.table
                # the chunk's number is known only now (the feed numbers chunks as it hands
                # them out)
                rows = None if table is None or chunk.lane is None else chunk.lane(table, chunk.seq)
                if rows is not None:
                    fast.append(rows)
                else:
                    parts.append(chunk.query(chunk.seq))
            self._virtual = not parts
            if parts:
                self.con.execute(
                    "CREATE OR REPLACE TEMP TABLE _arb_batch AS "
                    + " UNION ALL ".join(f"({p})" for p in parts)
                )
            else:  # every chunk taken by the lane: no table, no query (``Transform._virtual``)
                values = ", ".join(f"NULL::{t} AS v{i}" for i, t in enumerate(self.column_types, 1))
                self._make_template(
                    f"SELECT NULL::INTEGER AS chunk, NULL::BIGINT AS line, NULL::INTEGER AS idx, "
                    f"{values}, NULL::INTEGER AS err_col, NULL::INTEGER AS err_code, "
                    "NULL::VARCHAR AS err_value WHERE false"
                )
        finally:
            for chunk in chunks:  # converted (or failed): the rows as read are let go now
                assert isinstance(chunk, TableChunk)
                chunk.table = None
            if read:  # and what converting them left in this thread's pages
                release_arrow_memory()
        if fast:
            batch.fast = fast[0] if len(fast) == 1 else pa.concat_tables(fast)
        return batch

    def finish(self, batch: Batch, carries: dict[int, Carry]) -> None:
        chunks = batch.chunks
        batch.finished = True
        order = {c.seq: i for i, c in enumerate(chunks)}
        rejects = list(batch.rejects) + ([] if self._virtual else self._sql_rejects(chunks))
        first: dict[str, int] = {}
        for chunk in chunks:
            first.setdefault(chunk.info.key, order[chunk.seq])
        # an object's rejects in line order (those found reading it, and converting it)
        batch.rejects = sorted(rejects, key=lambda r: (first[r.key], r.line))
        filled = ", ".join(f"count(v{i})" for i in range(1, len(self.specs) + 1))
        batch.filled = [0] * len(self.specs)
        counted = (
            []
            if self._virtual
            else self.con.execute(
                f"SELECT chunk, count(*), {filled} FROM _arb_batch WHERE err_code IS NULL "
                "GROUP BY chunk"
            ).fetchall()
        )
        for seq, count, *values in counted:
            batch.rows[int(seq)] = int(count)
            batch.filled = [a + int(b) for a, b in zip(batch.filled, values, strict=True)]
        fast = batch.fast
        if fast is not None and fast.num_rows:  # the lane's rows: none rejected
            for item in pc.value_counts(fast.column("chunk")).to_pylist():
                batch.rows[int(item["values"])] = int(item["counts"])
            batch.filled = [
                a + fast.num_rows - fast.column(f"v{i}").null_count
                for i, a in enumerate(batch.filled, start=1)
            ]
        for chunk in chunks:
            assert isinstance(chunk, TableChunk)
            rows = batch.rows.get(chunk.seq, 0)
            if rows and chunk.shape is not None:
                batch.shapes[chunk.shape] = batch.shapes.get(chunk.shape, 0) + rows


class TabularConverter(Converter):
    """``Converter`` for Parquet and CSV chunks: every batch stands alone."""

    transform_type = TabularTransform


__all__ += ["parquet_metadata", "parquet_schema_from_tail"]
