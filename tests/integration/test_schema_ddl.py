"""Schemas' DDL runs on the real PostgreSQL server and on DuckDB; Alembic sees schemas."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.migration import MigrationContext

import arbalest
from arbalest import (
    Decimal,
    Integer,
    Nested,
    Schema,
    String,
)
from tests.fixtures.schemas import LETTERS, every_type


def all_types(base: type[Schema]) -> type[Schema]:
    every = every_type(LETTERS, id=String(36, primary_key=True), without=("i",))

    class AllTypes(base, every):  # type: ignore[misc, valid-type]
        __tablename__ = "all_types"
        __table_args__ = {"redshift_distkey": "id"}

        class child(Nested):
            class depth(Nested):
                level = Integer(nullable=False)

    return AllTypes


RECORD: dict[str, Any] = {
    "id": "row-1",
    "a": 7,
    "b": "-8",
    "c": 9007199254740993,
    "d": "12.3456",
    "e": 0.5,
    "f": "2.25e1",
    "g": "yes",
    "h": "ab",
    "j": "2019-02-11",
    "k": "2019-02-11T05:09:12.195Z",
    "m": "1997-12-17 07:37:16-08",
    "n": {"tags": ["x", 1, None]},
    "child": {"depth": {"level": 3}},
}
EXPECTED = (
    "row-1",
    7,
    -8,
    9007199254740993,
    decimal.Decimal("12.345"),
    0.5,
    22.5,
    True,
    "ab ",
    dt.date(2019, 2, 11),
    dt.datetime(2019, 2, 11, 5, 9, 12, 195000),
    dt.datetime(1997, 12, 17, 15, 37, 16, tzinfo=dt.UTC),
    {"tags": ["x", 1, None]},
    3,
)


def roundtrip(engine: sa.Engine, schema: type[Schema]) -> tuple[object, ...]:
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.__table__),
            [dict(zip(schema.__table__.c.keys(), schema.from_json(RECORD).row(), strict=True))],
        )
        (row,) = conn.execute(sa.select(schema.__table__)).all()
    values = list(row)
    tz = values[11]
    values[11] = tz.astimezone(dt.UTC)
    if isinstance(values[12], str):  # DuckDB returns JSON as text
        values[12] = json.loads(values[12])
    return tuple(values)


@pytest.mark.postgres
def test_ddl_runs_on_postgresql(postgres_engine: sa.Engine, base: type[Schema]) -> None:
    assert roundtrip(postgres_engine, all_types(base)) == EXPECTED
    columns = {c["name"]: c for c in sa.inspect(postgres_engine).get_columns("all_types")}
    assert str(columns["n"]["type"]) == "JSONB"
    timestamp_tz: Any = columns["m"]["type"]
    assert timestamp_tz.timezone is True
    assert columns["child_depth_level"]["nullable"] is False


@pytest.mark.duckdb
def test_ddl_runs_on_duckdb(duckdb_engine: sa.Engine, base: type[Schema]) -> None:
    assert roundtrip(duckdb_engine, all_types(base)) == EXPECTED


@pytest.fixture
def shared_metadata_schemas() -> Iterator[list[type[Schema]]]:
    """Two schemas in the shared ``arbalest.metadata``, removed afterwards."""

    class AlembicEvent(Schema):
        __tablename__ = "alembic_events"
        id = String(36, primary_key=True)
        amount = Decimal(12, 2)

    class AlembicUser(Schema):
        __tablename__ = "alembic_users"
        name = String(100)

        class address(Nested):
            city = String(50)

    yield [AlembicEvent, AlembicUser]
    for schema in (AlembicEvent, AlembicUser):
        arbalest.metadata.remove(schema.__table__)


@pytest.mark.postgres
def test_alembic_autogenerate_proposes_the_schema_tables(
    postgres_engine: sa.Engine, shared_metadata_schemas: list[type[Schema]]
) -> None:
    # other tests' schemas may share arbalest.metadata too: look at this test's tables only
    opts = {"include_object": lambda o, name, kind, *_: kind != "table" or "alembic_" in name}
    with postgres_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts=opts)
        diffs = compare_metadata(context, arbalest.metadata)
        added = {diff[1].name for diff in diffs if diff[0] == "add_table"}
        assert added == {"alembic_events", "alembic_users"}
        upgrade = produce_migrations(context, arbalest.metadata).upgrade_ops
        assert upgrade is not None
        code = render_python_code(upgrade)
    assert "op.create_table('alembic_users'" in code
    assert "sa.Column('address_city', sa.String(length=50)" in code
    assert "sa.Column('amount', sa.Numeric(precision=12, scale=2)" in code
    # once created, autogenerate proposes nothing more
    arbalest.metadata.create_all(
        postgres_engine, tables=[s.__table__ for s in shared_metadata_schemas]
    )
    with postgres_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, arbalest.metadata) == []
