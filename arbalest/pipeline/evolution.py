"""The target table against its class: what differs, and what ``evolve=True`` may change.

A copy step whose table already exists compares the table's columns (read from
``information_schema.columns``: DuckDB's SQLAlchemy driver cannot reflect) with the class's,
after the step's lock is held and before anything is loaded. Types are compared as each
warehouse spells them, normalised (``character varying(256)``, ``VARCHAR(256)``; ``timestamp
with time zone``, ``TIMESTAMPTZ``; ``numeric(12,2)``, ``DECIMAL(12,2)``).

What ``evolve=True`` does: add the class's new columns, nullable (``ALTER TABLE ... ADD
COLUMN``), and widen a ``VARCHAR`` the class made longer (``ALTER COLUMN ... TYPE``). Both
run in the step's transaction, so a step that fails leaves the table as it was; except on
Redshift, which refuses ``ALTER COLUMN ... TYPE`` inside a transaction block: there the
widening runs before the step's transaction, on a connection of its own, each statement
committed on its own (a wider ``VARCHAR`` loses nothing, so a failed step leaves a table that
is wider, and otherwise as it was). Everything else (a narrower or different type, a column
the class no longer has, a table ``NOT NULL`` where the class allows NULL, a new primary-key
column) is never changed: the step fails with a ``TableMismatchError`` (a ``SchemaError``)
that names every column and the fix.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.schema import CreateColumn

from arbalest import journal
from arbalest.backends import Backend
from arbalest.backends.base import quote_table
from arbalest.errors import TableMismatchError

__all__ = [
    "ColumnChange",
    "ColumnType",
    "TableChanges",
    "add_column",
    "compare",
    "mismatch",
    "normalise",
    "reconcile",
    "widen_column",
    "widen_first",
]

logger = logging.getLogger(__name__)

Change = Literal["add", "widen", "narrow", "type", "drop", "not null", "key"]

#: Where to read about migrations (the message of every refusal names it).
ALEMBIC_DOCS: Final = "docs/changes.md#alembic"


def _refusal(changes: Sequence[ColumnChange], evolve: bool) -> str:
    """What to do about ``changes`` (the fix a ``TableMismatchError`` names)."""
    fixes = []
    offered = not evolve and any(c.evolvable for c in changes)
    if offered:
        fixes.append(
            "copy(..., evolve=True) adds new columns (nullable) and widens VARCHAR columns"
        )
    others = [c.column for c in changes if not c.evolvable]
    if others:
        fixes.append(
            f"{'the other differences' if offered else 'these differences'} "
            f"({', '.join(dict.fromkeys(others))}) are never made by a load: migrate the "
            f"table (Alembic autogenerate, see {ALEMBIC_DOCS}) or change the class to match "
            "the table"
        )
    return "; ".join(fixes)


def mismatch(step: str, changes: TableChanges, evolve: bool) -> TableMismatchError:
    """The error of a step refused by its table's differences."""
    return TableMismatchError(
        step,
        changes.table,
        [c.column for c in changes.changes],
        [c.describe() for c in changes.changes],
        _refusal(changes.changes, evolve),
    )


@dataclass(frozen=True)
class ColumnType:
    """A column type, normalised: a family (``varchar``, ``numeric``, ``timestamptz``...)
    with its length, or precision and scale. ``str()`` gives it as SQL spells it."""

    family: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        name = _SHOWN.get(self.family, self.family.upper())
        if self.family in ("varchar", "char") and self.length is not None:
            return f"{name}({self.length})"
        if self.family == "numeric" and self.precision is not None:
            return f"{name}({self.precision},{self.scale or 0})"
        return name


_FAMILIES: Final = {
    "character varying": "varchar",
    "varchar": "varchar",
    "nvarchar": "varchar",
    "text": "varchar",
    "string": "varchar",
    "character": "char",
    "char": "char",
    "bpchar": "char",
    "nchar": "char",
    "smallint": "smallint",
    "int2": "smallint",
    "integer": "integer",
    "int": "integer",
    "int4": "integer",
    "bigint": "bigint",
    "int8": "bigint",
    "numeric": "numeric",
    "decimal": "numeric",
    "real": "real",
    "float4": "real",
    "float": "real",  # DuckDB's name for REAL (its information_schema says FLOAT)
    "double precision": "double",
    "double": "double",
    "float8": "double",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp without time zone": "timestamp",
    "timestamptz": "timestamptz",
    "timestamp with time zone": "timestamptz",
}
_SHOWN: Final = {"double": "DOUBLE PRECISION", "timestamptz": "TIMESTAMPTZ"}
_SPELLING: Final = re.compile(r"^\s*(?P<name>[^(]*?)\s*(?:\((?P<args>[^)]*)\))?\s*$")


def normalise(
    text: str,
    length: int | None = None,
    precision: int | None = None,
    scale: int | None = None,
    *,
    keeps_lengths: bool = True,
) -> ColumnType:
    """The type spelled ``text`` (``VARCHAR(36)``, ``character varying``,
    ``DECIMAL(12,2)``...), with the length, precision and scale information_schema gives
    apart from it. ``keeps_lengths=False``: a warehouse where ``VARCHAR(n)`` and ``CHAR(n)``
    are one type whatever ``n`` (DuckDB)."""
    match = _SPELLING.match(text)
    name = " ".join((match.group("name") if match else text).lower().split())
    # a time zone clause after the arguments: "timestamp(6) with time zone"
    name = re.sub(r"\(\d+\)", "", name)
    args = [int(a) for a in re.findall(r"\d+", match.group("args") or "")] if match else []
    family = _FAMILIES.get(name)
    if family is None:
        return ColumnType(name)
    if family in ("varchar", "char"):
        if not keeps_lengths:
            return ColumnType("varchar")
        size = length if length is not None else (args[0] if args else None)
        if family == "char" and size is None:
            size = 1
        return ColumnType(family, length=size)
    if family == "numeric":
        digits = precision if precision is not None else (args[0] if args else None)
        places = scale if scale is not None else (args[1] if len(args) > 1 else None)
        if digits is not None and places is None:
            places = 0
        return ColumnType(family, precision=digits, scale=places)
    return ColumnType(family)


@dataclass(frozen=True)
class ColumnChange:
    """One difference between the table and the class.

    Attributes:
        column: The column's name.
        change: ``"add"`` (the class has it, the table not), ``"widen"`` (a longer
            ``VARCHAR`` in the class), ``"narrow"`` (a shorter one), ``"type"`` (another
            type), ``"drop"`` (the table has it, the class not), ``"not null"`` (``NOT NULL``
            in the table, nullable in the class), ``"key"`` (a new primary-key column).
        table_type: The column in the table (``None`` for ``"add"`` and ``"key"``).
        class_type: The column in the class (``None`` for ``"drop"``).
        evolvable: Whether ``evolve=True`` makes this change.
        statement: The ``ALTER TABLE`` that makes it, when ``evolvable``; ``None`` when
            nothing needs to run.
        in_transaction: Whether ``statement`` runs in the step's transaction (Redshift's
            ``ALTER COLUMN ... TYPE`` cannot: it runs before).
    """

    column: str
    change: Change
    table_type: str | None
    class_type: str | None
    evolvable: bool
    statement: str | None = None
    in_transaction: bool = True

    def describe(self) -> str:
        """The difference in words."""
        c, was, wanted = self.column, self.table_type, self.class_type
        if self.change == "add":
            return f"column {c} ({wanted}) is not in the table (evolve=True adds it, nullable)"
        if self.change == "key":
            return (
                f"column {c} ({wanted}) is not in the table and is part of the class's primary "
                "key (a new key column is a migration)"
            )
        if self.change == "widen":
            return (
                f"column {c} is {was} in the table, {wanted} in the class (evolve=True widens it)"
            )
        if self.change == "narrow":
            return f"column {c} is {was} in the table, {wanted} in the class (narrower)"
        if self.change == "type":
            return f"column {c} is {was} in the table, {wanted} in the class"
        if self.change == "drop":
            return f"column {c} ({was}) is in the table but not in the class"
        return f"column {c} is NOT NULL in the table, nullable in the class"

    def to_dict(self) -> dict[str, Any]:
        """The change as plain JSON values (see ``PlanStep.to_dict``)."""
        return {
            "column": self.column,
            "change": self.change,
            "table": self.table_type,
            "class": self.class_type,
            "evolvable": self.evolvable,
        }


@dataclass(frozen=True)
class TableChanges:
    """What differs between a table and its class (empty: nothing)."""

    table: str
    changes: list[ColumnChange]

    def __bool__(self) -> bool:
        return bool(self.changes)

    def refused(self, evolve: bool) -> list[ColumnChange]:
        """The changes a step with ``evolve=`` refuses (all of them, without ``evolve``)."""
        return [c for c in self.changes if not (evolve and c.evolvable)]

    def statements(self, *, in_transaction: bool) -> list[str]:
        """The ``ALTER`` statements ``evolve=True`` runs, in or before the transaction."""
        return [
            c.statement
            for c in self.changes
            if c.evolvable and c.statement is not None and c.in_transaction == in_transaction
        ]


_COLUMNS_IN_SCHEMA: Final = sa.text(
    "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
    "numeric_scale, is_nullable FROM information_schema.columns "
    "WHERE table_name = :name AND table_schema = :schema ORDER BY ordinal_position"
)
_COLUMNS_IN_CURRENT_SCHEMA: Final = sa.text(
    "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
    "numeric_scale, is_nullable FROM information_schema.columns "
    "WHERE table_name = :name AND table_schema = current_schema() ORDER BY ordinal_position"
)


@dataclass(frozen=True)
class _Existing:
    type: ColumnType
    nullable: bool


def _table_columns(
    conn: sa.Connection, table: sa.Table, keeps_lengths: bool
) -> dict[str, _Existing]:
    query = _COLUMNS_IN_SCHEMA if table.schema else _COLUMNS_IN_CURRENT_SCHEMA
    params = {"name": table.name, **({"schema": table.schema} if table.schema else {})}
    found = {}
    for name, kind, length, precision, scale, nullable in conn.execute(query, params):
        normal = normalise(
            str(kind),
            _int(length),
            _int(precision),
            _int(scale),
            keeps_lengths=keeps_lengths,
        )
        found[str(name)] = _Existing(normal, str(nullable).upper() != "NO")
    return found


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _class_type(column: sa.Column[Any], dialect: sa.Dialect, keeps_lengths: bool) -> ColumnType:
    return normalise(str(column.type.compile(dialect=dialect)), keeps_lengths=keeps_lengths)


def add_column(table: sa.Table, column: sa.Column[Any], dialect: sa.Dialect) -> str:
    """``ALTER TABLE ... ADD COLUMN``: the column as ``CREATE TABLE`` would spell it, nullable
    (the rows already there have no value; the class's NOT NULL is still enforced on every
    record loaded, as a reject)."""
    added = column._copy()
    added.nullable = True
    added.primary_key = False
    sa.Table(table.name, sa.MetaData(), added, schema=table.schema)
    spec = " ".join(str(CreateColumn(added).compile(dialect=dialect)).split())
    return f"ALTER TABLE {quote_table(dialect, table)} ADD COLUMN {spec}"


def widen_column(table: sa.Table, column: sa.Column[Any], dialect: sa.Dialect) -> str:
    """``ALTER TABLE ... ALTER COLUMN ... TYPE``: ``column``'s type as the class has it."""
    name = dialect.identifier_preparer.quote(column.name)
    kind = column.type.compile(dialect=dialect)
    # no USING clause: Redshift refuses one, and a longer VARCHAR needs none anywhere
    return f"ALTER TABLE {quote_table(dialect, table)} ALTER COLUMN {name} TYPE {kind}"


def compare(conn: sa.Connection, table: sa.Table, backend: Backend) -> TableChanges:
    """How the existing ``table`` differs from the class's table (``table`` is the class's).

    Every column of the class is checked, then every column of the table that the class does
    not have. A table column that is nullable where the class says ``NOT NULL`` is no
    difference: Arbalest rejects a record without a value for it, whatever the table says
    (and a column that ``evolve=True`` added is nullable, since the rows already there have
    no value).
    """
    dialect = conn.dialect
    keeps = backend.capabilities.varchar_lengths
    in_transaction = backend.capabilities.alter_type_in_transaction
    existing = _table_columns(conn, table, keeps)
    changes: list[ColumnChange] = []
    for column in table.columns:
        wanted = _class_type(column, dialect, keeps)
        there = existing.get(column.name)
        if there is None:
            declared = str(_class_type(column, dialect, True))  # as the class declares it
            if column.primary_key:
                changes.append(ColumnChange(column.name, "key", None, declared, False))
            else:
                statement = add_column(table, column, dialect)
                changes.append(ColumnChange(column.name, "add", None, declared, True, statement))
            continue
        was = there.type
        if was != wanted:
            if was.family == wanted.family == "varchar":
                wider = was.length is not None and (wanted.length or 0) > was.length
                if wider:
                    statement = widen_column(table, column, dialect)
                    changes.append(
                        ColumnChange(
                            column.name,
                            "widen",
                            str(was),
                            str(wanted),
                            True,
                            statement,
                            in_transaction,
                        )
                    )
                else:
                    changes.append(
                        ColumnChange(column.name, "narrow", str(was), str(wanted), False)
                    )
            else:
                changes.append(ColumnChange(column.name, "type", str(was), str(wanted), False))
        if not there.nullable and column.nullable:
            changes.append(ColumnChange(column.name, "not null", "NOT NULL", "NULL", False))
    for name, there in existing.items():
        if name not in table.columns:
            changes.append(ColumnChange(name, "drop", str(there.type), None, False))
    return TableChanges(_name(table), changes)


def _name(table: sa.Table) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


def reconcile(
    conn: sa.Connection,
    table: sa.Table,
    backend: Backend,
    *,
    step: str,
    evolve: bool,
    validate: bool,
) -> list[str]:
    """Compare the existing ``table`` with its class, in the step's transaction, with the
    step's lock held; then refuse (``TableMismatchError``) or make the changes that
    ``evolve=True`` allows. Returns warnings for the step (a widening that Redshift cannot
    make in a validation's transaction).
    """
    changes = compare(conn, table, backend)
    if not changes:
        return []
    refused = changes.refused(evolve)
    if refused:
        raise mismatch(step, changes, evolve)
    warnings = []
    for change in changes.changes:
        if change.statement is None:
            continue
        if not change.in_transaction:
            # widen_first() made it before the transaction, unless this is a validation
            # (which changes nothing it cannot roll back) or another run narrowed it since
            warnings.append(
                f"column {change.column} is {change.table_type} in the table and "
                f"{change.class_type} in the class; {backend.name} cannot widen it inside "
                "a transaction, so "
                + (
                    "validate() left it as it is: values longer than the table's length are "
                    "rejected here, and run() widens it before loading"
                    if validate
                    else "it was not widened"
                )
            )
            continue
        logger.info("%s: %s", step, change.statement)
        conn.exec_driver_sql(change.statement)
    return warnings


def widen_first(engine: sa.Engine, table: sa.Table, backend: Backend, *, step: str) -> None:
    """Where ``ALTER COLUMN ... TYPE`` cannot run in a transaction (Redshift), widen the
    table's ``VARCHAR`` columns before the step's transaction begins, each statement
    committed on its own, on a connection of its own. Nothing is done unless every
    difference is one that ``evolve=True`` makes: a step that will be refused changes
    nothing.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if not journal.table_exists(conn, table):
            return
        changes = compare(conn, table, backend)
        if not changes or changes.refused(evolve=True):
            return  # nothing to widen, or the step will refuse: reconcile() says why
        for statement in changes.statements(in_transaction=False):
            logger.info("%s: %s (before the step's transaction)", step, statement)
            conn.exec_driver_sql(statement)
