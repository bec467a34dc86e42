"""The run locks on Redshift, which has no advisory locks: an empty table per target whose
``LOCK`` is that target's run lock, ``_arbalest_lock`` for the runs creating Arbalest's tables,
and the bounded wait for either (``statement_timeout`` = ``lock_timeout``)."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from typing import Final

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from arbalest import journal
from arbalest.backends.base import quote_table, sqlstate
from arbalest.errors import ConcurrentRunError

__all__ = ["CREATION_LOCK", "create_creation_lock", "lock_creation", "lock_table", "lock_target"]

_STATEMENT_TIMEOUT: Final = "57014"  # query_canceled: statement_timeout elapsed

_LOCK_COLUMN: Final = "held"
#: The lock runs take while they create Arbalest's tables and a new target.
CREATION_LOCK: Final = sa.Table(
    "_arbalest_lock", sa.MetaData(), sa.Column(_LOCK_COLUMN, sa.SmallInteger)
)


def lock_table(target: str) -> sa.Table:
    """The empty table whose ``LOCK`` is ``target``'s run lock: ``_arbalest_lock_`` and the
    target's name (letters, digits and ``_``, at most 40) and 12 hex digits of its SHA-1.
    Redshift folds names to lowercase, so ``Events`` and ``events`` share one."""
    folded = target.lower()
    digest = hashlib.sha1(folded.encode(), usedforsecurity=False).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")[:40]
    name = f"_arbalest_lock_{slug}_{digest}" if slug else f"_arbalest_lock_{digest}"
    return sa.Table(name, sa.MetaData(), sa.Column(_LOCK_COLUMN, sa.SmallInteger))


@contextlib.contextmanager
def _bounded(conn: sa.Connection, timeout: float, what: str, why: str) -> Iterator[None]:
    """Run the statements inside with ``statement_timeout`` = ``timeout``, then put the
    session's own value back; a timeout is a ``ConcurrentRunError`` (``what``, ``why``)."""
    milliseconds = max(int(timeout * 1000), 1)
    # statement_timeout bounds the wait for the LOCK only: the session's own value (a
    # user's or a cluster's setting) is put back for the COPY and whatever follows
    previous = str(conn.exec_driver_sql("SHOW statement_timeout").scalar_one())
    conn.exec_driver_sql(f"SET statement_timeout TO {milliseconds}")
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if sqlstate(exc.orig) == _STATEMENT_TIMEOUT or "timeout" in str(exc.orig):
            raise ConcurrentRunError(what, why) from None
        raise
    # A failed LOCK aborts the transaction, and its rollback undoes the SET; on success
    # the value is restored as a bound parameter, never pasted into SQL.
    conn.execute(
        sa.text("SELECT set_config('statement_timeout', :value, false)"), {"value": previous}
    )


def lock_target(conn: sa.Connection, target: str, timeout: float, *, serializable: bool) -> None:
    """``LOCK`` ``target``'s lock table (created in ``conn``'s transaction if missing) and,
    on a ``SERIALIZABLE`` database, the journal too, waiting at most ``timeout`` seconds."""
    tables = [lock_table(target)]
    if not journal.table_exists(conn, tables[0]):
        # the runner creates it with the journal; a caller of its own gets it here, in
        # its transaction
        conn.execute(CreateTable(tables[0], if_not_exists=True))
    if serializable:
        tables.append(journal.JOURNAL)  # always last: every run locks in one order
    names = ", ".join(quote_table(conn.dialect, t) for t in tables)
    why = (
        f"another run has been loading {target!r} for more than {timeout:g} s "
        "(lock_timeout); try again later"
    )
    if serializable:
        why = (
            f"another run has held Arbalest's journal for more than {timeout:g} s "
            "(lock_timeout; with SERIALIZABLE isolation, runs on every target take turns); "
            "try again later"
        )
    with _bounded(conn, timeout, f"lock {target}", why):
        conn.exec_driver_sql(f"LOCK {names}")


def lock_creation(conn: sa.Connection, timeout: float) -> None:
    """``LOCK _arbalest_lock`` (which must exist), waiting at most ``timeout`` seconds."""
    why = (
        f"another run has been creating Arbalest's tables for more than {timeout:g} s "
        "(lock_timeout); try again later"
    )
    with _bounded(conn, timeout, "create tables", why):
        conn.exec_driver_sql(f"LOCK {quote_table(conn.dialect, CREATION_LOCK)}")


def create_creation_lock(engine: sa.Engine) -> None:
    """Create ``_arbalest_lock`` and commit at once, on a connection of its own: runs that
    start together both get to ``LOCK`` it. Two creating it at the same moment: one is
    refused (a duplicate in the catalog), and finds it there."""
    try:
        with engine.begin() as side:
            side.execute(CreateTable(CREATION_LOCK, if_not_exists=True))
    except sa.exc.DBAPIError:
        with engine.connect() as side:
            if not journal.table_exists(side, CREATION_LOCK):
                raise
