"""DuckDB: the embedded default for local work.

Batches arrive as Parquet files written by the transform and are appended with
``INSERT ... SELECT * FROM read_parquet(...)`` through the engine's own connection (a second
DuckDB connection to the same file in one process would fail). DuckDB allows one writing
process per file, so runs on the same target are serialised by a lock in this process.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import duckdb
import sqlalchemy as sa

from arbalest.backends.base import Capabilities, TransformBackend, quote_table
from arbalest.errors import ConcurrentRunError

__all__ = ["DuckDBBackend"]

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


class DuckDBBackend(TransformBackend):
    """Loads into DuckDB through the engine's own connection."""

    name = "duckdb"
    capabilities: ClassVar[Capabilities] = Capabilities(
        reads_objects_itself=False,
        requires_s3=False,
        max_identifier_bytes=127,
        advisory_locks=False,
    )
    batch_format = "arrow"
    lock_before_transaction = True

    def _database(self) -> str:
        return str(self.engine.url.database or ":memory:")

    @contextlib.contextmanager
    def lock(self, conn: sa.Connection, target: str, timeout: float) -> Iterator[None]:
        # One lock per database file, in this process (DuckDB lets one process write a file):
        # steps on the same file take turns. It is taken before the step's transaction
        # begins, since a DuckDB transaction sees the database as it was when it began.
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault(self._database(), threading.RLock())
        if not lock.acquire(timeout=max(timeout, 0)):
            raise ConcurrentRunError(
                f"lock {target}",
                "another run in this process has been writing to the DuckDB file for more "
                f"than {timeout:g} s (lock_timeout); try again later",
            )
        try:
            yield
        finally:
            lock.release()

    def write(self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], data: Any) -> int:
        preparer = conn.dialect.identifier_preparer
        names = ", ".join(preparer.quote(c) for c in columns)
        # The Arrow table is scanned in place by the warehouse's own DuckDB connection (no
        # file, no copy); the view name is private to this connection and dropped at once.
        raw: Any = conn.connection.driver_connection
        view = f"_arbalest_batch_{threading.get_ident()}"
        raw.register(view, data)
        try:
            # DuckDB answers an INSERT with the count of the rows it inserted
            inserted = conn.exec_driver_sql(
                f"INSERT INTO {quote_table(conn.dialect, table)} ({names}) SELECT * FROM {view}"
            ).scalar_one()
        finally:
            # After a failed INSERT the transaction is aborted and DuckDB refuses even this;
            # the INSERT's own error is the one to report.
            with contextlib.suppress(duckdb.Error):
                raw.unregister(view)
        return int(inserted)
