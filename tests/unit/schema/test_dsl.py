"""The schema DSL: classes become tables, JSONPaths and typed records."""

from __future__ import annotations

import datetime as dt
import decimal
import warnings
from typing import Any

import pytest
import sqlalchemy as sa

import arbalest
from arbalest import (
    BigInt,
    Boolean,
    Char,
    Decimal,
    Integer,
    LoadError,
    Nested,
    Schema,
    SchemaError,
    SchemaWarning,
    String,
    Timestamp,
)
from arbalest.schema.base import SchemaMeta
from tests.fixtures.schemas import LETTERS, every_type


def make_event(base: type[Schema]) -> Any:
    class Event(base):  # type: ignore[misc, valid-type]
        __tablename__ = "events"
        __table_args__ = {"redshift_distkey": "id", "redshift_sortkey": ("created_at",)}

        id = String(36, primary_key=True)
        some_number = Integer(key="someNumber")
        created_at = Timestamp(key="createdAt")
        amount = Decimal(12, 2)

        class child(Nested):
            some_boolean = Boolean(key="someBoolean")

            class depth(Nested):
                level = Integer()

    return Event


def test_columns_follow_the_attribute_path(base: type[Schema]) -> None:
    Event = make_event(base)
    assert Event.__table__.c.keys() == [
        "id",
        "some_number",
        "created_at",
        "amount",
        "child_some_boolean",
        "child_depth_level",
    ]


def test_jsonpaths_are_in_column_order(base: type[Schema]) -> None:
    Event = make_event(base)
    assert Event.__jsonpaths__ == {
        "jsonpaths": [
            "$['id']",
            "$['someNumber']",
            "$['createdAt']",
            "$['amount']",
            "$['child']['someBoolean']",
            "$['child']['depth']['level']",
        ]
    }


def test_class_access_gives_columns_usable_in_expressions(base: type[Schema]) -> None:
    Event = make_event(base)
    assert Event.some_number is Event.__table__.c.some_number
    assert Event.child.some_boolean is Event.__table__.c.child_some_boolean
    assert Event.child.depth.level is Event.__table__.c.child_depth_level
    query = sa.select(Event.id).where(Event.some_number > 3)
    expected = "SELECT events.id FROM events WHERE events.some_number > :some_number_1"
    assert str(query).split() == expected.split()


def test_table_joins_the_base_metadata(base: type[Schema]) -> None:
    Event = make_event(base)
    assert Event.__table__.metadata is base.metadata
    assert "events" in base.metadata.tables
    assert "events" not in arbalest.metadata.tables


def test_default_metadata_is_the_shared_one() -> None:
    class SharedDefault(Schema):
        __tablename__ = "test_shared_default_metadata"
        x = Integer()

    try:
        assert SharedDefault.__table__.metadata is arbalest.metadata
    finally:
        arbalest.metadata.remove(SharedDefault.__table__)


def test_tablename_defaults_to_snake_case(base: type[Schema]) -> None:
    class UserEvent(base):  # type: ignore[misc, valid-type]
        x = Integer()

    class HTTPLog(base):  # type: ignore[misc, valid-type]
        x = Integer()

    assert UserEvent.__table__.name == "user_event"
    assert HTTPLog.__table__.name == "http_log"


def test_from_json_applies_paths_and_conversions(base: type[Schema]) -> None:
    Event = make_event(base)
    event = Event.from_json(
        {
            "id": "a",
            "someNumber": "7",
            "createdAt": "2019-02-11T05:09:12.195Z",
            "amount": 20.259,
            "child": {"someBoolean": "yes", "depth": {"level": 3}},
            "ignored": [1, 2],
        }
    )
    assert event.row() == (
        "a",
        7,
        dt.datetime(2019, 2, 11, 5, 9, 12, 195000),
        decimal.Decimal("20.25"),
        True,
        3,
    )
    assert event.some_number == 7
    assert event.child.some_boolean is True
    assert event.child.depth.level == 3


def test_from_json_accepts_json_text(base: type[Schema]) -> None:
    Event = make_event(base)
    assert Event.from_json('{"id": "x", "child": {"depth": {"level": "4"}}}').row()[-1] == 4
    with pytest.raises(LoadError) as info:
        Event.from_json('{"id": oops}')
    assert info.value.code == 1216


def test_missing_keys_are_null(base: type[Schema]) -> None:
    Event = make_event(base)
    assert Event.from_json({"id": "a"}).row() == ("a", None, None, None, None, None)


def test_from_json_rejects_with_column_value_reason_and_code(base: type[Schema]) -> None:
    Event = make_event(base)
    with pytest.raises(LoadError) as info:
        Event.from_json({"id": "a", "someNumber": "12x"})
    error = info.value
    assert (error.column, error.value, error.code) == ("some_number", "12x", 1207)
    assert "Invalid digit" in error.reason
    assert "some_number" in str(error)
    assert "12x" in str(error)


def test_null_for_a_not_null_column_is_rejected(base: type[Schema]) -> None:
    Event = make_event(base)
    with pytest.raises(LoadError) as info:
        Event.from_json({"someNumber": 1})
    assert (info.value.column, info.value.code) == ("id", 1213)


def test_records_that_are_not_objects_are_rejected(base: type[Schema]) -> None:
    Event = make_event(base)
    with pytest.raises(LoadError) as info:
        Event.from_json("12")
    assert info.value.code == 1216


def test_direct_construction_with_nested_mapping_or_instance(base: type[Schema]) -> None:
    Event = make_event(base)
    one = Event(id="b", child={"some_boolean": True, "depth": {"level": 2}})
    two = Event(id="b", child=Event.child(some_boolean=True, depth=Event.child.depth(level=2)))
    assert one == two
    assert one.row() == ("b", None, None, None, True, 2)
    assert Event(id="c").child.depth.level is None
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        Event(nope=1)
    with pytest.raises(TypeError, match="takes a mapping"):
        Event(child=3)


def test_to_json_round_trips_through_from_json(base: type[Schema]) -> None:
    Event = make_event(base)
    event = Event(
        id="a",
        some_number=-5,
        created_at=dt.datetime(2020, 1, 2, 3, 4, 5, 600000),
        amount=decimal.Decimal("1.50"),
        child={"some_boolean": False, "depth": {"level": 9}},
    )
    doc = event.to_json()
    assert doc == {
        "id": "a",
        "someNumber": -5,
        "createdAt": "2020-01-02T03:04:05.600000",
        "amount": "1.50",
        "child": {"someBoolean": False, "depth": {"level": 9}},
    }
    assert Event.from_json(doc) == event


def test_field_options(base: type[Schema]) -> None:
    class Options(base):  # type: ignore[misc, valid-type]
        renamed = Integer(name="Custom_Name")
        keyed = String(10, key="the key")
        tag = String(path="$['tags'][1]")
        dotted = Integer(key="a.b")
        required = Integer(nullable=False)
        documented = Integer(doc="what it is")
        encoded = String(encode="zstd")

    table = Options.__table__
    assert table.c.keys() == [
        "custom_name",
        "keyed",
        "tag",
        "dotted",
        "required",
        "documented",
        "encoded",
    ]
    assert Options.__jsonpaths__["jsonpaths"] == [
        "$['renamed']",
        "$['the key']",
        "$['tags'][1]",
        "$['a.b']",
        "$['required']",
        "$['documented']",
        "$['encoded']",
    ]
    assert table.c.required.nullable is False
    assert table.c.documented.doc == "what it is"
    assert table.c.encoded.dialect_options["redshift"]["encode"] == "zstd"
    record = Options.from_json(
        {"tags": ["x", "y"], "a.b": 3, "the key": "k", "required": 1, "a": {"b": 9}}
    )
    assert record.row() == (None, "k", "y", 3, 1, None, None)
    with pytest.raises(LoadError) as info:
        Options.from_json({"tags": ["x"], "required": 1})
    assert (info.value.column, info.value.code) == ("tag", 1216)
    assert Options.from_json({"tags": None, "required": 1}).row()[2] is None


def test_primary_keys_are_not_null_and_never_autoincrement(base: type[Schema]) -> None:
    class Keyed(base):  # type: ignore[misc, valid-type]
        id = Integer(primary_key=True)
        other = BigInt(primary_key=True)

    assert [c.name for c in Keyed.__table__.primary_key] == ["id", "other"]
    for column in Keyed.__table__.primary_key:
        assert column.nullable is False
        assert column.autoincrement is False


def test_nested_key_option(base: type[Schema]) -> None:
    class Keyed(base):  # type: ignore[misc, valid-type]
        class meta(Nested):
            __key__ = "Meta-Data"
            source = String()

    assert Keyed.__jsonpaths__["jsonpaths"] == ["$['Meta-Data']['source']"]
    assert Keyed.__table__.c.keys() == ["meta_source"]


def test_a_nested_class_can_be_shared_by_two_schemas(base: type[Schema]) -> None:
    class Address(Nested):
        city = String()

    class Shop(base):  # type: ignore[misc, valid-type]
        address = Address

    class Customer(base):  # type: ignore[misc, valid-type]
        home = Address

    assert Shop.address.city is Shop.__table__.c.address_city
    assert Customer.home.city is Customer.__table__.c.home_city


def test_schema_inheritance_keeps_base_fields_first(base: type[Schema]) -> None:
    class Common(base):  # type: ignore[misc, valid-type]
        __abstract__ = True
        id = String(36)

    class Order(Common):
        total = Decimal(10, 2)

    assert Order.__table__.c.keys() == ["id", "total"]


def test_every_field_type_maps_to_its_sqlalchemy_type(base: type[Schema]) -> None:
    class AllTypes(base, every_type(LETTERS)):  # type: ignore[misc, valid-type]
        pass

    types = {c.name: c.type for c in AllTypes.__table__.c}
    assert isinstance(types["a"], sa.SmallInteger)
    assert isinstance(types["b"], sa.Integer)
    assert not isinstance(types["b"], sa.BigInteger)
    assert isinstance(types["c"], sa.BigInteger)
    assert isinstance(types["d"], sa.Numeric)
    assert (types["d"].precision, types["d"].scale) == (
        10,
        3,
    )
    assert isinstance(types["e"], sa.REAL)
    assert isinstance(types["f"], sa.Double)
    assert isinstance(types["g"], sa.Boolean)
    assert isinstance(types["h"], sa.CHAR)
    assert types["h"].length == 3
    assert isinstance(types["i"], sa.String)
    assert types["i"].length == 20
    assert isinstance(types["j"], sa.Date)
    assert isinstance(types["k"], sa.DateTime)
    assert not types["k"].timezone
    assert isinstance(types["m"], sa.DateTime)
    assert types["m"].timezone
    assert isinstance(types["n"], sa.JSON)


def test_string_defaults_to_256_bytes_and_decimal_to_18_0(base: type[Schema]) -> None:
    class Defaults(base):  # type: ignore[misc, valid-type]
        s = String()
        d = Decimal()
        c = Char()

    assert Defaults.__table__.c.s.type.length == 256
    assert (Defaults.__table__.c.d.type.precision, Defaults.__table__.c.d.type.scale) == (18, 0)
    assert Defaults.__table__.c.c.type.length == 1


# --- errors raised while the class statement runs -----------------------------------------


def test_duplicate_column_names_name_both_fields(base: type[Schema]) -> None:
    with pytest.raises(SchemaError) as info:

        class Clash(base):  # type: ignore[misc, valid-type]
            child_level = Integer()

            class child(Nested):
                level = Integer()

    message = str(info.value)
    assert "'child_level'" in message
    assert "'child.level'" in message


def test_duplicate_column_names_are_case_insensitive(base: type[Schema]) -> None:
    with pytest.raises(SchemaError, match="'abc'"):

        class Clash(base):  # type: ignore[misc, valid-type]
            abc = Integer()
            other = Integer(name="ABC")


def test_long_column_names_are_cut_to_127_bytes_with_a_warning(base: type[Schema]) -> None:
    with pytest.warns(SchemaWarning, match="127 bytes"):

        class Long(base):  # type: ignore[misc, valid-type]
            x = Integer(name="é" * 100)

    (name,) = Long.__table__.c.keys()
    assert len(name.encode()) == 126  # 63 two-byte characters: never half a character
    assert name == "é" * 63


def test_two_names_equal_after_truncation_are_duplicates(base: type[Schema]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SchemaWarning)
        with pytest.raises(SchemaError, match="both make the column"):

            class Long(base):  # type: ignore[misc, valid-type]
                a = Integer(name="x" * 130)
                b = Integer(name="x" * 128)


def test_same_table_name_twice_in_one_metadata(base: type[Schema]) -> None:
    class First(base):  # type: ignore[misc, valid-type]
        __tablename__ = "things"
        x = Integer()

    with pytest.raises(SchemaError, match="already defined"):

        class Second(base):  # type: ignore[misc, valid-type]
            __tablename__ = "things"
            y = Integer()

    class Third(base):  # type: ignore[misc, valid-type]
        __tablename__ = "things"
        __table_args__ = {"extend_existing": True}
        z = Integer()

    assert base.metadata.tables["things"].c.keys() == ["z"]


@pytest.mark.parametrize("name", ["metadata", "from_json", "to_json", "row"])
def test_reserved_attribute_names(base: type[Schema], name: str) -> None:
    with pytest.raises(SchemaError, match=f"key='{name}'"):
        SchemaMeta("Reserved", (base,), {name: Integer(), "__module__": __name__})


def test_a_schema_needs_fields(base: type[Schema]) -> None:
    with pytest.raises(SchemaError, match="no fields"):

        class Empty(base):  # type: ignore[misc, valid-type]
            pass


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Decimal(39, 2), "precision"),
        (lambda: Decimal(5, 6), "scale"),
        (lambda: String(0), "VARCHAR length"),
        (lambda: String(70000), "VARCHAR length"),
        (lambda: Char(0), "CHAR length"),
        (lambda: Integer(key="a", path="$['a']"), "not both"),
        (lambda: Integer(path="a.b"), "must start with"),
        (lambda: Integer(path="$['a'].b"), "mixes"),
        (lambda: Integer(path="$[0]"), "start with a key"),
        (lambda: Integer(path="$['a'][*]"), "not valid at position"),
    ],
)
def test_bad_field_options(base: type[Schema], make: Any, match: str) -> None:
    with pytest.raises(SchemaError, match=match) as info:
        SchemaMeta("Bad", (base,), {"x": make(), "__module__": __name__})
    assert str(info.value).startswith("Bad.x: ")


def test_bad_table_args(base: type[Schema]) -> None:
    with pytest.raises(SchemaError, match="__table_args__"):

        class Bad(base):  # type: ignore[misc, valid-type]
            __table_args__ = "nope"
            x = Integer()
