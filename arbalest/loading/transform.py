"""The vectorised transform: chunk files of JSON lines in, typed rows and rejects out.

Where the schema allows it, the fast lane (``loading.fastlane``, in C) converts the plainest
lines of each chunk straight into Arrow; the lines it leaves (every line, without the lane) go
through one DuckDB query per batch, which picks every JSONPath with one parse per record and
applies each column's conversion rule (``arbalest.convert``) to the whole column at once. The
few lines that are not one JSON object each go through the exact
Python reader (``loading.records``) and then through the same SQL. Every warehouse loads the
rows this module produces, so every warehouse gets the same rows for the same objects.

The query runs in a private in-memory DuckDB, so a failure here (a malformed line makes the
optimistic query fail, and it is run again carefully) never touches the warehouse's
transaction.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import duckdb

from arbalest import convert
from arbalest.convert import BAD_RECORD, NOT_NULL, sql_literal
from arbalest.loading import fastlane, scratch
from arbalest.loading.drift import KeyShape, read_objects
from arbalest.loading.query import ConversionSQL
from arbalest.loading.reader import Chunk
from arbalest.loading.records import Carry, scan
from arbalest.loading.rejects import Reject, blank_invalid_utf8, clip
from arbalest.schema._build import ColumnSpec

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Batch", "Transform", "connect_private"]

logger = logging.getLogger(__name__)

_INDEX_ERROR: Final = "Not an array or index out of range"


def _json_error(text: str) -> str:
    """Why ``text`` is not JSON, in the words of Python's JSON reader when it has some."""
    try:
        json.loads(text)
    except ValueError as exc:
        return f"Invalid JSON: {exc}"
    except RecursionError:
        return "Invalid JSON: nested too deeply to say where"
    return "Invalid JSON"


def connect_private(
    threads: int | None = None, memory_limit: str = "1GB"
) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB for the transform (UTC, bounded memory)."""
    con = duckdb.connect(
        ":memory:",
        config={"threads": threads or max(1, os.cpu_count() or 1), "memory_limit": memory_limit},
    )
    con.execute("SET TimeZone = 'UTC'")  # how TIMESTAMPTZ values are written out
    return con


@dataclass
class Batch:
    """The outcome of one batch: the fast lane's rows in ``Batch.fast`` and the query's in the
    connection's ``_arb_batch`` table (not made when the lane took every line), until
    ``Transform.export`` hands them over (``Batch.table`` or ``Batch.path``).

    Attributes:
        rows: Good rows per chunk sequence number.
        rejects: The rejected records, in object and line order.
        filled: Per column, the good rows whose value is not NULL (a column that no record
            filled is worth a warning).
        shapes: Good rows per key shape: the keys of each object the schema reads into
            (``drift.read_objects``), for the drift report.
    """

    chunks: list[Chunk]
    rows: dict[int, int] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    filled: list[int] = field(default_factory=list)
    shapes: dict[KeyShape, int] = field(default_factory=dict)
    fast: pa.Table | None = None  # the fast lane's rows (``fastlane``), apart from _arb_batch
    fast_shapes: dict[int, KeyShape] = field(default_factory=dict)  # their ``shape`` numbers
    path: Path | None = None  # the good rows as a CSV or Parquet file (None: none, or a table)
    table: Any = None  # or as an Arrow table
    finished: bool = False
    carries: dict[int, Carry] = field(default_factory=dict)  # records open at its end

    @property
    def independent(self) -> bool:
        """No record can continue into this batch from an earlier one: its first chunk is
        the start of an object."""
        return self.chunks[0].first_line == 1

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


class Transform(ConversionSQL):
    """Converts batches of chunks for one schema under one set of COPY options.

    Args:
        specs: The schema's columns.
        options: The COPY options that change conversions.
        con: A private DuckDB connection (``connect_private()``).
    """

    def __init__(
        self,
        specs: Sequence[ColumnSpec],
        options: convert.ConvertOptions,
        con: duckdb.DuckDBPyConnection,
    ) -> None:
        self.specs = list(specs)
        self.options = options
        self.con = con
        self.objects = read_objects(self.specs)
        self.lane = fastlane.lane_for(self.specs, options)
        self._template = False  # _arb_template: an empty _arb_batch (the fast lane's batches)
        # True while the batch in hand left _arb_batch empty (the lane took every line): the
        # table is then not made at all, and what would query it answers at once (a batch
        # costs a few statements less: ~1 CPU-s per million rows); ``_real_batch`` makes it
        # for a record the exact reader finds, or an export through a file
        self._virtual = False
        self._good_schema: dict[bool, pa.Schema] = {}  # the good rows' Arrow schema
        self._workdir = scratch.make("transform")

    def close(self) -> None:
        """Drop the batch tables and the scratch folder."""
        with contextlib.suppress(duckdb.Error):
            self.con.execute(
                "DROP TABLE IF EXISTS _arb_batch; DROP TABLE IF EXISTS _arb_slow; "
                "DROP TABLE IF EXISTS _arb_template"
            )
            self.con.unregister("_arb_deferred")
        for path in self._workdir.glob("*"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._workdir.rmdir()

    # -- running a batch -------------------------------------------------------------------

    def convert(self, chunks: Sequence[Chunk]) -> Batch:
        """Convert ``chunks``: the fast lane's rows into ``Batch.fast``, the other lines by the
        query into ``_arb_batch`` (the optimistic pass; ``finish`` takes what it flagged slow).

        Runs in a worker thread; DuckDB releases the GIL while it works.
        """
        batch = Batch(list(chunks))
        for chunk in chunks:
            for line, value in chunk.oversized.items():
                batch.rejects.append(
                    Reject(
                        chunk.info.key, line, None, value, "Record is larger than 4 MB", BAD_RECORD
                    )
                )
        batch.fast, batch.fast_shapes = self._convert(chunks, batch.rejects)
        return batch

    def finish(self, batch: Batch, carries: dict[int, Carry]) -> None:
        """Take the lines the fast path left, count the rows and collect the rejects.

        Batches are finished one at a time, in order: ``carries`` holds the records still
        open at the end of each object's last chunk so far.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        chunks = batch.chunks
        consumed = self._slow_path(chunks, batch.rejects, carries)
        if consumed and batch.fast is not None and batch.fast.num_rows:
            # lines a record read by the exact reader went on into (a fast row there was
            # only part of that record's text)
            taken = pa.array([seq << 40 | line for seq, line in consumed], pa.int64())
            at = pc.add(
                pc.shift_left(batch.fast.column("chunk").cast(pa.int64()), 40),
                batch.fast.column("line"),
            )
            batch.fast = batch.fast.filter(pc.invert(pc.is_in(at, value_set=taken)))
        batch.finished = True
        order = {c.info.key: c.seq for c in chunks}
        batch.rejects = sorted(
            batch.rejects + ([] if self._virtual else self._sql_rejects(chunks)),
            key=lambda r: (order[r.key], r.line),
        )
        # the rows per chunk and, in the same pass, the values per column (count(v) skips
        # NULL) and the rows per key shape (records of one shape share one group)
        filled = ", ".join(f"count(v{i})" for i in range(1, len(self.specs) + 1))
        batch.filled = [0] * len(self.specs)
        counted = (
            []
            if self._virtual
            else self.con.execute(
                f"SELECT chunk, k, count(*), {filled} FROM _arb_batch WHERE err_code IS NULL "
                "GROUP BY chunk, k"
            ).fetchall()
        )
        for seq, keys, count, *values in counted:
            batch.rows[int(seq)] = batch.rows.get(int(seq), 0) + int(count)
            batch.filled = [a + int(b) for a, b in zip(batch.filled, values, strict=True)]
            if keys is None:  # records with no key beyond those the columns read
                continue
            shape: KeyShape = tuple(None if k is None else tuple(k) for k in keys)
            batch.shapes[shape] = batch.shapes.get(shape, 0) + int(count)
        if batch.fast is not None and batch.fast.num_rows:
            # the fast lane's rows: no reject; keys no column reads numbered by shape
            for item in pc.value_counts(batch.fast.column("chunk")).to_pylist():
                seq = int(item["values"])
                batch.rows[seq] = batch.rows.get(seq, 0) + int(item["counts"])
            if batch.fast_shapes:
                for item in pc.value_counts(batch.fast.column("shape")).to_pylist():
                    if item["values"]:
                        shape = batch.fast_shapes[int(item["values"])]
                        batch.shapes[shape] = batch.shapes.get(shape, 0) + int(item["counts"])
            batch.filled = [
                a + batch.fast.num_rows - batch.fast.column(f"v{i}").null_count
                for i, a in enumerate(batch.filled, start=1)
            ]

    def export(self, batch: Batch, path: Path, fmt: str, *, with_position: bool) -> None:
        """The batch's good rows as an Arrow table (``fmt="arrow"``), or written to ``path``
        as CSV (every text value quoted) or Parquet; nothing if there are none."""
        import pyarrow as pa

        if not batch.total_rows:
            return
        fast, batch.fast = batch.fast, None
        if fmt == "arrow":
            if self._virtual:  # every row is the lane's
                assert fast is not None
                batch.table = fast.select(self._good_schema[with_position].names).cast(
                    self._good_schema[with_position]
                )
                return
            table = self.con.sql(self.good_rows_sql(with_position=with_position)).to_arrow_table()
            self._good_schema.setdefault(with_position, table.schema)
            if fast is not None and fast.num_rows:
                fast = fast.select(table.column_names).cast(table.schema)
                table = pa.concat_tables([table, fast]) if table.num_rows else fast
            batch.table = table
            return
        self._real_batch()
        if fast is not None and fast.num_rows:
            if "shape" in fast.column_names:  # the JSON lane's; not a column of _arb_batch
                fast = fast.drop_columns(["shape"])
            self.con.register("_arb_fast", fast)
            try:
                self.con.execute("INSERT INTO _arb_batch BY NAME SELECT * FROM _arb_fast")
            finally:
                self.con.unregister("_arb_fast")
        options = "FORMAT parquet"
        if fmt == "csv":
            # Every text value is quoted, so PostgreSQL's COPY reads it exactly: a line holding
            # only \. would otherwise end its data. NULL stays unquoted, apart from ''. Numbers,
            # booleans, dates and times never need quotes: quoting them would only add bytes.
            plain: tuple[str, ...] = ("SMALLINT", "INTEGER", "BIGINT", "DECIMAL", "REAL")
            plain += ("DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP")
            text = [f"v{i}" for i, t in enumerate(self.column_types, 1) if not t.startswith(plain)]
            quote = f", FORCE_QUOTE ({', '.join(text)})" if text else ""
            options = f"FORMAT csv, HEADER false{quote}"
        self.con.execute(
            f"COPY ({self.good_rows_sql(with_position=with_position)}) "
            f"TO {sql_literal(str(path))} ({options})"
        )
        batch.path = path

    def _convert(
        self, chunks: Sequence[Chunk], rejects: list[Reject]
    ) -> tuple[pa.Table | None, dict[int, KeyShape]]:
        """Convert into ``_arb_batch``; the fast lane's rows (if it runs) are returned, with
        the key shapes their ``shape`` column numbers."""
        import pyarrow as pa

        self._virtual = False
        for careful in (False, True):
            if careful:
                rejects += blank_invalid_utf8(chunks, self._workdir)
            try:
                if self.lane is None:
                    self.con.execute(
                        "CREATE OR REPLACE TEMP TABLE _arb_batch AS "
                        + self.conversion_sql(self._source(chunks), self._slow_flag(careful))
                    )
                    return None, {}
                return self._convert_fast(chunks, careful)
            except (duckdb.Error, UnicodeDecodeError, pa.ArrowInvalid) as exc:
                # (DuckDB may cut its own message inside a multi-byte character)
                if careful:
                    raise
                logger.debug("optimistic conversion failed (%s); converting carefully", exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _convert_fast(
        self, chunks: Sequence[Chunk], careful: bool
    ) -> tuple[pa.Table, dict[int, KeyShape]]:
        """The fast lane's rows, returned as Arrow; the lines it leaves converted by the SQL
        path into ``_arb_batch``, as every line is without the lane (``fastlane``)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        assert self.lane is not None
        fast, deferred = [], []
        shapes: dict[int, KeyShape] = {}
        for chunk in chunks:
            rows = self.lane.convert(chunk.path.read_bytes(), chunk.first_line, chunk.seq)
            table = rows.table
            if rows.shapes:  # number the chunk's shapes after the batch's earlier ones
                base = len(shapes)
                column = table.column("shape")
                table = table.set_column(
                    table.column_names.index("shape"),
                    "shape",
                    pc.if_else(pc.equal(column, 0), 0, pc.add(column, base)).cast(pa.int32()),
                )
                shapes.update({base + n: shape for n, shape in rows.shapes.items()})
            fast.append(table)
            deferred.append(rows.deferred)
        lines = pa.concat_tables(deferred)
        if not lines.num_rows:
            # nothing for the query (the common case): an empty _arb_batch of its columns,
            # from a template made once, costs far less than planning the query each time
            self._make_template(
                self.conversion_sql(
                    "SELECT 0 AS chunk, 0::BIGINT AS line, 0 AS idx, ''::VARCHAR AS l WHERE false",
                    self._slow_flag(careful),
                )
            )
            self._virtual = True
            return pa.concat_tables(fast), shapes
        # the lines' text as VARCHAR: pyarrow checks the UTF-8 (ArrowInvalid: not UTF-8)
        lines = lines.set_column(3, "l", lines.column("l").cast(pa.string()))
        self.con.register("_arb_deferred", lines)
        try:
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE _arb_batch AS "
                + self.conversion_sql(
                    "SELECT chunk, line, idx, l FROM _arb_deferred", self._slow_flag(careful)
                )
            )
        finally:
            self.con.unregister("_arb_deferred")
        return pa.concat_tables(fast), shapes

    def _slow_path(
        self, chunks: Sequence[Chunk], rejects: list[Reject], carries: dict[int, Carry]
    ) -> list[tuple[int, int]]:
        """Read the lines flagged slow with the exact reader; return the (chunk, line) of
        the lines its records went on into."""
        starts: dict[int, list[int]] = {
            int(seq): sorted(int(n) for n in lines)
            for seq, lines in (
                []
                if self._virtual
                else self.con.execute(
                    "SELECT chunk, list(line) FROM _arb_batch WHERE slow GROUP BY chunk"
                ).fetchall()
            )
        }
        records: list[tuple[int, int, int, str]] = []  # chunk, line, place on the line, text
        consumed: list[tuple[int, int]] = []
        for chunk in chunks:
            carry = carries.pop(chunk.obj, None)
            chunk_starts = starts.get(chunk.seq, [])
            if not chunk_starts and carry is None:
                continue
            text = chunk.path.read_bytes().decode("utf-8", errors="replace")
            lines = text.split("\n")
            if text.endswith("\n"):
                lines.pop()  # the end of the last line, not a line of its own
            result = scan(lines, chunk.first_line, chunk_starts, carry=carry, last=chunk.last)
            if result.carry is not None:
                carries[chunk.obj] = result.carry
            place: dict[int, int] = {}  # records so far on each line
            for r in result.records:
                index = place[r.line] = place.get(r.line, -1) + 1
                records.append((chunk.seq, r.line, index, r.text))
            consumed += [(chunk.seq, n) for n in result.consumed]
            rejects += [
                Reject(chunk.info.key, m.line, None, m.text, m.reason, m.code)
                for m in result.malformed
            ]
        if records:
            self._real_batch()  # the records go through the query into _arb_batch
        if self._virtual:
            return consumed  # nothing in _arb_batch (consumed lines are fast rows: ``finish``)
        if consumed:
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE _arb_consumed (chunk INTEGER, line BIGINT)"
            )
            self._insert("_arb_consumed", consumed, ("INTEGER", "BIGINT"))
            self.con.execute(
                "DELETE FROM _arb_batch WHERE slow OR (chunk, line) IN "
                "(SELECT (chunk, line) FROM _arb_consumed)"
            )
        else:
            self.con.execute("DELETE FROM _arb_batch WHERE slow")
        if not records:
            return consumed
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE _arb_slow "
            "(chunk INTEGER, line BIGINT, idx INTEGER, l VARCHAR)"
        )
        self._insert("_arb_slow", records, ("INTEGER", "BIGINT", "INTEGER", "VARCHAR"))
        self.con.execute(
            "INSERT INTO _arb_batch "
            + self.conversion_sql(
                "SELECT chunk, line, idx, l FROM _arb_slow", "NOT json_valid(l)", every_record=True
            )
        )
        # Records whose text is not valid JSON for the JSON reader the fast path uses.
        keys = {c.seq: c.info.key for c in chunks}
        texts = {(seq, line, idx): text for seq, line, idx, text in records}
        for seq, line, idx in self.con.execute(
            "SELECT chunk, line, idx FROM _arb_batch WHERE slow ORDER BY chunk, line, idx"
        ).fetchall():
            text = texts[(seq, line, idx)]
            rejects.append(Reject(keys[seq], line, None, clip(text), _json_error(text), BAD_RECORD))
        self.con.execute("DELETE FROM _arb_batch WHERE slow")
        return consumed

    def _make_template(self, empty: str) -> None:
        """Once: ``_arb_template``, an empty ``_arb_batch`` (the rows of the query ``empty``),
        and the good rows' Arrow schemas, for the batches the lane takes whole."""
        if self._template:
            return
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE _arb_template AS {empty}")
        for with_position in (False, True):
            sql = self.good_rows_sql(with_position=with_position, source="_arb_template")
            self._good_schema[with_position] = self.con.sql(sql).to_arrow_table().schema
        self._template = True

    def _real_batch(self) -> None:
        """Make the empty ``_arb_batch`` that a batch the lane took whole left unmade."""
        if self._virtual:
            self.con.execute("CREATE OR REPLACE TEMP TABLE _arb_batch AS FROM _arb_template")
            self._virtual = False

    def _insert(self, table: str, rows: Sequence[tuple[Any, ...]], types: Sequence[str]) -> None:
        """Insert ``rows`` into ``table`` with one statement, a list per column (DuckDB runs
        ``executemany`` as one statement per row: seconds for a few thousand)."""
        columns = [list(column) for column in zip(*rows, strict=True)]
        unnested = ", ".join(f"unnest(?::{t}[])" for t in types)
        self.con.execute(f"INSERT INTO {table} SELECT {unnested}", columns)

    def _sql_rejects(self, chunks: Sequence[Chunk]) -> list[Reject]:
        keys = {c.seq: c.info.key for c in chunks}
        out = []
        for seq, line, col, code, value in self.con.execute(
            "SELECT chunk, line, err_col, err_code, err_value FROM _arb_batch "
            "WHERE err_code IS NOT NULL ORDER BY chunk, line"
        ).fetchall():
            spec = self.specs[int(col) - 1]
            if code == NOT_NULL:
                reason = convert.reason_for(NOT_NULL)
            elif code == BAD_RECORD:
                reason = _INDEX_ERROR
            else:
                reason = spec.rule.reason(int(code))
            out.append(
                Reject(
                    keys[seq],
                    int(line),
                    spec.name,
                    None if value is None else clip(value),
                    reason,
                    int(code),
                )
            )
        return out
