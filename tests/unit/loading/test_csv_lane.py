"""The CSV lane: rows converted in Arrow equal the query's for the same records, and a chunk
with any value the lane cannot prove plain is left to the query (which rejects what it must).
Differential: the same object read with the lane and without it (chunk files and the query).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbalest import (
    BigInt,
    Boolean,
    Date,
    Decimal,
    Double,
    Integer,
    Real,
    SmallInt,
    String,
    Timestamp,
    TimestampTZ,
    convert,
)
from arbalest.loading.tabular import TableChunk, TabularTransform
from arbalest.loading.transform import connect_private
from arbalest.schema._build import ColumnSpec
from tests.fixtures.feeds import object_chunks
from tests.fixtures.schemas import fresh_base

CI: Final = bool(os.environ.get("CI"))


class Wide(fresh_base()):  # type: ignore[misc]
    __tablename__ = "wide"
    id = String(8, nullable=False)
    small = SmallInt()
    number = BigInt()
    real = Real()
    amount = Decimal(12, 2)
    score = Double()
    flag = Boolean()
    day = Date()
    at = Timestamp()
    zoned = TimestampTZ()
    missing = Integer()  # no such column in the objects: NULL


HEADER: Final = "id,small,number,real,amount,score,flag,day,at,zoned"
PLAIN: Final = [
    "a,1,1099511627776,1.5,1.50,0.1,true,2024-01-02,2024-01-02T03:04:05.006Z,2024-01-02 03:04",
    '"q,""x""",-3,\\N,-0.25,-99.90,1e300,F,0001-01-01,0001-01-01T00:00:00,9999-12-31T23:59:59.999999Z',
    "\\N,,,,,,,,,",
    "é,0,-9,3.25e-3,0.00,+2,YES,\\N,\\N,\\N",
]


def _chunks(tmp_path: Path, text: str, *, lane: bool) -> list[TableChunk]:
    """The object's chunks, read as the feed reads them (with the lane or without)."""
    folder = tmp_path / ("lane" if lane else "query")
    folder.mkdir(exist_ok=True)
    (folder / "o.csv").write_text(text, encoding="utf-8")
    return object_chunks(folder, "o.csv", Wide.__fields__, fmt="csv", lane=lane)


def _convert(chunks: list[TableChunk]) -> tuple[Any, ...]:
    """Whether the lane took every chunk, the good rows (by line), the rows per chunk, the
    filled counts and the rejects."""
    specs: list[ColumnSpec] = list(Wide.__fields__)
    con = connect_private(threads=1)
    transform = TabularTransform(specs, convert.ConvertOptions(), con)
    try:
        batch = transform.convert(chunks)
        transform.finish(batch, {})
        fast = 0 if batch.fast is None else batch.fast.num_rows
        taken = fast > 0 and fast == sum(batch.rows.values())
        transform.export(batch, Path("unused"), "arrow", with_position=True)
        rows = [] if batch.table is None else batch.table.to_pylist()
        rejects = [(r.line, r.column, r.code, r.value) for r in batch.rejects]
        return taken, sorted(rows, key=lambda r: r["line"]), batch.rows, batch.filled, rejects
    finally:
        transform.close()
        con.close()
        for chunk in chunks:
            chunk.discard()


def _both(tmp_path: Path, text: str) -> tuple[tuple[Any, ...], tuple[Any, ...], bool]:
    lane = _convert(_chunks(tmp_path, text, lane=True))
    query = _convert(_chunks(tmp_path, text, lane=False))
    return lane[1:], query[1:], lane[0]


def test_plain_values_take_the_lane_and_give_the_querys_rows(tmp_path: Path) -> None:
    lane, query, taken = _both(tmp_path, HEADER + "\n" + "\n".join(PLAIN[:2] + PLAIN[3:]) + "\n")
    assert taken
    assert lane == query
    rows = lane[0]
    assert [r["line"] for r in rows] == [2, 3, 4]
    assert rows[0]["v5"] == decimal.Decimal("1.50")
    assert rows[0]["v9"] == dt.datetime(2024, 1, 2, 3, 4, 5, 6000)
    assert rows[1]["v1"] == 'q,"x"'
    assert rows[1]["v10"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
    assert rows[2]["v4"] == pytest.approx(0.00325)
    assert (rows[2]["v7"], rows[1]["v7"]) == (True, False)


@pytest.mark.parametrize(
    "line",
    [
        "a,+5,,,,,,,,",  # an integer not in its own text: the query's grammar
        "a,007,,,,,,,,",
        "a,0x1F,,,,,,,,",  # Arrow reads hex; the rule does not
        "a,40000,,,,,,,,",  # out of SMALLINT's range
        "a,,,,1.5,,,,,",  # fewer digits than the scale
        "a,,,,1.234,,,,,",  # truncated by the rule
        "a,,,,-0.00,,,,,",
        "a,,,,1e2,,,,,",
        "a,,,,,nan,,,,",
        "a,,,,,1e400,,,,",
        "a,,,1e39,,,,,,",  # beyond REAL
        "a,,,,,,maybe,,,",
        "a,,,,,,,2024-02-30,,",
        "a,,,,,,,2024-01-02T00:00,,",  # a date with a time
        "a,,,,,,,,2024-01-02T03,",  # Arrow reads an hour alone; the rule does not
        "a,,,,,,,,0000-01-01T00:00,",
        "a,,,,,,,,2024-01-02T03:04:05.1234567Z,",
        "a,,,,,,,,2024-01-02T03:04:05+02:00,",
        "a,,,,,,,,2024-01-02ZZ,",
        "a, 1,,,,,,,,",  # a blank before a number
        "a,,,,,,,,,\t",  # a blank field of a timestamp: NULL, by the query
        "123456789,,,,,,,,,",  # longer than String(8)
        "\\N,,,,,,,,,",  # NULL in a NOT NULL field
    ],
)
def test_a_value_the_lane_cannot_prove_leaves_the_chunk_to_the_query(
    tmp_path: Path, line: str
) -> None:
    lane, query, taken = _both(tmp_path, f"{HEADER}\n{PLAIN[0]}\n{line}\n{PLAIN[3]}\n")
    assert not taken
    assert lane == query
    rows, _, _, rejects = lane
    assert sorted([r["line"] for r in rows] + [reject[0] for reject in rejects]) == [2, 3, 4]


def test_a_nul_in_text_leaves_the_chunk_to_the_query(tmp_path: Path) -> None:
    lane, query, taken = _both(tmp_path, f"{HEADER}\n{PLAIN[0]}\na\x00b,,,,,,,,,\n")
    assert not taken
    assert lane == query
    assert [(line, column, code) for line, column, code, _ in lane[-1]] == [(3, "id", 1220)]


_NUMBER = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.sampled_from(["", "+5", "007", "-0", "0x10", " 1", "1.5", "99999999999999999999"]),
)
_DECIMAL = st.one_of(
    st.decimals(-(10**10), 10**10, places=2, allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["", "1.5", "1.234", "-0.00", "1e2", "12345678901.00", ".50", "5."]),
)
_FLOAT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["", "nan", "inf", "1e400", "+2", ".5", "5.", "1e-400", "0x10", "1,5"]),
)
_TIME = st.one_of(
    st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)).map(
        lambda t: t.isoformat() + "Z"
    ),
    st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)).map(lambda t: str(t)[:16]),
    st.sampled_from(["", "2024-02-30T00:00", "2024-01-02", "2024-01-02T03", "0000-01-01T00:00"]),
)
_DAY = st.one_of(
    st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(str),
    st.sampled_from(["", "2024-02-30", "2024-1-2", "2024-01-02T00:00"]),
)
_TEXT = st.one_of(
    st.text(st.characters(exclude_characters='",\n\r\\'), max_size=10),
    st.just("\\N"),
)


@st.composite
def _line(draw: st.DrawFn) -> str:
    fields = [
        draw(_TEXT),
        draw(_NUMBER),
        draw(_NUMBER),
        draw(_FLOAT),
        draw(_DECIMAL),
        draw(_FLOAT),
        draw(st.sampled_from(["", "true", "false", "T", "no", "Yes", "2", "\\N"])),
        draw(_DAY),
        draw(_TIME),
        draw(_TIME),
    ]
    return ",".join(fields)


@settings(
    max_examples=60 if CI else 30,
    deadline=None,
    derandomize=CI,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(lines=st.lists(_line(), min_size=1, max_size=6))
def test_the_lane_and_the_query_agree_on_generated_records(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str]
) -> None:
    tmp_path = tmp_path_factory.mktemp("csv")
    lane, query, _ = _both(tmp_path, HEADER + "\n" + "\n".join(lines) + "\n")
    assert lane == query
