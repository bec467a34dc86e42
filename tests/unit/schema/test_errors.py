"""Schema mistakes are ``SchemaError``s naming the class, the field and the argument.

A field keeps what is wrong with its arguments; the class statement that holds it raises
(``Event.count: String() argument length='forty': ...``), with the file and line of the
field's own declaration; a field used outside a schema raises when its rule is asked for.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import arbalest.schema
from arbalest import (
    Char,
    Decimal,
    Integer,
    JsonObject,
    Nested,
    Property,
    Schema,
    SchemaError,
    String,
)
from arbalest.schema.base import SchemaMeta
from tests.fixtures import budgets

#: The fields as untyped code calls them (mypy itself refuses most of these mistakes).
loose: Any = arbalest.schema


def budget(examples: int) -> settings:
    """``examples`` examples, no deadline, derandomised in CI (every health check on)."""
    return budgets.budget(examples, suppress=())


def define(base: type[Schema], **fields: Any) -> Any:
    return SchemaMeta("Event", (base,), {**fields, "__module__": __name__})


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda: loose.String("forty"),
            "Event.x: String() argument length='forty': must be a whole",
        ),
        (lambda: String(True), "Event.x: String() argument length=True: must be a whole"),
        (lambda: Decimal(40, 2), "Event.x: Decimal() argument precision=40: DECIMAL precision"),
        (lambda: Decimal(5, 9), "Event.x: Decimal() argument scale=9: DECIMAL scale is 0 to"),
        (lambda: loose.Decimal("5"), "Event.x: Decimal() argument precision='5': must be a whole"),
        (lambda: Char(-1), "Event.x: Char() argument length=-1: CHAR length is 1 to 4096"),
        (
            lambda: loose.String(36, primary_kye=True),
            "Event.x: String() got an unexpected keyword argument 'primary_kye'; "
            "did you mean primary_key=?",
        ),
        (
            lambda: loose.Integer(nulable=False),
            "Event.x: Integer() got an unexpected keyword argument 'nulable'; "
            "did you mean nullable=?",
        ),
        (
            lambda: loose.Decimal(12, 2, scael=3),
            "Event.x: Decimal() got an unexpected keyword argument 'scael'; did you mean scale=?",
        ),
        (
            lambda: loose.Integer(colour="red"),
            "Event.x: Integer() got an unexpected keyword argument 'colour'; "
            "it takes key, name, path, nullable, primary_key, doc, encode",
        ),
        (
            lambda: loose.String(nullable="no"),
            "Event.x: String() argument nullable='no': must be True",
        ),
        (
            lambda: loose.Integer(primary_key=1),
            "Event.x: Integer() argument primary_key=1: must be True",
        ),
        (lambda: loose.Integer(key=3), "Event.x: Integer() argument key=3: must be a string"),
        (lambda: Integer(path="$[x"), "Event.x: Integer() argument path='$[x': JSONPath '$[x'"),
        (lambda: Integer(key="a", path="$['a']"), "Event.x: Integer(): give key= or path="),
    ],
)
def test_a_mistake_names_the_class_the_field_and_the_argument(
    base: type[Schema], make: Any, expected: str
) -> None:
    field = make()  # nothing raised yet: the field does not know its class nor its name
    with pytest.raises(SchemaError) as info:
        define(base, x=field)
    assert str(info.value).startswith(expected)
    assert isinstance(info.value, TypeError)  # as Python's own error for a bad argument is


def test_the_error_points_at_the_fields_own_line(base: type[Schema]) -> None:
    with pytest.raises(SchemaError) as info:

        class Event(base):  # type: ignore[misc, valid-type]
            id = String(36, primary_key=True)

            class child(Nested):
                level = Integer(primary_kye=True)  # type: ignore[call-arg]  # HERE

    source = Path(__file__).read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if text.endswith("  # HERE"))
    assert ".<locals>.Event.child.level: Integer() got an unexpected keyword" in str(info.value)
    assert (info.value.filename, info.value.lineno) == (__file__, line)
    again = pickle.loads(pickle.dumps(info.value))  # workers send errors between processes
    assert (again.filename, again.lineno, str(again)) == (__file__, line, str(info.value))


def test_the_first_mistake_of_several_is_raised(base: type[Schema]) -> None:
    with pytest.raises(SchemaError, match=r"^Event\.a: .*'forty'"):
        define(base, a=String("forty"), b=Char(-1))  # type: ignore[arg-type]


def test_a_mistake_in_an_abstract_base_is_raised_by_the_first_schema(base: type[Schema]) -> None:
    class Common(base):  # type: ignore[misc, valid-type]
        __abstract__ = True
        seen = String(-5)

    with pytest.raises(SchemaError, match=r"<locals>\.Event\.seen: String\(\) argument length=-5"):

        class Event(Common):
            id = Integer()


def test_a_field_outside_a_schema_raises_when_used() -> None:
    field = String("forty")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match=r"^String\(\) argument length='forty'"):
        field.check()
    with pytest.raises(SchemaError, match=r"^String\(\) argument length='forty'"):
        _ = field.rule
    assert field.problems == [
        "String() argument length='forty': must be a whole number of bytes, 1 to 65535"
    ]
    String(36, primary_key=True).check()  # a good field: nothing to say


def test_a_bad_type_string_names_the_property() -> None:
    with pytest.raises(SchemaError) as info:
        JsonObject("t", Property("total", "DECIMAL(40,2)"))
    assert str(info.value).startswith(
        "Property 'total': column type 'DECIMAL(40,2)': Decimal() argument precision=40: "
    )


@budget(200)
@given(
    length=st.one_of(
        st.integers(min_value=-10, max_value=70000),
        st.booleans(),
        st.floats(allow_nan=False),
        st.text(max_size=5),
        st.none(),
    )
)
def test_any_length_builds_the_column_or_names_the_argument(length: Any) -> None:
    class Base(Schema):
        __abstract__ = True
        metadata = sa.MetaData()

    good = isinstance(length, int) and not isinstance(length, bool) and 1 <= length <= 65535
    namespace = {"s": String(length), "__module__": __name__}
    if good:
        schema: Any = SchemaMeta("Event", (Base,), namespace)
        assert schema.__table__.c.s.type.length == length
    else:
        with pytest.raises(SchemaError) as info:
            SchemaMeta("Event", (Base,), namespace)
        assert str(info.value).startswith(f"Event.s: String() argument length={length!r}: ")
