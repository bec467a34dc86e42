"""Types as each warehouse spells them, normalised; differences in words; refusals."""

from __future__ import annotations

import pytest

from arbalest import PipelineError, SchemaError, TableMismatchError
from arbalest.pipeline.evolution import (
    ColumnChange,
    ColumnType,
    TableChanges,
    mismatch,
    normalise,
)


@pytest.mark.parametrize(
    ("spelling", "info", "expected"),
    [
        # PostgreSQL's information_schema, and SQLAlchemy's DDL for it
        ("character varying", (256, None, None), ColumnType("varchar", 256)),
        ("VARCHAR(256)", (None, None, None), ColumnType("varchar", 256)),
        ("text", (None, None, None), ColumnType("varchar")),
        ("character", (3, None, None), ColumnType("char", 3)),
        ("numeric", (None, 12, 2), ColumnType("numeric", precision=12, scale=2)),
        ("NUMERIC(12, 2)", (None, None, None), ColumnType("numeric", precision=12, scale=2)),
        ("numeric", (None, None, None), ColumnType("numeric")),
        ("timestamp with time zone", (None, None, None), ColumnType("timestamptz")),
        ("TIMESTAMP WITHOUT TIME ZONE", (None, None, None), ColumnType("timestamp")),
        ("timestamp(6) with time zone", (None, None, None), ColumnType("timestamptz")),
        ("double precision", (None, 53, None), ColumnType("double")),
        ("jsonb", (None, None, None), ColumnType("jsonb")),
        # Redshift's
        ("TIMESTAMPTZ", (None, None, None), ColumnType("timestamptz")),
        ("SUPER", (None, None, None), ColumnType("super")),
        ("bpchar", (1, None, None), ColumnType("char", 1)),
        # DuckDB's
        ("DECIMAL(12,2)", (None, 12, 2), ColumnType("numeric", precision=12, scale=2)),
        ("FLOAT", (None, 24, 0), ColumnType("real")),
        ("DOUBLE", (None, 53, 0), ColumnType("double")),
        ("TIMESTAMP WITH TIME ZONE", (None, None, None), ColumnType("timestamptz")),
        ("INTEGER", (None, 32, 0), ColumnType("integer")),
    ],
)
def test_spellings_are_normalised(
    spelling: str, info: tuple[int | None, int | None, int | None], expected: ColumnType
) -> None:
    assert normalise(spelling, *info) == expected


def test_without_lengths_every_varchar_and_char_is_one_type() -> None:
    assert normalise("VARCHAR(36)", keeps_lengths=False) == normalise(
        "VARCHAR", keeps_lengths=False
    )
    assert normalise("CHAR(3)", keeps_lengths=False) == ColumnType("varchar")


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        (ColumnType("varchar", 64), "VARCHAR(64)"),
        (ColumnType("varchar"), "VARCHAR"),
        (ColumnType("numeric", precision=12, scale=2), "NUMERIC(12,2)"),
        (ColumnType("timestamptz"), "TIMESTAMPTZ"),
        (ColumnType("double"), "DOUBLE PRECISION"),
        (ColumnType("super"), "SUPER"),
    ],
)
def test_types_print_as_sql_spells_them(kind: ColumnType, shown: str) -> None:
    assert str(kind) == shown


CHANGES = TableChanges(
    "events",
    [
        ColumnChange("referrer", "add", None, "VARCHAR(100)", True, "ALTER ..."),
        ColumnChange("note", "widen", "VARCHAR(20)", "VARCHAR(64)", True, "ALTER ...", False),
        ColumnChange("n", "type", "INTEGER", "BIGINT", False),
        ColumnChange("legacy", "drop", "INTEGER", None, False),
    ],
)


def test_without_evolve_everything_is_refused_and_the_fix_says_both_routes() -> None:
    assert CHANGES.refused(evolve=False) == CHANGES.changes
    error = mismatch("copy events (incremental)", CHANGES, evolve=False)
    assert isinstance(error, SchemaError)
    assert isinstance(error, PipelineError)
    assert error.columns == ["referrer", "note", "n", "legacy"]
    assert "copy(..., evolve=True) adds new columns" in error.fix
    assert "Alembic" in error.fix
    assert str(error).startswith(
        "step 'copy events (incremental)' failed: the table events differs from its class in "
        "column(s) referrer, note, n, legacy: column referrer (VARCHAR(100)) is not in the table"
    )


def test_with_evolve_only_the_others_are_refused() -> None:
    assert [c.column for c in CHANGES.refused(evolve=True)] == ["n", "legacy"]
    assert "evolve=True" not in mismatch("copy", CHANGES, evolve=True).fix
    assert CHANGES.statements(in_transaction=True) == ["ALTER ..."]
    assert CHANGES.statements(in_transaction=False) == ["ALTER ..."]


def test_every_change_reads_as_a_sentence() -> None:
    described = [c.describe() for c in CHANGES.changes]
    assert described == [
        "column referrer (VARCHAR(100)) is not in the table (evolve=True adds it, nullable)",
        "column note is VARCHAR(20) in the table, VARCHAR(64) in the class (evolve=True widens it)",
        "column n is INTEGER in the table, BIGINT in the class",
        "column legacy (INTEGER) is in the table but not in the class",
    ]
    assert isinstance(TableMismatchError, type)
