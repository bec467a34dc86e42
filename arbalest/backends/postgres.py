"""PostgreSQL: rows converted by the transform, streamed with ``COPY ... FROM STDIN``.

Runs on the same target are serialised by a transaction-level advisory lock, waited for up
to ``lock_timeout`` seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa

from arbalest.backends.base import Capabilities, TransformBackend, quote_table
from arbalest.errors import ConcurrentRunError

__all__ = ["PostgresBackend"]

_LOCK_NOT_AVAILABLE = "55P03"
_CHUNK = 1 << 20  # bytes per write of a COPY


class PostgresBackend(TransformBackend):
    """Loads into PostgreSQL with COPY FROM STDIN (CSV), in the step's transaction."""

    name = "postgresql"
    capabilities: ClassVar[Capabilities] = Capabilities(
        reads_objects_itself=False,
        requires_s3=False,
        max_identifier_bytes=63,
        advisory_locks=True,
    )
    batch_format = "csv"

    @contextlib.contextmanager
    def lock(self, conn: sa.Connection, target: str, timeout: float) -> Iterator[None]:
        # A transaction-level lock: released when the step's transaction ends, whatever
        # happens to the process (a killed client's transaction is rolled back).
        milliseconds = max(int(timeout * 1000), 1)
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
        try:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"arbalest:{target}"},
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
        self, conn: sa.Connection, timeout: float
    ) -> contextlib.AbstractContextManager[None]:
        # the same kind of lock as a target's, on a name no table can have; READ COMMITTED
        # lets the second run see the tables once the first has committed them
        return self.lock(conn, " creating tables", timeout)

    def write(self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], data: Any) -> int:
        # The transform quotes every value but NULL (Transform.export), so COPY's CSV reads
        # each exactly: no end-of-data marker (\.) or line break outside quotes, and '' is
        # apart from NULL. The file is UTF-8, whatever the session's client_encoding.
        path = Path(data)
        preparer = conn.dialect.identifier_preparer
        names = ", ".join(preparer.quote(c) for c in columns)
        statement = (
            f"COPY {quote_table(conn.dialect, table)} ({names}) FROM STDIN "
            "WITH (FORMAT csv, ENCODING 'UTF8')"
        )
        raw: Any = conn.connection.dbapi_connection  # psycopg2's or psycopg 3's connection
        with raw.cursor() as cursor, path.open("rb") as data:
            if hasattr(cursor, "copy_expert"):  # psycopg2
                cursor.copy_expert(statement, data, size=_CHUNK)
            else:  # psycopg 3: the same bytes, streamed through its COPY object
                with cursor.copy(statement) as copy:
                    while chunk := data.read(_CHUNK):
                        copy.write(chunk)
            return int(cursor.rowcount)  # COPY's own count of the rows it stored
