"""Warehouse bookkeeping: which objects each target holds, and the cursors of time series.

The journal is a table in the warehouse, written in the same transaction as the rows it
describes: after a crash at any instant, data and journal agree, and the next run loads
exactly the objects that are missing.

An object is identified by its key relative to the store's root. If an object that was
loaded changes afterwards (same key, new ETag), ``incremental`` does not load it again (that
would duplicate its rows) and reports it as changed; ``merge`` loads it again (its rows
replace the old ones by primary key); ``replace`` always loads everything.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from arbalest.stores.base import ObjectInfo

__all__ = [
    "CURSORS",
    "JOURNAL",
    "Entry",
    "TargetStatus",
    "cursor_commit",
    "cursor_point",
    "cursor_rollback",
    "ensure",
    "journal_rows",
    "loaded",
    "new_run_id",
    "record",
    "status",
    "table_exists",
]

METADATA: Final = sa.MetaData()

JOURNAL: Final = sa.Table(
    "_arbalest_journal",
    METADATA,
    sa.Column("target", sa.String(256), primary_key=True),
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("etag", sa.String(128), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("last_modified", sa.DateTime(timezone=True)),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("store", sa.String(1024), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
)

CURSORS: Final = sa.Table(
    "_arbalest_cursors",
    METADATA,
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("point", sa.String(1024)),
    sa.Column("previous", sa.String(1024)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Entry:
    """One loaded object, as the journal records it; ``query_id``: the warehouse's id of the
    statement that loaded it, where it has one (Redshift's ``COPY``), for telemetry only."""

    info: ObjectInfo
    rows_loaded: int
    rows_rejected: int
    query_id: str | None = None


@dataclass(frozen=True)
class TargetStatus:
    """What the journal knows of one target."""

    target: str
    objects: int
    rows_loaded: int
    rows_rejected: int
    last_loaded_at: dt.datetime | None


def new_run_id() -> str:
    """A fresh identifier for one run."""
    return str(uuid.uuid4())


_IN_SCHEMA: Final = sa.text(
    "SELECT 1 FROM information_schema.tables WHERE table_name = :name AND table_schema = :schema"
)
_IN_CURRENT_SCHEMA: Final = sa.text(
    "SELECT 1 FROM information_schema.tables "
    "WHERE table_name = :name AND table_schema = current_schema()"
)


def table_exists(conn: sa.Connection, table: sa.Table) -> bool:
    """Whether ``table`` exists, without reflection (which DuckDB's driver lacks)."""
    schema = table.schema
    query = _IN_SCHEMA if schema else _IN_CURRENT_SCHEMA
    params = {"name": table.name, **({"schema": schema} if schema else {})}
    return conn.execute(query, params).first() is not None


def ensure(conn: sa.Connection) -> None:
    """Create the journal tables if they are missing."""
    for table in (JOURNAL, CURSORS):
        if not table_exists(conn, table):
            conn.execute(CreateTable(table, if_not_exists=True))


def _prefix_clause(prefix: str) -> sa.ColumnElement[bool]:
    if not prefix:
        return sa.true()
    return JOURNAL.c.key.startswith(prefix, autoescape=True)


def loaded(conn: sa.Connection, target: str, prefix: str = "") -> dict[str, str]:
    """The keys under ``prefix`` that ``target`` holds, with the ETag each was loaded at."""
    if not table_exists(conn, JOURNAL):
        return {}
    query = sa.select(JOURNAL.c.key, JOURNAL.c.etag).where(
        JOURNAL.c.target == target, _prefix_clause(prefix)
    )
    # Journals hold millions of keys: the rows are fetched from the driver's cursor in one
    # go (two strings each, nothing for SQLAlchemy to convert), three times faster than row
    # objects one by one.
    result = conn.execute(query)
    try:
        return dict(result.cursor.fetchall())
    finally:
        result.close()


def record(
    conn: sa.Connection,
    *,
    target: str,
    entries: Iterable[Entry],
    mode: str,
    store: str,
    run_id: str,
    replace_prefix: str | Sequence[str] | None = None,
) -> None:
    """Write journal rows for loaded objects, in the caller's transaction.

    Args:
        replace_prefix: For ``replace``: first forget every object of ``target`` under it
            (or under any of several: a time series' partitions).
    """
    entries = list(entries)
    if replace_prefix is not None:
        prefixes = [replace_prefix] if isinstance(replace_prefix, str) else list(replace_prefix)
        under = sa.or_(*(_prefix_clause(p) for p in prefixes)) if prefixes else sa.false()
        conn.execute(sa.delete(JOURNAL).where(JOURNAL.c.target == target, under))
    elif entries:
        # merge loads changed objects again: their old rows go
        keys = [e.info.key for e in entries]
        for start in range(0, len(keys), 1000):
            conn.execute(
                sa.delete(JOURNAL).where(
                    JOURNAL.c.target == target, JOURNAL.c.key.in_(keys[start : start + 1000])
                )
            )
    rows = journal_rows(entries, target=target, mode=mode, store=store, run_id=run_id)
    for start in range(0, len(rows), 5000):
        conn.execute(sa.insert(JOURNAL), rows[start : start + 5000])


def journal_rows(
    entries: Iterable[Entry], *, target: str, mode: str, store: str, run_id: str
) -> list[Mapping[str, Any]]:
    """The journal's rows for loaded objects (as ``record`` writes them), loaded now."""
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "target": target,
            "key": e.info.key,
            "etag": e.info.etag,
            "size": e.info.size,
            "last_modified": e.info.last_modified,
            "rows_loaded": e.rows_loaded,
            "rows_rejected": e.rows_rejected,
            "mode": mode,
            "store": store,
            "run_id": run_id,
            "loaded_at": now,
        }
        for e in entries
    ]


def status(conn: sa.Connection, targets: Iterable[str] | None = None) -> list[TargetStatus]:
    """Objects and rows loaded per target, and when the last one was loaded."""
    if not table_exists(conn, JOURNAL):
        return []
    query = (
        sa.select(
            JOURNAL.c.target,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(JOURNAL.c.rows_loaded), 0),
            sa.func.coalesce(sa.func.sum(JOURNAL.c.rows_rejected), 0),
            sa.func.max(JOURNAL.c.loaded_at),
        )
        .group_by(JOURNAL.c.target)
        .order_by(JOURNAL.c.target)
    )
    if targets is not None:
        query = query.where(JOURNAL.c.target.in_(list(targets)))
    return [
        TargetStatus(str(t), int(n), int(rows), int(rejected), last)
        for t, n, rows, rejected, last in conn.execute(query).all()
    ]


def cursor_point(conn: sa.Connection, name: str) -> tuple[str | None, str | None]:
    """The committed point of a cursor and the one before it."""
    if not table_exists(conn, CURSORS):
        return None, None
    row = conn.execute(
        sa.select(CURSORS.c.point, CURSORS.c.previous).where(CURSORS.c.name == name)
    ).first()
    return (row[0], row[1]) if row else (None, None)


def cursor_commit(conn: sa.Connection, name: str, point: str) -> None:
    """Move a cursor to ``point``, remembering where it was."""
    ensure(conn)
    current, _ = cursor_point(conn, name)
    conn.execute(sa.delete(CURSORS).where(CURSORS.c.name == name))
    conn.execute(
        sa.insert(CURSORS).values(
            name=name, point=point, previous=current, updated_at=dt.datetime.now(dt.UTC)
        )
    )


def cursor_rollback(conn: sa.Connection, name: str) -> str | None:
    """Move a cursor back to the point before its last commit; return that point."""
    current, previous = cursor_point(conn, name)
    if current is None:
        return None
    conn.execute(sa.delete(CURSORS).where(CURSORS.c.name == name))
    if previous is not None:
        conn.execute(
            sa.insert(CURSORS).values(
                name=name, point=previous, previous=None, updated_at=dt.datetime.now(dt.UTC)
            )
        )
    return previous
