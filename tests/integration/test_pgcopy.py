"""PostgreSQL's binary COPY rows from the C encoder (``loading.pgcopy``): byte for byte what
pgpq writes for the same Arrow columns (nulls, slices, every kind it takes, numerics of every
precision and scale), and the same rows in PostgreSQL through the loader's own write."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from arbalest.backends.postgres import PostgresBackend, _pgpq_copy
from arbalest.loading import fastlane, pgcopy
from tests.fixtures.budgets import budget

needs_extension = pytest.mark.skipif(not fastlane.AVAILABLE, reason="C extension not built")

#: What PostgreSQL's text holds: any character but NUL.
TEXT = st.characters(codec="utf-8", exclude_characters="\x00")

#: Per kind: its Arrow type, its PostgreSQL column type, and its values.
KINDS: dict[str, tuple[pa.DataType, str, st.SearchStrategy[Any]]] = {
    "int16": (pa.int16(), "smallint", st.integers(-(2**15), 2**15 - 1)),
    "int32": (pa.int32(), "integer", st.integers(-(2**31), 2**31 - 1)),
    "int64": (pa.int64(), "bigint", st.integers(-(2**63), 2**63 - 1)),
    "float32": (pa.float32(), "real", st.floats(width=32)),
    "float64": (pa.float64(), "double precision", st.floats()),
    "bool": (pa.bool_(), "boolean", st.booleans()),
    "text": (pa.string(), "text", st.text(TEXT)),
    "large_text": (pa.large_string(), "varchar", st.text(TEXT)),
    "numeric": (
        pa.decimal128(12, 2),
        "numeric(12,2)",
        st.decimals(-(10**10) + 1, 10**10 - 1, places=2, allow_nan=False),
    ),
    "wide_numeric": (
        pa.decimal128(38, 9),
        "numeric(38,9)",
        st.integers(-(10**38) + 1, 10**38 - 1).map(lambda v: Decimal(v).scaleb(-9)),
    ),
    "timestamp": (
        pa.timestamp("us"),
        "timestamp",
        st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)),
    ),
    "timestamptz": (
        pa.timestamp("us", tz="UTC"),
        "timestamptz",
        st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31), timezones=st.just(dt.UTC)),
    ),
    "date": (pa.date32(), "date", st.dates()),
}


@pytest.fixture(autouse=True)
def _exact_decimals() -> Iterator[None]:
    # 38-digit decimals, built exactly
    with decimal.localcontext() as context:
        context.prec = 80
        yield


@st.composite
def tables(draw: st.DrawFn, names: list[str] | None = None) -> pa.Table:
    """A table of some of the kinds (with nulls), sliced so that its arrays start past 0."""
    chosen = names or draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, unique=True))
    rows = draw(st.integers(0, 20))
    skip = draw(st.integers(0, 9))
    columns = {}
    for name in chosen:
        kind, _, values = KINDS[name]
        items = draw(st.lists(st.none() | values, min_size=rows + skip, max_size=rows + skip))
        columns[name] = pa.array(items, kind)
    return pa.table(columns).slice(skip)


def encoded(table: pa.Table, jsonb: set[str] = set()) -> bytes:  # noqa: B006 (not mutated)
    plan = pgcopy.plan_for(table.schema, jsonb)
    assert plan is not None
    batches = table.to_batches(max_chunksize=7)  # several batches, of odd sizes
    return pgcopy.HEADER + b"".join(pgcopy.rows(b, plan) for b in batches) + pgcopy.TRAILER


@needs_extension
@budget(150)
@given(tables())
def test_the_c_encoder_writes_what_pgpq_writes(table: pa.Table) -> None:
    assert encoded(table) == b"".join(_pgpq_copy(table, set()))


@needs_extension
def test_numerics_of_every_precision_and_scale_are_pgpqs() -> None:
    # unscaled values: every one fits 38 digits, at any scale
    unscaled: list[int | None] = [0, 1, -1, 10**37, -(10**38) + 1, 10**19 + 7, None]
    unscaled += [12345678901234567890123456789, 2**64 - 1, 2**64, -(2**63)]
    for scale in range(39):
        scaled = [None if v is None else Decimal(v).scaleb(-scale) for v in unscaled]
        table = pa.table({"n": pa.array(scaled, pa.decimal128(38, scale))})
        assert encoded(table) == b"".join(_pgpq_copy(table, set())), scale


@needs_extension
def test_jsonb_text_carries_its_version_byte() -> None:
    table = pa.table({"j": pa.array(['{"a": 1}', None, "[]"]), "t": pa.array(["x", "y", None])})
    assert encoded(table, {"j"}) == b"".join(_pgpq_copy(table, {"j"}))


def test_kinds_it_does_not_know_go_to_pgpq(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in (pa.time64("us"), pa.timestamp("ms"), pa.string_view(), pa.decimal256(40, 2)):
        assert pgcopy.plan_for(pa.schema([("x", kind)])) is None
    known = pa.schema([("x", pa.int32())])
    assert (pgcopy.plan_for(known) is not None) == fastlane.AVAILABLE
    monkeypatch.setenv("ARBALEST_FAST_LANE", "0")
    assert pgcopy.plan_for(known) is None


@needs_extension
def test_short_buffers_are_an_error_not_a_read_past_their_end() -> None:
    from arbalest.loading import _fastlane

    with pytest.raises(ValueError, match="too short"):
        _fastlane.copy_rows(3, [(2, 0, 0, None, b"\x00" * 8, None)])
    with pytest.raises(ValueError, match="too short"):
        _fastlane.copy_rows(2, [(7, 0, 0, None, b"ab", b"\x00\x00\x00\x00\x05\x00\x00\x00")])


@pytest.fixture(scope="module")
def written(postgres_module_url: str) -> Iterator[Any]:
    """Each encoder's rows of a table through the loader's write, read back."""
    engine = sa.create_engine(postgres_module_url)

    def write(table: pa.Table, jsonb: set[str], *, c_encoder: bool) -> list[tuple[Any, ...]]:
        names = table.column_names
        types = {name: "jsonb" if name in jsonb else KINDS[name][1] for name in names}
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS copied")
            columns = ", ".join(f'"{name}" {kind}' for name, kind in types.items())
            conn.exec_driver_sql(f"CREATE TABLE copied (n serial, {columns})")
            target = sa.Table("copied", sa.MetaData(), autoload_with=conn)
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("ARBALEST_FAST_LANE", "1" if c_encoder else "0")
                stored = PostgresBackend(engine).write(conn, target, names, table)
            assert stored == table.num_rows
            quoted = ", ".join(f'"{name}"' for name in names)
            rows = conn.exec_driver_sql(f"SELECT {quoted} FROM copied ORDER BY n")
            return [tuple(row) for row in rows]

    yield write
    engine.dispose()


@needs_extension
@pytest.mark.integration
@budget(40)
@given(table=tables())
def test_both_encoders_store_the_same_rows(written: Any, table: pa.Table) -> None:
    # NaN equals nothing, itself included: compared as text
    def plain(rows: list[tuple[Any, ...]]) -> list[tuple[str, ...]]:
        return [tuple(repr(v) for v in row) for row in rows]

    mine = written(table, set(), c_encoder=True)
    assert plain(mine) == plain(written(table, set(), c_encoder=False))
    assert len(mine) == table.num_rows


@needs_extension
@pytest.mark.integration
def test_json_arrives_as_jsonb(written: Any) -> None:
    table = pa.table({"doc": pa.array(['{"a": [1, "x"]}', None, '"s"'])})
    rows = written(table, {"doc"}, c_encoder=True)
    assert rows == [({"a": [1, "x"]},), (None,), ("s",)]
    assert json.dumps(rows[0][0]) == '{"a": [1, "x"]}'
