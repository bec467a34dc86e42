"""The vectorised transform: chunk files of JSON lines in, typed rows and rejects out.

One DuckDB query per batch of chunks splits the text into lines, picks every JSONPath with
one parse per record, and applies each column's conversion rule (``arbalest.convert``) to the
whole column at once. The few lines that are not one JSON object each go through the exact
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
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from arbalest import convert
from arbalest.convert import BAD_CHARACTER, BAD_RECORD, MAX_RECORD_BYTES, NOT_NULL, sql_literal
from arbalest.loading import fastlane, scratch
from arbalest.loading.drift import KeyShape, read_objects
from arbalest.loading.reader import Chunk
from arbalest.loading.records import Carry, scan
from arbalest.loading.rejects import Reject, clip
from arbalest.schema._build import ColumnSpec
from arbalest.schema.jsonpath import JSONPath, duckdb_path

__all__ = ["Batch", "Converter", "Transform", "batches", "connect_private"]

logger = logging.getLogger(__name__)

_TIME_TYPES: Final = ("TIMESTAMP", "TIME")  # values that hold ":"
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
    """The outcome of one batch: its rows are in the connection's ``_arb_batch`` table until
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


class Transform:
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

    # -- SQL ------------------------------------------------------------------------------

    @property
    def column_types(self) -> list[str]:
        """The DuckDB types of the converted columns ``v1 ... vn``."""
        return [spec.rule.sql_type for spec in self.specs]

    def conversion_sql(self, source: str, slow: str, *, every_record: bool = False) -> str:
        """The query converting ``source`` (chunk, line, idx, l) rows; ``slow`` flags lines to
        skip. ``idx`` is the record's place among the records ending on its line.

        Output columns: chunk, line, idx, slow, k (the keys of the objects the schema reads
        into, for the drift report: NULL for a record that has no other key; ``every_record``:
        listed for every record), v1..vn (converted), err_col, err_code, err_value.
        """
        text_cols = [s for s in self.specs if not s.rule.takes_json]
        json_cols = [s for s in self.specs if s.rule.takes_json]
        parents: list[tuple[int, str, int]] = []  # (column index, parent path, array index)
        for i, spec in enumerate(self.specs):
            for k, step in enumerate(spec.path):
                if isinstance(step, int):
                    parents.append((i, duckdb_path(spec.path[:k]), step))

        def path_list(specs: Sequence[ColumnSpec]) -> str:
            return "[" + ", ".join(sql_literal(duckdb_path(s.path)) for s in specs) + "]"

        position = ["chunk", "line", "idx", "slow"]
        level1 = list(position)
        if text_cols:
            paths = path_list(text_cols)
            level1.append(f"CASE WHEN slow THEN NULL ELSE json_extract_string(l, {paths}) END AS x")
        if json_cols:
            level1.append(
                f"CASE WHEN slow THEN NULL ELSE json_extract(l, {path_list(json_cols)}) END AS j"
            )
        if parents:
            plist = "[" + ", ".join(sql_literal(p) for _, p, _ in parents) + "]"
            level1.append(f"CASE WHEN slow THEN NULL ELSE json_extract(l, {plist}) END AS p")
        level1.append("l")  # for the drift report's keys, below

        level2 = [*position, "l"]
        t = j = 0
        for i, spec in enumerate(self.specs, start=1):
            if spec.rule.takes_json:
                j += 1
                level2.append(f"j[{j}] AS s{i}")
            else:
                t += 1
                level2.append(f"x[{t}] AS s{i}")
        for k in range(len(parents)):
            level2.append(f"p[{k + 1}] AS p{k + 1}")

        names_s = [f"s{i}" for i in range(1, len(self.specs) + 1)]
        names_v = [f"v{i}" for i in range(1, len(self.specs) + 1)]
        names_p = [f"p{k}" for k in range(1, len(parents) + 1)]
        level3 = [*position, self._keys_sql(every_record), *names_s, *names_p]
        position.append("k")
        level3 += [
            f"{spec.rule.sql_value(f's{i}', self.options)} AS v{i}"
            for i, spec in enumerate(self.specs, start=1)
        ]

        level4 = [*position, *names_s, *names_v]

        def index_fails(k: int) -> str:
            """Whether the k-th parent is there but cannot take its index."""
            p, index = f"p{k}", parents[k - 1][2]
            return (
                f"{p} IS NOT NULL AND json_type({p}) <> 'NULL' AND "
                f"(json_type({p}) <> 'ARRAY' OR json_array_length({p}) <= {index})"
            )

        for i, spec in enumerate(self.specs, start=1):
            checks = [
                f"CASE WHEN {index_fails(k)} THEN {BAD_RECORD} END"
                for k, (column, _, _) in enumerate(parents, start=1)
                if column == i - 1
            ]
            checks.append(spec.rule.sql_error(f"s{i}", f"v{i}", self.options))
            if not spec.nullable:
                checks.append(f"CASE WHEN v{i} IS NULL THEN {NOT_NULL} END")
            level4.append(f"coalesce({', '.join(checks)}) AS e{i}")

        n = len(self.specs)
        first_error = " ".join(f"WHEN e{i} IS NOT NULL THEN {i}" for i in range(1, n + 1))
        level5 = [
            *position,
            *names_s,
            *names_v,
            *[f"e{i}" for i in range(1, n + 1)],
            *names_p,
            f"CASE WHEN slow THEN NULL {first_error} END AS err_col",
        ]
        raw_values = []
        for i in range(1, n + 1):
            raw = f"CAST(s{i} AS VARCHAR)"
            mine = [k for k, (c, _, _) in enumerate(parents, start=1) if c == i - 1]
            if mine:
                # an index that cannot be taken: show what it was applied to (the first such
                # along the path; a string as its characters, as every other value is shown)
                shown = ", ".join(
                    f"CASE WHEN {index_fails(k)} THEN CASE WHEN json_type(p{k}) = 'VARCHAR' "
                    f"THEN json_extract_string(p{k}, '$') ELSE CAST(p{k} AS VARCHAR) END END"
                    for k in mine
                )
                raw = f"CASE WHEN e{i} = {BAD_RECORD} THEN coalesce({shown}) ELSE {raw} END"
            raw_values.append(f"WHEN {i} THEN {raw}")
        errors = ", ".join(f"e{i}" for i in range(1, n + 1))
        level6 = [
            *position,
            *names_v,
            "err_col",
            f"CASE WHEN err_col IS NULL THEN NULL ELSE coalesce({errors}, NULL) END AS err_code",
            f"CASE err_col {' '.join(raw_values)} END AS err_value",
        ]
        level4 += names_p
        query = f"SELECT chunk, line, idx, l, {slow} AS slow FROM ({source}) WHERE l <> ''"
        for cols in (level1, level2, level3, level4, level5, level6):
            query = f"SELECT {', '.join(cols)} FROM ({query})"
        return query

    def _keys_sql(self, every_record: bool) -> str:
        """The column ``k``: the keys of every object the schema reads into (``json_keys``, a
        second parse of the record), for the records that may hold a key no column reads;
        NULL for the others (``every_record``: listed for every record).

        The cheap test: the ``:`` in the record's text, against those the schema accounts for.
        Why it is exact: every key in JSON text is a string followed by optional blanks and
        one ``:``; every other ``:`` lies inside a string. A column's extracted value is not
        NULL only when every key along its path is in the record, so the distinct key paths
        of the columns with a value (``child`` once for ``child.name`` and
        ``child.depth.level``) are distinct keys of the record, R of them. A time column
        whose path leads into no other column's value holds its own ``:`` (``10:00:00``):
        with no ``\\u`` escape in the record, the ``:`` of its extracted value are exactly
        those inside its value's text, X in all (spans apart, as no such path is a prefix of
        another or repeated). The ``:`` outside those values number at least the keys
        outside them, and those include the R. So ``count(:) == R + X`` leaves no room for a
        key outside the time values beyond the R: no object the schema reads into has a key
        no column reads (keys inside a value no column reads into are not reported). Anything
        else (a key no column reads, one written twice, a ``null`` value, which extracts as
        NULL, a ``:`` in other text, a ``\\u`` escape, an object inside a JSON column) only
        costs the parse. Cost: about 0.5 CPU-s per million
        330-byte records (the count and the escape test are a pass over the text each).
        """
        olist = "[" + ", ".join(sql_literal(duckdb_path(p)) for p in self.objects.paths) + "]"
        keys = f"json_keys(l, {olist})"
        if every_record:
            return f"CASE WHEN slow THEN NULL ELSE {keys} END AS k"
        present: dict[JSONPath, list[str]] = {}  # key path: the columns reading through it
        for i, spec in enumerate(self.specs, start=1):
            for k, step in enumerate(spec.path):
                if isinstance(step, str):
                    present.setdefault(spec.path[: k + 1], []).append(f"s{i} IS NOT NULL")
        terms = [f"({' OR '.join(c)})::INTEGER" for c in present.values()]
        paths = [spec.path for spec in self.specs]
        timed: dict[JSONPath, int] = {}  # time columns' paths: the first column reading it
        for i, spec in enumerate(self.specs, start=1):
            if (  # the record itself is read into: never its whole text
                spec.path
                and not spec.rule.takes_json
                and spec.rule.sql_type.startswith(_TIME_TYPES)
                and not any(q != spec.path and q[: len(spec.path)] == spec.path for q in paths)
            ):
                timed.setdefault(spec.path, i)
        terms += [
            f"coalesce(strlen(s{i}) - strlen(replace(s{i}, ':', '')), 0)" for i in timed.values()
        ]
        found = "strlen(l) - strlen(replace(l, ':', ''))"
        escaped = "contains(l, '\\u') OR " if timed else ""
        return (
            f"CASE WHEN slow THEN NULL WHEN {escaped}{found} <> {' + '.join(terms) or '0'} "
            f"THEN {keys} END AS k"
        )

    @staticmethod
    def _slow_flag(careful: bool) -> str:
        """Lines the fast path leaves to the exact reader.

        Optimistic: lines that do not start a record at their first character, and overlong
        ones; a malformed line then makes the query fail, and it runs again carefully, where
        every line that is not valid JSON goes to the exact reader as well.
        """
        flag = f"strlen(l) > {MAX_RECORD_BYTES} OR left(l, 1) NOT IN ('{{', '[')"
        return f"({flag} OR NOT json_valid(l))" if careful else f"({flag})"

    @staticmethod
    def _source(chunks: Sequence[Chunk]) -> str:
        values = ", ".join(f"({sql_literal(str(c.path))}, {c.seq}, {c.first_line})" for c in chunks)
        files = "[" + ", ".join(sql_literal(str(c.path)) for c in chunks) + "]"
        return (
            "SELECT m.chunk, unnest(generate_series(m.first_line, m.first_line + len(t.ls) - 1)) "
            "AS line, 0 AS idx, unnest(t.ls) AS l "
            "FROM (SELECT filename, string_split(content, chr(10)) AS ls "
            f"FROM read_text({files})) t "
            f"JOIN (VALUES {values}) m(path, chunk, first_line) ON m.path = t.filename"
        )

    # -- running a batch -------------------------------------------------------------------

    def convert(self, chunks: Sequence[Chunk]) -> Batch:
        """Convert ``chunks`` into this connection's ``_arb_batch`` table (the fast path).

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
            batch.rejects + self._sql_rejects(chunks), key=lambda r: (order[r.key], r.line)
        )
        # the rows per chunk and, in the same pass, the values per column (count(v) skips
        # NULL) and the rows per key shape (records of one shape share one group)
        filled = ", ".join(f"count(v{i})" for i in range(1, len(self.specs) + 1))
        batch.filled = [0] * len(self.specs)
        for seq, keys, count, *values in self.con.execute(
            f"SELECT chunk, k, count(*), {filled} FROM _arb_batch WHERE err_code IS NULL "
            "GROUP BY chunk, k"
        ).fetchall():
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
        if not batch.total_rows:
            return
        fast, batch.fast = batch.fast, None
        if fmt == "arrow":
            table = self.con.sql(self.good_rows_sql(with_position=with_position)).to_arrow_table()
            if fast is not None and fast.num_rows:
                fast = fast.select(table.column_names).cast(table.schema)
                table = pa.concat_tables([table, fast]) if table.num_rows else fast
            batch.table = table
            return
        if fast is not None and fast.num_rows:
            self.con.register("_arb_fast", fast.drop_columns(["shape"]))
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
        for careful in (False, True):
            if careful:
                self._fix_utf8(chunks, rejects)
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
            if not self._template:
                self.con.execute(
                    "CREATE OR REPLACE TEMP TABLE _arb_template AS "
                    + self.conversion_sql(
                        "SELECT 0 AS chunk, 0::BIGINT AS line, 0 AS idx, ''::VARCHAR AS l "
                        "WHERE false",
                        self._slow_flag(careful),
                    )
                )
                self._template = True
            self.con.execute("CREATE OR REPLACE TEMP TABLE _arb_batch AS FROM _arb_template")
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

    def _fix_utf8(self, chunks: Sequence[Chunk], rejects: list[Reject]) -> None:
        """Blank the lines that are not UTF-8 (each is rejected); line numbers stay."""
        for chunk in chunks:
            data = chunk.path.read_bytes()
            try:
                data.decode("utf-8")
                continue
            except UnicodeDecodeError:
                pass
            lines = data.split(b"\n")
            for index, raw in enumerate(lines):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    rejects.append(
                        Reject(
                            chunk.info.key,
                            chunk.first_line + index,
                            None,
                            clip(raw.decode("utf-8", errors="replace")),
                            f"Invalid UTF-8 byte sequence at byte {exc.start + 1}",
                            BAD_CHARACTER,
                        )
                    )
                    lines[index] = b""
            fixed = self._workdir / f"utf8-{chunk.seq}.ndjson"
            fixed.write_bytes(b"\n".join(lines))
            chunk.discard()
            chunk.path, chunk.temporary = fixed, True

    def _slow_path(
        self, chunks: Sequence[Chunk], rejects: list[Reject], carries: dict[int, Carry]
    ) -> list[tuple[int, int]]:
        """Read the lines flagged slow with the exact reader; return the (chunk, line) of
        the lines its records went on into."""
        starts: dict[int, list[int]] = {
            int(seq): sorted(int(n) for n in lines)
            for seq, lines in self.con.execute(
                "SELECT chunk, list(line) FROM _arb_batch WHERE slow GROUP BY chunk"
            ).fetchall()
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

    def good_rows_sql(self, *, with_position: bool = False) -> str:
        """A query over ``_arb_batch`` giving the good rows, in column order."""
        cols = [f"v{i}" for i in range(1, len(self.specs) + 1)]
        if with_position:  # as POSITION_COLUMNS: the merge orders by them
            cols += ["chunk", "line", "idx"]
        return f"SELECT {', '.join(cols)} FROM _arb_batch WHERE err_code IS NULL"


class Converter:
    """Converts batches with several private DuckDB connections at once, in order.

    Each worker converts a batch in its own thread. A batch that starts with the start of an
    object is also finished (slow path, counts, rejects) and exported by its worker; one that
    continues an object from the previous batch is finished here, in order, since a record
    may continue from one chunk into the next.

    Args:
        specs: The schema's columns.
        options: The COPY options.
        workers: Connections converting at once (default: the number of CPUs, at most 4).
    """

    def __init__(
        self,
        specs: Sequence[ColumnSpec],
        options: convert.ConvertOptions,
        *,
        workers: int | None = None,
    ) -> None:
        count = workers or min(4, max(1, os.cpu_count() or 1))
        self._transforms = [
            Transform(specs, options, connect_private(threads=1)) for _ in range(count)
        ]
        self._carries: dict[int, Carry] = {}
        self._in_flight: deque[tuple[Future[Batch], Transform]] = deque()

    def close(self) -> None:
        """Stop the workers, then drop their tables and close their connections.

        Batches not started are cancelled and those converting are waited for: a connection
        closed under a running query would fail ("connection is busy") in place of whatever
        ended the load, and a worker still running could write into a removed folder.
        """
        for future, _ in self._in_flight:
            future.cancel()
        wait([future for future, _ in self._in_flight])
        self._in_flight.clear()
        for transform in self._transforms:
            transform.close()
            transform.con.close()

    def run(
        self,
        batches: Iterator[list[Chunk]],
        workdir: Path,
        fmt: str,
        *,
        with_position: bool = False,
    ) -> Generator[Batch, None, None]:
        """Yield finished, exported batches in order (``Batch.path`` or ``Batch.table`` holds
        the rows). A caller that stops early closes the generator: that stops the workers."""
        free = list(self._transforms)
        pending = self._in_flight  # also seen by close(), should this generator be left open
        with ThreadPoolExecutor(len(free), thread_name_prefix="arbalest-convert") as pool:
            try:
                for chunks in batches:
                    if not free:
                        yield self._complete(pending.popleft(), free, workdir, fmt, with_position)
                    transform = free.pop()
                    work = pool.submit(self._work, transform, chunks, workdir, fmt, with_position)
                    pending.append((work, transform))
                while pending:
                    yield self._complete(pending.popleft(), free, workdir, fmt, with_position)
            finally:
                # Stopped early (a failure here or in the caller, or the caller closed this
                # generator): cancel what has not started, wait for what is converting.
                for future, _ in pending:
                    future.cancel()
                wait([future for future, _ in pending])
                pending.clear()

    def _complete(
        self,
        item: tuple[Future[Batch], Transform],
        free: list[Transform],
        workdir: Path,
        fmt: str,
        with_position: bool,
    ) -> Batch:
        future, transform = item
        try:
            batch = future.result()
            if batch.finished:
                # its first chunk starts an object, so no record was open before it
                self._carries = batch.carries
            else:
                transform.finish(batch, self._carries)
                self._export(transform, batch, workdir, fmt, with_position)
        finally:
            free.append(transform)
        return batch

    @staticmethod
    def _work(
        transform: Transform, chunks: list[Chunk], workdir: Path, fmt: str, with_position: bool
    ) -> Batch:
        batch = transform.convert(chunks)
        if batch.independent:
            transform.finish(batch, batch.carries)
            Converter._export(transform, batch, workdir, fmt, with_position)
        return batch

    @staticmethod
    def _export(
        transform: Transform, batch: Batch, workdir: Path, fmt: str, with_position: bool
    ) -> None:
        path = workdir / f"batch-{batch.chunks[0].seq}.{fmt}"
        transform.export(batch, path, fmt, with_position=with_position)


def batches(chunks: Iterator[Chunk], max_bytes: int) -> Iterator[list[Chunk]]:
    """Group chunks into batches of about ``max_bytes``."""
    batch: list[Chunk] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += chunk.nbytes
        if size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
