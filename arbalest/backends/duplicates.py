"""Which record repeats a primary key, when an ``incremental`` or ``replace`` load is refused.

The warehouses say it each in their own words, and about the batch they were sent (a row of
a converted batch), not about the user's objects. Only when the load has failed, the objects are
loaded again, with their positions, into a temporary table on a connection of its own, whose
transaction is rolled back; the first record (in load order) whose key was seen before, in
the load or in the table, is named by object key and line. Nothing of this runs on a load
that succeeds.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from arbalest.stores.base import ObjectInfo

if TYPE_CHECKING:
    from arbalest.backends.base import CopyJob, TransformBackend

__all__ = ["explain"]

logger = logging.getLogger(__name__)

_HINT = 'mode="merge" keeps the newest record of each key'


def explain(
    backend: TransformBackend,
    failed: sa.Connection,
    job: CopyJob,
    objects: Sequence[ObjectInfo],
) -> str | None:
    """The message for a load refused for a duplicate primary key, or None when no duplicate
    is found (the refusal had another cause, the search itself failed, or the engine's pool
    has no connection but the failed one: a DuckDB ``:memory:`` database)."""
    from arbalest.backends.base import POSITION_COLUMNS, staging_table

    table = job.table
    keys = [c.name for c in table.primary_key]
    if not keys:
        return None
    quiet = dataclasses.replace(
        job, on_object=None, on_chunk=None, max_errors=sys.maxsize, into=None
    )
    try:
        with backend.engine.connect() as conn:
            if conn.connection.dbapi_connection is failed.connection.dbapi_connection:
                return None  # one connection per thread: never touch the failed transaction
            with conn.begin() as transaction:
                if conn.dialect.name == "postgresql":
                    # never wait for the failed step's own locks (it waits for this)
                    conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
                staging = staging_table(table, job.run_id, with_position=True, suffix="_dup")
                conn.execute(CreateTable(staging))
                chunk = staging.c[POSITION_COLUMNS[0]]
                for index, info in enumerate(objects):
                    backend._load_into(conn, quiet, [info], staging, with_position=True)
                    # chunks count from 0 in each load: mark the rows with the object instead
                    conn.execute(sa.update(staging).where(chunk >= 0).values({chunk: -1 - index}))
                found = _within(conn, staging, keys, objects)
                if found is None and job.mode == "incremental":
                    found = _in_table(conn, staging, table, keys, objects)
                transaction.rollback()
                return found
    except Exception:  # the search must not hide the warehouse's own error
        logger.debug("looking for the duplicate primary key failed", exc_info=True)
        return None


def _within(
    conn: sa.Connection, staging: sa.Table, keys: list[str], objects: Sequence[ObjectInfo]
) -> str | None:
    """The first record whose key an earlier record of the load had."""
    from arbalest.backends.base import POSITION_COLUMNS

    chunk, line, *within_line = (staging.c[name] for name in POSITION_COLUMNS)
    order = sa.func.row_number().over(
        partition_by=[staging.c[k] for k in keys], order_by=[chunk.desc(), line, *within_line]
    )
    ranked = sa.select(
        *[staging.c[k] for k in keys], chunk, line, *within_line, order.label("_arbalest_rank")
    ).subquery()
    second = conn.execute(
        sa.select(*[ranked.c[k] for k in keys], ranked.c[chunk.name], ranked.c[line.name])
        .where(ranked.c._arbalest_rank == 2)
        .order_by(
            ranked.c[chunk.name].desc(),
            ranked.c[line.name],
            *[ranked.c[c.name] for c in within_line],
        )
        .limit(1)
    ).first()
    if second is None:
        return None
    values = second[: len(keys)]
    first = conn.execute(
        sa.select(ranked.c[chunk.name], ranked.c[line.name]).where(
            ranked.c._arbalest_rank == 1,
            *[ranked.c[k] == v for k, v in zip(keys, values, strict=True)],
        )
    ).one()
    return (
        f"duplicate primary key {_key(keys, values)}: {_where(objects, *second[-2:])} "
        f"repeats the key of {_where(objects, *first)}; {_HINT}"
    )


def _in_table(
    conn: sa.Connection,
    staging: sa.Table,
    table: sa.Table,
    keys: list[str],
    objects: Sequence[ObjectInfo],
) -> str | None:
    """The first record whose key the table already had."""
    from arbalest.backends.base import POSITION_COLUMNS

    chunk, line, *within_line = (staging.c[name] for name in POSITION_COLUMNS)
    row = conn.execute(
        sa.select(*[staging.c[k] for k in keys], chunk, line)
        .where(*[staging.c[k] == table.c[k] for k in keys])
        .order_by(chunk.desc(), line, *within_line)
        .limit(1)
    ).first()
    if row is None:
        return None
    return (
        f"duplicate primary key {_key(keys, row[: len(keys)])}: {_where(objects, *row[-2:])} "
        f"has a key the table {table.name} already holds; {_HINT}"
    )


def _where(objects: Sequence[ObjectInfo], chunk: int, line: int) -> str:
    return f"{objects[-1 - chunk].key} line {line}"


def _key(keys: list[str], values: Sequence[Any]) -> str:
    shown = [f"'{v}'" if isinstance(v, str) else str(v) for v in values]
    return f"({', '.join(keys)})=({', '.join(shown)})"
