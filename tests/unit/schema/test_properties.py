"""Property tests of the schema rules (Hypothesis)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import arbalest
from arbalest import Schema, SchemaError
from arbalest.schema.base import SchemaMeta

_names = st.text("abcXYZ_é", min_size=1, max_size=6)


@given(st.lists(st.tuples(_names, st.one_of(st.none(), _names)), min_size=1, max_size=8))
def test_column_names_are_unique_or_the_schema_is_refused(
    fields: list[tuple[str, str | None]],
) -> None:
    class Base(Schema):
        __abstract__ = True
        metadata = sa.MetaData()

    namespace: dict[str, Any] = {"__module__": __name__}
    for index, (key, name) in enumerate(fields):
        namespace[f"f{index}"] = arbalest.Integer(key=key, name=name)
    expected = [(name or f"f{i}").lower() for i, (_, name) in enumerate(fields)]
    try:
        schema: Any = SchemaMeta("Generated", (Base,), namespace)
    except SchemaError:
        assert len(set(expected)) < len(expected)
        return
    columns = schema.__table__.c.keys()
    assert columns == expected
    assert len(set(columns)) == len(columns)
    # one JSONPath per column, in the same order
    assert len(schema.__jsonpaths__["jsonpaths"]) == len(columns)
    for path, (key, _) in zip(schema.__jsonpaths__["jsonpaths"], fields, strict=True):
        assert path == "$['" + key.replace("'", "\\'") + "']"


class Record(Schema):
    __abstract__ = False
    metadata = sa.MetaData()
    __tablename__ = "records"
    i = arbalest.BigInt()
    d = arbalest.Decimal(20, 4)
    f = arbalest.Double()
    r = arbalest.Real()
    b = arbalest.Boolean()
    s = arbalest.String(40)
    c = arbalest.Char(3)
    day = arbalest.Date()
    ts = arbalest.Timestamp()
    tz = arbalest.TimestampTZ()
    j = arbalest.Super()

    class inner(arbalest.Nested):
        n = arbalest.SmallInt(key="N")


_no_nul = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=3)
_records = st.builds(
    Record,
    i=st.none() | st.integers(-(2**63), 2**63 - 1),
    d=st.none() | st.decimals(-(10**15) + 1, 10**15 - 1, places=4, allow_nan=False),
    f=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    r=st.none() | st.floats(width=32, allow_nan=False, allow_infinity=False),
    b=st.none() | st.booleans(),
    s=st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=10),
    c=st.none() | st.text("abc xyz", min_size=3, max_size=3),
    day=st.none() | st.dates(),
    ts=st.none() | st.datetimes(),
    tz=st.none() | st.datetimes(timezones=st.just(dt.UTC)),
    j=st.none() | st.dictionaries(_no_nul, st.integers() | _no_nul, max_size=3),
    inner=st.builds(dict, n=st.none() | st.integers(-(2**15), 2**15 - 1)),
)


@given(_records)
def test_from_json_of_to_json_gives_the_record_back(record: Record) -> None:
    assert Record.from_json(record.to_json()) == record


@given(_records)
def test_row_has_one_value_per_column(record: Record) -> None:
    row = record.row()
    assert len(row) == len(Record.__table__.c)
    assert row[-1] == record.inner.n
    assert all(not isinstance(v, decimal.Decimal) or v.as_tuple().exponent == -4 for v in row)
