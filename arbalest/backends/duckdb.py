"""DuckDB: the embedded default for local work.

A step's batches arrive from the transform as one Arrow stream and are appended by one
``INSERT ... SELECT`` that scans the stream in place as batches come (DuckDB's replacement
scan: no file, no copy, no view; a view only where replacement scans are off), through the
engine's own connection (a second DuckDB connection to the same file in one process would
fail). DuckDB allows one process per
file: runs in this process take turns by a lock per database file (its real path, however the
URL spells it), and a run in another process waits, up to ``lock_timeout``, for the file to
be let go (DuckDB's own file lock refuses a second process at once).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Final

import duckdb
import sqlalchemy as sa

from arbalest.backends.base import (
    Capabilities,
    CopyJob,
    LoadResult,
    TransformBackend,
    quote_table,
)
from arbalest.convert import sql_literal
from arbalest.errors import ConcurrentRunError
from arbalest.stores.base import ObjectInfo

__all__ = ["DuckDBBackend"]

#: The run locks of this process, one per database (a file's real path).
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()
#: DuckDB's refusal when another process holds the file.
_HELD_ELSEWHERE: Final = re.compile(r"Could not set lock on file|Conflicting lock", re.I)
#: DuckDB's ``memory_limit`` while a table without an index is loaded (see _bounded_cache).
LOADING_MEMORY_LIMIT: Final = "32MB"
#: The longest pause between two attempts to open a file another process holds.
_MAX_PAUSE: Final = 1.0


def database_key(database: str | None) -> str:
    """What identifies a DuckDB database: the real path of its file (``./w.duckdb``,
    ``w.duckdb``, an absolute path or a symlink to it are one), else the name as given
    (``:memory:``, ``md:...``)."""
    name = database or ":memory:"
    if name.startswith(":memory:") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", name):
        return name
    return os.path.realpath(os.path.expanduser(name))


class DuckDBBackend(TransformBackend):
    """Loads into DuckDB through the engine's own connection."""

    name = "duckdb"
    capabilities: ClassVar[Capabilities] = Capabilities(
        reads_objects_itself=False,
        requires_s3=False,
        max_identifier_bytes=127,
        advisory_locks=False,
        varchar_lengths=False,
    )
    batch_format = "arrow"
    streams_batches = True
    lock_before_transaction = True

    def _database(self) -> str:
        return database_key(self.engine.url.database)

    def connect(self, timeout: float) -> sa.Connection:
        """The run's connection; while another process holds the file, try again (pausing
        longer each time, up to a second) until ``timeout`` seconds have passed.

        Raises:
            ConcurrentRunError: If the file is still held after ``timeout`` seconds.
        """
        deadline = time.monotonic() + max(timeout, 0)
        pause = 0.02
        while True:
            try:
                return self.engine.connect()
            except sa.exc.DBAPIError as exc:
                if not _HELD_ELSEWHERE.search(str(exc.orig)):
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    holder = re.search(r"\(PID (\d+)\)", str(exc.orig))
                    who = f" (process {holder.group(1)})" if holder else ""
                    raise ConcurrentRunError(
                        "connect",
                        f"another process{who} has held the DuckDB file {self._database()} "
                        f"for more than {timeout:g} s (lock_timeout); DuckDB lets one process "
                        "open a file at a time: try again when it has finished",
                    ) from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, _MAX_PAUSE)

    @contextlib.contextmanager
    def lock(self, conn: sa.Connection, target: str, timeout: float) -> Iterator[None]:
        # One lock per database file (its real path), in this process; other processes are
        # kept out by DuckDB's own file lock (see ``connect``). Steps on the same file take
        # turns. It is taken before the step's transaction begins, since a DuckDB transaction
        # sees the database as it was when it began.
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

    def load(self, conn: sa.Connection, job: CopyJob, objects: Sequence[ObjectInfo]) -> LoadResult:
        with _bounded_cache(conn, job.table), _unordered(conn):
            return super().load(conn, job, objects)

    def write_stream(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], stream: Any
    ) -> int:
        # One INSERT for the step's batches, read as they come (``_stream``): DuckDB appends
        # with all its threads (insertion order off, ``_unordered``), where an INSERT per
        # batch appends on one.
        return self.write(conn, table, columns, stream)

    def write(self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], data: Any) -> int:
        preparer = conn.dialect.identifier_preparer
        names = ", ".join(preparer.quote(c) for c in columns)
        into = f"INSERT INTO {quote_table(conn.dialect, table)} ({names}) SELECT * FROM "
        # The step's Arrow stream (``write_stream``; or one Arrow table) is scanned in place by
        # the warehouse's own DuckDB connection (no file, no copy), in the step's transaction.
        raw: Any = conn.connection.driver_connection
        if _replacement_scans(raw):
            # DuckDB finds the data by its name among this frame's variables (a replacement
            # scan): nothing enters the catalog, so nothing holds a batch once it is read. A
            # view would: dropping it inside the step's transaction keeps it, and the Arrow
            # data it reads, until the commit.
            _arbalest_batch = data  # read by name by DuckDB
            # DuckDB answers an INSERT with the count of the rows it inserted
            return _count(raw.execute(into + "_arbalest_batch"))
        # A connection with replacement scans turned off: a view, private to this connection
        view = f"_arbalest_batch_{threading.get_ident()}"
        raw.register(view, data)
        try:
            return _count(raw.execute(into + view))
        finally:
            # After a failed INSERT the transaction is aborted and DuckDB refuses even this;
            # the INSERT's own error is the one to report.
            with contextlib.suppress(duckdb.Error):
                raw.unregister(view)


@contextlib.contextmanager
def _unordered(conn: sa.Connection) -> Iterator[None]:
    """While a step loads, DuckDB's ``preserve_insertion_order`` is off, so that its one
    ``INSERT`` appends in parallel; put back (through another connection, as
    ``_bounded_cache`` does) when the step's load ends, however it ends.

    A table has no order of its own (no SQL warehouse promises one without ``ORDER BY``):
    only the order in which a load's rows are stored changes, not which rows. The setting is
    the database's: a query on another connection of this process during the load may see
    rows in another order too.
    """
    raw: Any = conn.connection.driver_connection
    (before,) = raw.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0]
    if not before:
        yield
        return
    raw.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        with raw.duplicate() as other:
            other.execute("RESET preserve_insertion_order")


@contextlib.contextmanager
def _bounded_cache(conn: sa.Connection, table: sa.Table) -> Iterator[None]:
    """While a table with no index is loaded, DuckDB's ``memory_limit`` is at most
    ``LOADING_MEMORY_LIMIT``; the setting is put back before the step commits.

    DuckDB keeps the blocks it writes cached up to its limit (by default 80% of the
    machine's memory), so a load grows the process by about as much as it writes. Rows
    appended to a table without an index need none of that cache: DuckDB writes them out
    under any limit. A primary-key index must fit in memory, so those tables are left alone,
    as is an in-memory database (its rows would go to temporary files in the working folder);
    so is a limit already lower, and one that cannot be put back exactly (DuckDB prints a
    limit rounded, so only its default and the URL's own ``memory_limit`` can be).
    """
    in_memory = database_key(conn.engine.url.database).startswith(":memory:")
    if in_memory or table.primary_key or any(c.unique for c in table.columns) or table.indexes:
        yield
        return
    raw: Any = conn.connection.driver_connection
    before = _printed(raw)
    configured = conn.engine.url.query.get("memory_limit")
    if _bytes(before) <= _bytes(LOADING_MEMORY_LIMIT):
        restore = None
    elif before == _printed_limit(None):
        restore = "RESET memory_limit"
    elif isinstance(configured, str) and before == _printed_limit(configured):
        restore = f"SET memory_limit = {sql_literal(configured)}"
    else:
        restore = None
    if restore is None:
        yield
        return
    raw.execute(f"SET memory_limit = '{LOADING_MEMORY_LIMIT}'")
    try:
        yield
    finally:
        # Put back even after a failure: the setting outlives a rolled-back transaction, and
        # a pooled connection would keep 32 MB for a later load into a keyed table. Through
        # another connection to the same database: after a failed statement the step's own
        # refuses everything but ROLLBACK, and the limit is the database's, not a session's.
        with raw.duplicate() as other:  # a new connection to the same database
            other.execute(restore)


def _printed(raw: Any) -> str:
    return str(raw.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


@functools.cache
def _printed_limit(limit: str | None) -> str:
    """How DuckDB prints ``limit`` (``None``: its default) as the ``memory_limit``."""
    config: dict[str, Any] = {} if limit is None else {"memory_limit": limit}
    with duckdb.connect(":memory:", config=config) as con:
        return _printed(con)


def _bytes(size: str) -> float:
    """DuckDB's spelling of a size (``953.6 MiB``) in bytes."""
    match = re.fullmatch(r"([0-9.]+)\s*([KMGTP]?i?B|bytes)", size.strip())
    if match is None:
        return float("inf")  # a spelling not known here: treated as no limit
    number, unit = match.groups()
    scale = {"bytes": 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
    scale |= {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PiB": 2**50, "PB": 10**15}
    return float(number) * scale.get(unit, 1)


def _replacement_scans(raw: Any) -> bool:
    """Whether the connection finds Python objects by name (``python_enable_replacements``,
    on unless someone turned it off). Asked before the ``INSERT``: a name DuckDB cannot find
    fails the statement, and with it the step's transaction."""
    setting = raw.execute("SELECT current_setting('python_enable_replacements')").fetchall()
    return bool(setting[0][0])


def _count(result: Any) -> int:
    """The row count an ``INSERT`` answers with, its result read to the end (DuckDB refuses
    other work on a connection whose last result is unfinished)."""
    return int(result.fetchall()[0][0])
