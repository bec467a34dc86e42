"""The DDL of schemas, compiled for Redshift, PostgreSQL and DuckDB."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable
from sqlalchemy_redshift.dialect import RedshiftDialect_psycopg2

from arbalest import (
    Integer,
    Schema,
    SmallInt,
    String,
    Timestamp,
)
from tests.fixtures.schemas import LETTERS, every_type

DIALECTS = {
    "redshift": RedshiftDialect_psycopg2(),
    "postgresql": postgresql.dialect(),
    "duckdb": DuckDBDialect(),
}

EXPECTED_TYPES = {
    #            redshift                    postgresql                    duckdb
    "a": ("SMALLINT", "SMALLINT", "SMALLINT"),
    "b": ("INTEGER", "INTEGER", "INTEGER"),
    "c": ("BIGINT", "BIGINT", "BIGINT"),
    "d": ("NUMERIC(10, 3)", "NUMERIC(10, 3)", "NUMERIC(10, 3)"),
    "e": ("REAL", "REAL", "REAL"),
    "f": ("DOUBLE PRECISION", "DOUBLE PRECISION", "DOUBLE PRECISION"),
    "g": ("BOOLEAN", "BOOLEAN", "BOOLEAN"),
    "h": ("CHAR(3)", "CHAR(3)", "CHAR(3)"),
    "i": ("VARCHAR(20)", "VARCHAR(20)", "VARCHAR(20)"),
    "j": ("DATE", "DATE", "DATE"),
    "k": (
        "TIMESTAMP WITHOUT TIME ZONE",
        "TIMESTAMP WITHOUT TIME ZONE",
        "TIMESTAMP WITHOUT TIME ZONE",
    ),
    "m": ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE"),
    "n": ("SUPER", "JSONB", "JSON"),
}


@pytest.fixture
def all_types(base: type[Schema]) -> type[Schema]:
    class AllTypes(base, every_type(LETTERS)):  # type: ignore[misc, valid-type]
        __tablename__ = "all_types"
        a = SmallInt(primary_key=True)  # first, where every_type puts it

    return AllTypes


def ddl(schema: type[Schema], dialect: str) -> str:
    return str(CreateTable(schema.__table__).compile(dialect=DIALECTS[dialect]))


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_every_type_renders_for_each_dialect(all_types: type[Schema], dialect: str) -> None:
    text = ddl(all_types, dialect)
    index = list(DIALECTS).index(dialect)
    for column, types in EXPECTED_TYPES.items():
        assert f"\t{column} {types[index]}" in text, (column, text)
    assert "SERIAL" not in text
    assert "IDENTITY" not in text
    assert "a SMALLINT NOT NULL" in text


def test_redshift_table_options(base: type[Schema]) -> None:
    class Sorted(base):  # type: ignore[misc, valid-type]
        __tablename__ = "sorted_events"
        __table_args__ = {
            "redshift_diststyle": "KEY",
            "redshift_distkey": "id",
            "redshift_sortkey": ("created_at", "id"),
        }
        id = String(36)
        created_at = Timestamp(encode="az64")
        note = String(100, encode="zstd")

    text = ddl(Sorted, "redshift")
    assert "DISTSTYLE KEY" in text
    assert "DISTKEY (id)" in text
    assert "SORTKEY (created_at, id)" in text
    assert "created_at TIMESTAMP WITHOUT TIME ZONE ENCODE az64" in text
    assert "note VARCHAR(100) ENCODE zstd" in text
    # the same table renders for the other warehouses without the Redshift options
    for dialect in ("postgresql", "duckdb"):
        assert "DISTKEY" not in ddl(Sorted, dialect)
        assert "ENCODE" not in ddl(Sorted, dialect)


def test_interleaved_sortkey(base: type[Schema]) -> None:
    class Interleaved(base):  # type: ignore[misc, valid-type]
        __table_args__ = {"redshift_interleaved_sortkey": ("a", "b")}
        a = Integer()
        b = Integer()

    assert "INTERLEAVED SORTKEY (a, b)" in ddl(Interleaved, "redshift")


def test_reserved_words_and_odd_names_are_quoted(base: type[Schema]) -> None:
    class Odd(base):  # type: ignore[misc, valid-type]
        __tablename__ = "select"
        user = Integer()
        quoted = Integer(name='we"ird name')

    for dialect in DIALECTS:
        text = ddl(Odd, dialect)
        assert 'CREATE TABLE "select"' in text
        assert '"user" INTEGER' in text
        assert '"we""ird name" INTEGER' in text


def test_create_all_compiles_every_schema_of_a_metadata(base: type[Schema]) -> None:
    class One(base):  # type: ignore[misc, valid-type]
        x = Integer()

    class Two(base):  # type: ignore[misc, valid-type]
        y = String(3)

    engine = sa.create_mock_engine("postgresql://", executor=lambda sql, *a, **k: seen.append(sql))
    seen: list[Any] = []
    base.metadata.create_all(engine, checkfirst=False)
    assert {s.element.name for s in seen} == {"one", "two"}
