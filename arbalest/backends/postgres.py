"""PostgreSQL: rows converted by the transform, streamed with ``COPY ... FROM STDIN``.

Each batch arrives as an Arrow table and is sent in PostgreSQL's binary ``COPY`` format:
nothing for the server to parse but the values themselves, and no text quoting to get wrong.
The rows are encoded by the C extension (``loading.pgcopy``) where it is built and knows
every column's Arrow type, else by pgpq (the same values; ``ARBALEST_FAST_LANE=0`` turns
the C encoder off with the lane). A session whose ``client_encoding`` is not UTF-8 would
read the text in it wrongly, so such a session gets CSV instead, declared UTF-8.

Runs on the same target are serialised by a transaction-level advisory lock, waited for up
to ``lock_timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import sqlalchemy as sa

from arbalest.backends.base import Capabilities, TransformBackend, quote_table
from arbalest.convert import sql_literal
from arbalest.errors import ConcurrentRunError
from arbalest.loading import pgcopy

__all__ = ["PostgresBackend"]

_LOCK_NOT_AVAILABLE = "55P03"
_CHUNK = 1 << 20  # bytes per write of a COPY of CSV
_ROWS_PER_PART = 4096  # rows per write of a binary COPY
_UTF8 = frozenset({"UTF8", "UNICODE"})


class PostgresBackend(TransformBackend):
    """Loads into PostgreSQL with binary COPY FROM STDIN, in the step's transaction."""

    name = "postgresql"
    capabilities: ClassVar[Capabilities] = Capabilities(
        reads_objects_itself=False,
        requires_s3=False,
        max_identifier_bytes=63,
        advisory_locks=True,
    )
    batch_format = "arrow"

    @contextlib.contextmanager
    def lock(self, conn: sa.Connection, target: str, timeout: float) -> Iterator[None]:
        # A transaction-level lock: released when the step's transaction ends, whatever
        # happens to the process (a killed client's transaction is rolled back).
        milliseconds = max(int(timeout * 1000), 1)
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
        try:
            # keyed by the connection's schema too: the journal lives there, so runs of
            # pipelines in two schemas are unrelated even where their targets share a name
            conn.execute(
                sa.text(
                    "SELECT pg_advisory_xact_lock(hashtextextended("
                    "'arbalest:' || coalesce(current_schema(), '') || ':' || :key, 0))"
                ),
                {"key": target},
            )
        except sa.exc.OperationalError as exc:
            # psycopg2 says pgcode, psycopg 3 sqlstate
            code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
            if code == _LOCK_NOT_AVAILABLE:
                raise ConcurrentRunError(
                    f"lock {target}",
                    f"another run has been loading {target!r} for more than {timeout:g} s "
                    "(lock_timeout); try again later",
                ) from None
            raise
        conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
        yield

    def creation_lock(
        self, conn: sa.Connection, timeout: float, *, validate: bool = False
    ) -> contextlib.AbstractContextManager[None]:
        # the same kind of lock as a target's, on a name no table can have; READ COMMITTED
        # lets the second run see the tables once the first has committed them
        return self.lock(conn, " creating tables", timeout)

    def write(self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], data: Any) -> int:
        preparer = conn.dialect.identifier_preparer
        names = ", ".join(preparer.quote(c) for c in columns)
        target = f"COPY {quote_table(conn.dialect, table)} ({names}) FROM STDIN"
        raw: Any = conn.connection.dbapi_connection  # psycopg2's or psycopg 3's connection
        if _client_encoding(raw) in _UTF8:
            # PostgreSQL reads the text in binary COPY in the session's client_encoding
            parts = _binary_copy(conn.dialect, [table.c[c] for c in columns], data)
            return _copy(raw, f"{target} WITH (FORMAT binary)", parts)
        # Every text value is quoted but NULL, so COPY's CSV reads each exactly: no
        # end-of-data marker (\.) or line break outside quotes, and '' is apart from NULL.
        with tempfile.TemporaryDirectory(prefix="arbalest-csv-") as folder:
            path = Path(folder) / "batch.csv"
            _write_csv(data, path)
            with path.open("rb") as stream:
                parts = iter(lambda: stream.read(_CHUNK), b"")
                return _copy(raw, f"{target} WITH (FORMAT csv, ENCODING 'UTF8')", parts)


def _client_encoding(raw: Any) -> str:
    """The session's client_encoding, as the driver knows it (psycopg2 or psycopg 3)."""
    # psycopg2 says UTF8 (the server's name), psycopg 3 utf-8 (Python's)
    name = getattr(raw, "encoding", None) or raw.info.encoding
    return str(name).upper().replace("-", "").replace("_", "")


class _Parts:
    """A file-like reader over ``parts`` (psycopg2's ``copy_expert`` reads a file)."""

    def __init__(self, parts: Iterable[bytes]) -> None:
        self._parts = iter(parts)

    def read(self, size: int = -1) -> bytes:
        # an empty read is the end of the data: parts that are empty are skipped
        return next((part for part in self._parts if part), b"")


def _copy(raw: Any, statement: str, parts: Iterable[bytes]) -> int:
    """Stream ``parts`` to ``statement``; COPY's own count of the rows it stored."""
    with raw.cursor() as cursor:
        if hasattr(cursor, "copy_expert"):  # psycopg2
            cursor.copy_expert(statement, _Parts(parts), size=_CHUNK)
        else:  # psycopg 3: the same bytes, streamed through its COPY object
            with cursor.copy(statement) as copy:
                for part in parts:
                    copy.write(part)
        return int(cursor.rowcount)


def _binary_copy(
    dialect: sa.Dialect, columns: Sequence[sa.Column[Any]], data: Any
) -> Iterator[bytes]:
    """``data`` (an Arrow table) in PostgreSQL's binary COPY format for ``columns``,
    ``_ROWS_PER_PART`` rows at a time (by the C extension's encoder where it knows every
    column's type, else by pgpq).

    Binary COPY sends each value as the column's own type reads it, with no type named: an
    integer or float must be exactly as wide as its column, and JSONB carries a version
    byte. Arrow's narrower numbers are widened here to their column's width.
    """
    import pyarrow as pa

    fields = []
    arrays = []
    jsonb = set()
    for column, name, array in zip(columns, data.column_names, data.columns, strict=True):
        sql = column.type.compile(dialect=dialect).upper()
        width = _ARROW_WIDTHS.get(sql.split("(")[0].strip())
        if width is not None and array.type != getattr(pa, width)():
            array = array.cast(getattr(pa, width)())
        if sql == "JSONB":
            jsonb.add(name)
        fields.append(pa.field(name, array.type))
        arrays.append(array)
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    plan = pgcopy.plan_for(table.schema, jsonb)
    if plan is None:
        yield from _pgpq_copy(table, jsonb)
        return
    yield pgcopy.HEADER
    for batch in table.to_batches(max_chunksize=_ROWS_PER_PART):
        yield pgcopy.rows(batch, plan)
    yield pgcopy.TRAILER


def _pgpq_copy(table: Any, jsonb: set[str]) -> Iterator[bytes]:
    """``table`` in binary COPY format, encoded by pgpq (``jsonb``: its JSONB columns)."""
    from pgpq import ArrowToPostgresBinaryEncoder

    builders = {
        field.name: (
            _string_builder(field)
            if field.name in jsonb
            else ArrowToPostgresBinaryEncoder.infer_encoder(field)
        )
        for field in table.schema
    }
    encoder = ArrowToPostgresBinaryEncoder.new_with_encoders(table.schema, builders)
    yield encoder.write_header()
    for batch in table.to_batches(max_chunksize=_ROWS_PER_PART):
        yield encoder.write_batch(batch)
    yield encoder.finish()


def _string_builder(field: Any) -> Any:
    """A JSONB encoder for a text field of whichever Arrow string layout it has."""
    import pyarrow as pa
    from pgpq import encoders
    from pgpq.schema import Jsonb

    if field.type == pa.string():
        return encoders.StringEncoderBuilder.new_with_output(field, Jsonb())
    if field.type == pa.large_string():
        return encoders.LargeStringEncoderBuilder.new_with_output(field, Jsonb())
    return encoders.StringViewEncoderBuilder.new_with_output(field, Jsonb())


# PostgreSQL's numeric types of a fixed width, by the name SQLAlchemy compiles them to, and
# pyarrow's name for the type of the same width.
_ARROW_WIDTHS: dict[str, str] = {
    "SMALLINT": "int16",
    "INTEGER": "int32",
    "BIGINT": "int64",
    "REAL": "float32",
    "DOUBLE PRECISION": "float64",
    "FLOAT": "float64",
}


def _write_csv(data: Any, path: Path) -> None:
    """``data`` (an Arrow table) as CSV for COPY: text quoted, NULL not, times in UTC."""
    import pyarrow as pa

    text = [
        name
        for name, kind in zip(data.column_names, data.schema.types, strict=True)
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or str(kind) == "string_view"
    ]
    quote = f", FORCE_QUOTE ({', '.join(text)})" if text else ""
    with duckdb.connect(":memory:", config={"threads": 1}) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("_arbalest_batch", data)
        con.execute(
            f"COPY (SELECT * FROM _arbalest_batch) TO {sql_literal(str(path))} "
            f"(FORMAT csv, HEADER false{quote})"
        )
