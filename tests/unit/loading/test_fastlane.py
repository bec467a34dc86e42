"""The fast lane against the SQL path: the same records give the same rows, rejects, counts
of filled values and drift shapes, whichever path takes each line.

Records are generated token by token (plain values, near misses, escapes, exponents, keys no
column reads, keys written twice, nulls, lines that are not one object), so both the lines
the lane takes and those it leaves are exercised. The lane is on by default, so the rest of
the suite (conformance included) runs through it as well.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arbalest import (
    BigInt,
    Boolean,
    Date,
    Decimal,
    Double,
    Integer,
    Nested,
    Real,
    SmallInt,
    String,
    Timestamp,
    TimestampTZ,
    convert,
)
from arbalest.loading import fastlane
from arbalest.loading.converter import Converter, batches
from arbalest.loading.drift import drift_report, read_objects
from arbalest.loading.reader import Feed
from arbalest.stores.local import LocalStore
from tests.fixtures.budgets import budget
from tests.fixtures.schemas import fresh_base

CI: Final = bool(os.environ.get("CI"))


def test_the_extension_is_built_where_ci_runs() -> None:
    # pip builds it wherever a C compiler is; CI must exercise it, never skip it silently
    if CI:
        assert fastlane.AVAILABLE
    elif not fastlane.AVAILABLE:
        pytest.skip("the fast lane's C extension is not built here")


needs_lane = pytest.mark.skipif(not fastlane.AVAILABLE, reason="fast lane not built")


class Wide(fresh_base()):  # type: ignore[misc]
    """Every kind the lane takes, with small limits so that near misses are common."""

    __tablename__ = "wide"

    small = SmallInt()
    medium = Integer()
    big = BigInt()
    money = Decimal(12, 2)
    whole = Decimal(5, 0)
    fine = Decimal(38, 10)
    count = Decimal(18, 0)  # whole numbers of 16-19 digits: the lane's integer limits
    real = Real()
    double = Double()
    flag = Boolean()
    short = String(8)
    text = String(65535)
    at = Timestamp()
    at_tz = TimestampTZ(key="atTz")
    day = Date()
    must = Integer(nullable=False)
    name = String(16)  # a key also inside child: each level's keys are its own

    class child(Nested):
        name = String(16)

        class depth(Nested):
            level = Integer()


KEYS: Final = [
    "small",
    "medium",
    "big",
    "money",
    "whole",
    "fine",
    "count",
    "real",
    "double",
    "flag",
    "short",
    "text",
    "at",
    "atTz",
    "day",
    "must",
    "name",
]

NUMBERS: Final = [
    "0",
    "-0",
    "-0.0",
    "0.0",
    "1",
    "-1",
    "007",
    "1.",
    ".5",
    "+1",
    "1.0",
    "1.10",
    "20.259",
    "-20.259",
    "1e5",
    "1E-7",
    "2.5e+3",
    "32767",
    "32768",
    "-32768",
    "-32769",
    "2147483647",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "123456789012345678",
    "1234567890123456789",
    "12345678901234567.89",
    "99999.999",
    "999.5",
    "100000",
    "0.00001",
    "0.000001",
    "0.0000001",
    "0.123456789012345",
    "0.1234567890123456",
    "3.4028235e38",
    "3.5e38",
    "1e-46",
    "1e308",
    "1e309",
    "4.9e-324",
    "2.2250738585072014e-308",
    "13.7549329239943",
    "7.336300917113336",
]

STRINGS: Final = [
    '""',
    '" "',
    '"abc"',
    '"abcdefgh"',
    '"abcdefghi"',
    '"naïve"',
    '"東京の天"',
    '"🚀🚀"',
    '"a\\"b"',
    '"a\\\\b"',
    '"a\\/b"',
    '"a\\nb\\tc\\r\\b\\f"',
    '"\\u00e9t\\u00e9"',
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud83d\\ude80"',
    '"\\ud83d"',
    '"\\ude80"',
    '"\\uD83D\\uDE80x"',
    '"\\x"',
    '"true"',
    '"1"',
    '"12.5"',
    '"2026-01-11T06:14:57.966Z"',
    '"2026-01-11 06:14:57"',
    '"2026-01-11T06:14:57.1234567Z"',
    '"2026-01-11T06:14Z"',
    '"2026-01-11"',
    '"2026-1-11"',
    '"2024-02-29T00:00:00Z"',
    '"2023-02-29T00:00:00Z"',
    '"0001-01-01T00:00:00Z"',
    '"0000-01-01T00:00:00Z"',
    '"9999-12-31T23:59:59.999999Z"',
    '"2026-01-11T24:00:00Z"',
    '"2026-01-11T06:14:60Z"',
    '"2026-01-11T06:14:57+02:00"',
    '"2026-01-11T06:14:57.966z"',
    '"20260111 061457"',
    '"01/11/2026 06:14:57"',
]

LITERALS: Final = ["true", "false", "null", "{}", "[]", "[1]", '{"a": 1}', "tru", "nul"]

timestamps = st.builds(
    lambda y, mo, d, h, mi, s, f, sep, z: (
        f'"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}{"" if s is None else f":{s:02d}"}{f}{z}"'
    ),
    st.integers(1, 9999),
    st.integers(1, 12),
    st.integers(1, 31),
    st.integers(0, 23),
    st.integers(0, 59),
    st.none() | st.integers(0, 59),  # HH:MM without seconds is a timestamp too
    # a fraction of 1 to 9 digits (the lane takes up to 6), now and then after HH:MM
    st.just("")
    | st.integers(1, 9)
    .flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n))
    .map(lambda digits: "." + digits),
    st.sampled_from(["T", " "]),
    st.sampled_from(["", "Z"]),
)

tokens = st.one_of(
    st.sampled_from(NUMBERS + STRINGS + LITERALS),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.integers(0, 12)
    .flatmap(lambda places: st.decimals(allow_nan=False, allow_infinity=False, places=places))
    .map(lambda d: json.dumps(float(d)) if "E" in str(d) else str(d)),
    st.text(max_size=12).map(json.dumps),
    st.text(max_size=12).map(lambda t: json.dumps(t, ensure_ascii=False)),
    timestamps,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
tokens = st.one_of(
    tokens,
    json_values.map(json.dumps),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.sampled_from(['{"a": 1e400}', "[1e-400]", '{"a": 1.7976931348623157e308}', '["\\ud800"]']),
)

blank = st.sampled_from(["", " ", "\t", " \r"])


def ints(bits: int) -> st.SearchStrategy[str]:
    edge = 2 ** (bits - 1)
    return st.one_of(st.integers(-edge, edge - 1), st.integers(-99, 99)).map(str)


def decimals(whole_digits: int, places: int) -> st.SearchStrategy[str]:
    limit = 10**whole_digits - 1
    return (
        st.integers(0, places)
        .flatmap(lambda p: st.decimals(-limit, limit, allow_nan=False, places=p))
        .map(str)
    )


floats = st.floats(allow_nan=False, allow_infinity=False).map(json.dumps)
texts = st.one_of(
    st.text(max_size=10).map(json.dumps),
    st.text(max_size=10).map(lambda t: json.dumps(t, ensure_ascii=False)),
)
dates = st.dates().map(lambda d: f'"{d.isoformat()}"')
GOOD: Final = {
    "small": ints(16),
    "medium": ints(32),
    "big": ints(64),
    "must": ints(32),
    "level": ints(32),
    "money": decimals(10, 3),
    "whole": decimals(5, 2),
    "fine": decimals(9, 11),
    "count": st.one_of(  # around the 15-digit, 64-bit and 18-digit limits
        st.integers(-(10**19), 10**19).map(str),
        st.integers(15, 19).flatmap(lambda n: st.integers(10 ** (n - 1), 10**n - 1)).map(str),
        st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**18 - 1, 10**18]).map(str),
        decimals(18, 2),  # a fraction, truncated
    ),
    "real": st.floats(width=32, allow_nan=False, allow_infinity=False).map(json.dumps),
    "double": floats,
    "flag": st.sampled_from(["true", "false"]),
    "short": st.text(max_size=3).map(json.dumps),
    "text": texts,
    "name": texts,
    "at": timestamps,
    "atTz": timestamps,
    "day": dates,
}


@st.composite
def objects(
    draw: st.DrawFn, keys: list[str], nested: dict[str, Any], noisy: bool | None = None
) -> str:
    """One JSON object's text. A clean one has every key once (in any order) with a value
    of its column's kind; a noisy one has keys missing, written twice or unknown, and any
    token as a value now and then."""
    if noisy is None:
        noisy = draw(st.integers(0, 2)) == 0
    parts = []
    for key in draw(st.permutations(keys + list(nested))):
        times = draw(st.sampled_from([1] * 8 + [0, 2])) if noisy else 1
        for _ in range(times):
            if key in nested:
                inner_keys, inner_nested = nested[key]
                value = (
                    draw(objects(inner_keys, inner_nested, noisy))
                    if not noisy or draw(st.integers(0, 5))
                    else draw(tokens)
                )
            else:
                value = draw(tokens) if noisy and not draw(st.integers(0, 8)) else draw(GOOD[key])
            name = '"\\u0061t"' if noisy and not draw(st.integers(0, 30)) else json.dumps(key)
            parts.append(f"{name}{draw(blank)}:{draw(blank)}{value}")
    if not draw(st.integers(0, 3)):  # keys no column reads, in clean records too
        extra = draw(st.sampled_from(["extra", "other", "naïve", "must2"]))
        parts.insert(draw(st.integers(0, len(parts))), f'"{extra}": {draw(tokens)}')
    return "{" + draw(blank) + ",".join(parts) + draw(blank) + "}"


SHAPE: Final[tuple[list[str], dict[str, Any]]] = (
    KEYS,
    {"child": (["name"], {"depth": (["level"], {})})},
)

lines = st.one_of(
    objects(*SHAPE),
    objects(*SHAPE),
    objects(*SHAPE),
    st.builds(lambda o, b: o + b, objects(*SHAPE), blank),
    st.builds(lambda o: " " + o, objects(*SHAPE)),
    st.builds(lambda a, b: a + b, objects(*SHAPE), objects(*SHAPE)),
    st.sampled_from(["", "[]", "[{}]", "{", "}", '{"must": 1', "not json", "\r"]),
)


@dataclass
class Outcome:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rejects: list[tuple[Any, ...]] = field(default_factory=list)
    filled: list[int] = field(default_factory=list)
    shapes: dict[Any, int] = field(default_factory=dict)


def run(objects_: dict[str, bytes], *, lane: bool) -> Outcome:
    converter = Converter(Wide.__fields__, convert.ConvertOptions(), workers=2)
    for transform in converter._transforms:
        if not lane:
            transform.lane = None
        else:
            assert transform.lane is not None
    out = Outcome(filled=[0] * len(Wide.__fields__))
    try:
        with tempfile.TemporaryDirectory() as lake, tempfile.TemporaryDirectory() as work:
            for key, data in objects_.items():
                (Path(lake) / key).write_bytes(data)
            store = LocalStore(lake)
            infos = sorted(store.list(""), key=lambda info: info.key)
            with Feed(
                store, infos, compression=None, workdir=Path(work), chunk_bytes=600, workers=1
            ) as feed:
                for batch in converter.run(
                    batches(iter(feed), 1500), Path(work), "arrow", with_position=True
                ):
                    keys = {chunk.seq: chunk.info.key for chunk in batch.chunks}
                    out.rejects += [
                        (r.key, r.line, r.column, r.value, r.reason, r.code) for r in batch.rejects
                    ]
                    out.filled = [a + b for a, b in zip(out.filled, batch.filled, strict=True)]
                    for shape, count in batch.shapes.items():
                        out.shapes[shape] = out.shapes.get(shape, 0) + count
                    if batch.table is not None:
                        for row in batch.table.to_pylist():
                            position = (keys[row.pop("chunk")], row.pop("line"), row.pop("idx"))
                            out.rows.append((*position, *[repr(v) for v in row.values()]))
                    for chunk in batch.chunks:
                        chunk.discard()
    finally:
        converter.close()
    out.rows.sort()
    return out


def same(objects_: dict[str, bytes]) -> None:
    fast, slow = run(objects_, lane=True), run(objects_, lane=False)
    assert fast.rows == slow.rows
    assert fast.rejects == slow.rejects
    assert fast.filled == slow.filled
    # the SQL path lists the keys of some records that have none beyond the columns' (its
    # cheap test is not exact both ways); the report made of them is what must agree
    objects_read = read_objects(Wide.__fields__)
    filled = {spec.name: n for spec, n in zip(Wide.__fields__, fast.filled, strict=True)}
    assert drift_report(objects_read, fast.shapes, filled, len(fast.rows)) == drift_report(
        objects_read, slow.shapes, filled, len(slow.rows)
    )


@needs_lane
@settings(
    max_examples=60 if CI else 40,
    deadline=None,
    derandomize=CI,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.lists(lines, min_size=1, max_size=25), min_size=1, max_size=3))
@example([['{"must": 1, "double": -0}', '{"must": 1, "double": -0.0, "real": 3.5e38}']])
@example([['{"must": 1, "money": 12345678901234.5, "fine": 0.0000001}']])
def test_the_lane_gives_what_the_sql_path_gives(files: list[list[str]]) -> None:
    objects_ = {f"part-{n}.json": "\n".join(text).encode() for n, text in enumerate(files)}
    same(objects_)


@needs_lane
@settings(max_examples=25 if CI else 15, deadline=None, derandomize=CI)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=8))
def test_bytes_that_are_not_utf8_give_what_the_sql_path_gives(junk: list[bytes]) -> None:
    # a record around each bit of junk: inside a string value, and as a whole line
    lines_ = []
    for bits in junk:
        lines_.append(
            b'{"must": 1, "short": "' + bits.replace(b'"', b"").replace(b"\\", b"") + b'"}'
        )
        lines_.append(bits.replace(b"\n", b""))
    same({"junk.json": b"\n".join(lines_)})


@needs_lane
def test_plain_records_take_the_lane() -> None:
    # the lane is not idle: plain records are taken by it, the rest are deferred
    lane = fastlane.lane_for(Wide.__fields__, convert.ConvertOptions())
    assert lane is not None
    data = (
        b'{"must": 1, "money": 71399.75, "atTz": "2026-01-11T06:14:57.966Z", "short": "abc",'
        b' "child": {"name": "root", "depth": {"level": 7}}, "double": 13.7549329239943}\n'
        b'{"must": 1, "extra": 1}\n'
        b"\n"
        b'{"must": 1, "short": "abcdefghi"}\n'
    )
    rows = lane.convert(data, 10, 3)
    assert rows.table.column("line").to_pylist() == [10, 11]
    assert rows.table.column("chunk").to_pylist() == [3, 3]
    # a key no column reads is skipped, and its record numbered for the drift report
    assert rows.table.column("shape").to_pylist() == [0, 1]
    assert rows.shapes == {1: (("extra",), None, None)}
    assert rows.deferred.column("line").to_pylist() == [13]
    assert rows.deferred.column("l").to_pylist() == [b'{"must": 1, "short": "abcdefghi"}']


def test_options_that_change_a_rule_turn_the_lane_off() -> None:
    assert fastlane.lane_for(Wide.__fields__, convert.ConvertOptions(truncate_columns=True)) is None
    assert (
        fastlane.lane_for(Wide.__fields__, convert.ConvertOptions(time_format="epochsecs")) is None
    )


def test_the_environment_turns_the_lane_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBALEST_FAST_LANE", "0")
    assert fastlane.lane_for(Wide.__fields__, convert.ConvertOptions()) is None


class Floats(fresh_base()):  # type: ignore[misc]
    __tablename__ = "floats"

    double = Double()
    real = Real()


def _halfway_neighbour(significand: int, exponent: int, digits: int) -> str:
    """The decimal of ``digits`` digits nearest the point halfway between two neighbouring
    doubles (``significand`` of 53 bits and the next, times 2**``exponent``): a value the
    lane's division rounds onto that point, whose correct rounding only the exact value
    decides."""
    halfway = Fraction(2 * significand + 1, 2) * Fraction(2) ** exponent
    whole = len(str(int(halfway))) if halfway >= 1 else 1
    places = max(0, digits - whole)
    scaled = round(halfway * 10**places)
    return _with_point(str(scaled), places)


def _with_point(digits: str, places: int) -> str:
    """``digits`` with a decimal point before its last ``places`` (JSON: a 0 before a point
    that would come first)."""
    if not places:
        return digits
    digits = digits.rjust(places, "0")
    return f"{digits[:-places] or '0'}.{digits[-places:]}"


long_decimals = st.one_of(
    # shortest round-trip texts of doubles: most have 16 or 17 digits
    st.floats(min_value=1e-6, max_value=1e18, allow_subnormal=False).map(repr),
    # 16 to 19 digits with the point anywhere
    st.integers(16, 19)
    .flatmap(lambda n: st.tuples(st.integers(10 ** (n - 1), 10**n - 1), st.integers(0, n)))
    .map(lambda t: _with_point(str(t[0]), t[1])),
    # next to a halfway point between two doubles, where rounding twice could go wrong
    st.builds(
        _halfway_neighbour,
        st.integers(2**52, 2**53 - 1),
        st.integers(-60, 10),
        st.integers(16, 19),
    ),
)


@needs_lane
@budget(400)
@given(st.lists(st.tuples(long_decimals, st.booleans()), min_size=1, max_size=40))
@example(
    [("9007199254740993", False), ("9007199254740995", True), ("0.1000000000000000055", False)]
)
def test_long_decimals_are_rounded_correctly(values: list[tuple[str, bool]]) -> None:
    # the lane reads up to 19 digits without strtod: each value must be the correctly rounded
    # double (Python's float) and, for REAL, that double rounded to float, bit for bit
    lane = fastlane.lane_for(Floats.__fields__, convert.ConvertOptions())
    assert lane is not None
    texts = [("-" if negative else "") + text for text, negative in values]
    data = "\n".join(f'{{"double": {t}, "real": {t}}}' for t in texts).encode()
    rows = lane.convert(data, 1, 0)
    taken = rows.table.column("line").to_pylist()
    for line, double, real in zip(
        taken, rows.table.column("v1").to_pylist(), rows.table.column("v2").to_pylist(), strict=True
    ):
        want = float(texts[line - 1])
        assert struct.pack("<d", double) == struct.pack("<d", want), texts[line - 1]
        assert struct.pack("<f", real) == struct.pack("<f", want), texts[line - 1]
    # left for the SQL path: only a REAL out of float's range, -0, or a whole number of more
    # than 18 digits (which the SQL path reads as an integer first)
    for line in rows.deferred.column("line").to_pylist():
        text = texts[line - 1]
        value = abs(float(text))
        assert (
            value == 0
            or not 1.1754943508222875e-38 <= value <= 3.4028234663852886e38
            or ("." not in text and len(text.lstrip("-")) > 18)
        ), text
