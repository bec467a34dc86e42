"""The original Arbalest's functional form: JsonObject and Property."""

from __future__ import annotations

import decimal
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import JsonObject, Property, Schema, SchemaError
from arbalest.schema.functional import field_for_type


def seed_schema() -> Any:
    return JsonObject(
        "events",
        Property("id", "VARCHAR(36)"),
        Property("someNumber", "INTEGER", "custom_column_name"),
        Property("child", Property("someBoolean", "BOOLEAN")),
    )


def test_seed_example_columns_and_paths() -> None:
    schema = seed_schema()
    assert issubclass(schema, Schema)
    assert schema.__table__.name == "events"
    assert schema.__table__.c.keys() == ["id", "custom_column_name", "child_someboolean"]
    assert schema.__jsonpaths__ == {
        "jsonpaths": ["$['id']", "$['someNumber']", "$['child']['someBoolean']"]
    }


def test_each_json_object_has_its_own_metadata_unless_given() -> None:
    assert seed_schema().metadata is not seed_schema().metadata
    shared = sa.MetaData()
    one = JsonObject("a", Property("x", "INT"), metadata=shared)
    two = JsonObject("b", Property("y", "INT"), metadata=shared)
    assert one.metadata is two.metadata is shared
    assert set(shared.tables) == {"a", "b"}


def test_dotted_names_stay_one_key() -> None:
    schema = JsonObject("t", Property("a.b", "INTEGER"))
    assert schema.__jsonpaths__ == {"jsonpaths": ["$['a.b']"]}
    assert schema.__table__.c.keys() == ["a.b"]
    assert schema.from_json({"a.b": 5, "a": {"b": 6}}).row() == (5,)


def test_nested_custom_column_name_and_deep_nesting() -> None:
    schema = JsonObject(
        "t",
        Property("a", Property("b", Property("c", "BIGINT"))),
        Property("x", Property("y", "TEXT", "why")),
    )
    assert schema.__table__.c.keys() == ["a_b_c", "why"]
    assert schema.__jsonpaths__["jsonpaths"] == ["$['a']['b']['c']", "$['x']['y']"]


def test_property_adds_a_column_fluently() -> None:
    schema = seed_schema()
    same = schema.property("createdAt", "TIMESTAMP").property("total", "DECIMAL(12,2)", "amount")
    assert same is schema
    assert schema.__table__.c.keys() == [
        "id",
        "custom_column_name",
        "child_someboolean",
        "createdat",
        "amount",
    ]
    assert schema.__jsonpaths__["jsonpaths"][-2:] == ["$['createdAt']", "$['total']"]
    assert list(schema.metadata.tables) == ["events"]
    assert schema.from_json({"id": "x", "total": "1.239"}).row()[-1] == decimal.Decimal("1.23")


def test_property_takes_column_by_name() -> None:
    schema = JsonObject("t", Property("id", "INT"))
    schema.property("total", "DECIMAL(12,2)", column="amount")
    schema.property("createdAt", type="TIMESTAMP", column="created")
    schema.property("x", "INT", "positional")  # the seed's form
    schema.property("y", "INT", column_name="old_keyword")  # as earlier docs said
    assert schema.__table__.c.keys() == ["id", "amount", "created", "positional", "old_keyword"]
    with pytest.raises(SchemaError, match="give column= or column_name=, not both"):
        schema.property("z", "INT", column="a", column_name="b")


def test_unsupported_type_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="unsupported column type 'BLOB'"):
        Property("id", "BLOB")
    with pytest.raises(SchemaError, match="unsupported"):
        JsonObject("t", Property("a", Property("b", "GEOMETRY")))


def test_duplicate_columns_are_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="duplicate column of name 'id'"):
        JsonObject("t", Property("id", "INT"), Property("ID", "INT"))


@pytest.mark.parametrize(
    ("type_string", "sql"),
    [
        ("SMALLINT", "SMALLINT"),
        ("int2", "SMALLINT"),
        ("INTEGER", "INTEGER"),
        ("INT4", "INTEGER"),
        ("int", "INTEGER"),
        ("BIGINT", "BIGINT"),
        ("INT8", "BIGINT"),
        ("DECIMAL(12,2)", "NUMERIC(12, 2)"),
        ("NUMERIC( 5 )", "NUMERIC(5, 0)"),
        ("DECIMAL", "NUMERIC(18, 0)"),
        ("REAL", "REAL"),
        ("FLOAT4", "REAL"),
        ("DOUBLE PRECISION", "DOUBLE PRECISION"),
        ("float8", "DOUBLE PRECISION"),
        ("FLOAT", "DOUBLE PRECISION"),
        ("BOOLEAN", "BOOLEAN"),
        ("BOOL", "BOOLEAN"),
        ("CHAR(2)", "CHAR(2)"),
        ("CHARACTER", "CHAR(1)"),
        ("NCHAR(4)", "CHAR(4)"),
        ("BPCHAR(3)", "CHAR(3)"),
        ("VARCHAR(36)", "VARCHAR(36)"),
        ("VARCHAR", "VARCHAR(256)"),
        ("VARCHAR(MAX)", "VARCHAR(65535)"),
        ("CHARACTER VARYING(9)", "VARCHAR(9)"),
        ("NVARCHAR(5)", "VARCHAR(5)"),
        ("TEXT", "VARCHAR(256)"),
        ("DATE", "DATE"),
        ("TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE"),
        ("timestamp without time zone", "TIMESTAMP WITHOUT TIME ZONE"),
        ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"),
        ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE"),
        ("SUPER", "JSONB"),
    ],
)
def test_type_strings(type_string: str, sql: str) -> None:
    from sqlalchemy.dialects import postgresql

    field = field_for_type(type_string)
    assert field.sa_type().compile(dialect=postgresql.dialect()) == sql


@pytest.mark.parametrize(
    "bad", ["BLOB", "VARCHAR(1,2)", "INTEGER(4)", "DECIMAL(40,2)", "", "CHAR(MAX)"]
)
def test_bad_type_strings(bad: str) -> None:
    with pytest.raises(SchemaError):
        field_for_type(bad)
