"""The tables a Redshift ``COPY`` fills before its rows reach the target, and the statements
that move them there: ``DATE`` columns loaded as instants and settled in UTC, each object's
rows numbered for a merge, and the refusal of a merge that would depend on record order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import sqlalchemy as sa

from arbalest.backends.base import POSITION_COLUMNS, CopyJob, quote_table, staging_name
from arbalest.errors import CopyError
from arbalest.stores.base import ObjectInfo

__all__ = ["like", "load_table", "number_rows", "refuse_ambiguous", "settle"]


def load_table(
    table: sa.Table, run_id: str, dates: frozenset[str], *, with_position: bool = False
) -> sa.Table:
    """A temporary table that a COPY loads for ``table``: the same columns (NOT NULL kept,
    so that COPY rejects a missing value as it would in the target), but ``DATE`` columns
    as ``TIMESTAMPTZ``, read with the step's ``TIMEFORMAT`` (Redshift reads ``DATE`` with
    ``DATEFORMAT``, which knows no epoch formats), and the position columns for a merge."""
    columns = [
        sa.Column(
            c.name,
            sa.TIMESTAMP(timezone=True) if c.name in dates else c.type,
            nullable=c.nullable,
        )
        for c in table.columns
    ]
    if with_position:
        columns += [sa.Column(name, sa.BigInteger) for name in POSITION_COLUMNS]
    return sa.Table(
        staging_name(table, run_id, "_load"), sa.MetaData(), *columns, prefixes=["TEMPORARY"]
    )


def settle(loading: sa.Table, target: sa.Table, dates: frozenset[str]) -> sa.Insert:
    """Insert the load table's rows into ``target``, with each ``DATE`` column's value the
    date in UTC of the instant loaded (``TIMEZONE('UTC', ...)`` is Redshift's and
    PostgreSQL's; the session's time zone plays no part)."""
    names = [c.name for c in target.columns]
    values = [
        sa.cast(sa.func.timezone("UTC", loading.c[n]), sa.Date).label(n)
        if n in dates
        else loading.c[n]
        for n in names
    ]
    return sa.insert(target).from_select(names, sa.select(*values))


def number_rows(loading: sa.Table, number: int) -> sa.Update:
    """Give the rows just copied (those without a position) their object's number.

    COPY keeps no order among an object's records, so every other position column is 0;
    ``refuse_ambiguous`` makes sure that no merge depends on it.
    """
    chunk, *within = POSITION_COLUMNS
    return (
        sa.update(loading)
        .where(loading.c[chunk].is_(None))
        .values({chunk: number, **dict.fromkeys(within, 0)})
    )


#: How many ambiguous keys an error names.
_SHOWN: Final = 5


def refuse_ambiguous(
    conn: sa.Connection,
    job: CopyJob,
    table: sa.Table,
    staging: sa.Table,
    objects: Sequence[ObjectInfo],
) -> None:
    """Fail the step when one object holds different records for one primary key.

    Which of them is the newest is the order of the records in the object, which Redshift's
    COPY does not keep (nor does an IDENTITY column filled by COPY). Identical records are
    fine: whichever wins, the row is the same.
    """
    keys = [c.name for c in table.primary_key]
    if not keys:
        return
    chunk = POSITION_COLUMNS[0]
    repeated = (
        sa.select(sa.literal(1))
        .select_from(staging)
        .group_by(staging.c[chunk], *[staging.c[k] for k in keys])
        .having(sa.func.count() > 1)
        .limit(1)
    )
    if conn.execute(repeated).first() is None:  # the common case: one record per key
        return
    super_columns = {spec.name for spec in job.schema.__fields__ if spec.rule.takes_json}
    distinct = sa.select(
        staging.c[chunk],
        *[
            sa.func.json_serialize(staging.c[c.name]).label(c.name)
            if c.name in super_columns
            else staging.c[c.name]
            for c in table.columns
        ],
    ).distinct()
    records = distinct.subquery("records")
    found = conn.execute(
        sa.select(records.c[chunk], *[records.c[k] for k in keys], sa.func.count())
        .group_by(records.c[chunk], *[records.c[k] for k in keys])
        .having(sa.func.count() > 1)
        .order_by(records.c[chunk], *[records.c[k] for k in keys])
        .limit(_SHOWN)
    ).all()
    if not found:
        return
    named = ", ".join(keys)
    shown = "; ".join(
        f"{objects[int(row[0]) - 1].key} holds {row[-1]} different records for "
        f"({named}) = ({', '.join(repr(v) for v in row[1:-1])})"
        for row in found
    )
    raise CopyError(
        job.label,
        f"{shown}{' ...' if len(found) == _SHOWN else ''}. Redshift's COPY does not keep the "
        "order of the records within an object, so which of them is the newest cannot be "
        "told; a merge needs at most one record per primary key in each object on Redshift "
        "(identical repeats are fine).",
    )


def like(conn: sa.Connection, table: sa.Table, run_id: str) -> sa.Table:
    """A temporary table ``LIKE`` the target (same distribution, sort keys, encodings)."""
    staging = sa.Table(
        staging_name(table, run_id),
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in table.columns),
    )
    preparer = conn.dialect.identifier_preparer
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {preparer.quote(staging.name)} "
        f"(LIKE {quote_table(conn.dialect, table)})"
    )
    return staging
