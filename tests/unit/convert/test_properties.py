"""Property tests: the Python and SQL forms of every rule agree on any input, and
``json_text`` gives what DuckDB's JSON extraction gives for any JSON value."""

from __future__ import annotations

import datetime as dt
import json
import math
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbalest import convert
from tests.unit.convert.helpers import connection, run_python, run_sql

RULES = [
    convert.IntegerRule(16),
    convert.IntegerRule(32),
    convert.IntegerRule(64),
    convert.DecimalRule(12, 2),
    convert.DecimalRule(38, 10),
    convert.DecimalRule(3, 0),
    convert.FloatRule(32),
    convert.FloatRule(64),
    convert.BooleanRule(),
    convert.VarcharRule(6),
    convert.CharRule(4),
    convert.TimestampRule(),
    convert.TimestampRule(timezone=True),
    convert.DateRule(),
]
OPTIONS = [
    convert.ConvertOptions(),
    convert.ConvertOptions(truncate_columns=True),
    convert.ConvertOptions(time_format="epochsecs"),
    convert.ConvertOptions(time_format="epochmillisecs"),
    convert.ConvertOptions(time_format="YYYY-MM-DD HH24:MI:SS.SSS"),
]

_digits = st.text("0123456789", min_size=1, max_size=25)
_numberish = st.builds(
    lambda sign, a, b, e: sign + a + b + e,
    st.sampled_from(["", "-", "+"]),
    _digits,
    st.sampled_from(["", "."]).flatmap(lambda p: st.just(p) if not p else _digits.map(p.__add__)),
    st.sampled_from(["", "e5", "E-3", "e+2", "e400", "e-400"]),
)
_timestampish = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, tz: f"{y:04d}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{tz}",
    st.integers(0, 9999),
    st.sampled_from(["1", "01", "02", "12", "13", "00"]),
    st.sampled_from(["1", "09", "28", "29", "30", "31", "32"]),
    st.sampled_from(["T", " "]),
    st.sampled_from(["0", "00", "9", "23", "24"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["", ".1", ".123456", ".1234567"]),
    st.sampled_from(["", "Z", "+01", "-08:00", "+0530", "+14", "+15:00", " UTC"]),
)
_texts = st.one_of(
    st.text(max_size=12),
    st.text(string.ascii_letters + string.digits + " .-+:/eE", max_size=12),
    _numberish,
    _timestampish,
    st.sampled_from(["", "t", "YES", "no", "0", "1", "NaN", "Infinity", "2019-02-11", "é🚀x"]),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_texts, min_size=1, max_size=80))
def test_python_and_sql_forms_agree(texts: list[str]) -> None:
    for rule in RULES:
        for options in OPTIONS:
            assert run_python(rule, texts, options) == run_sql(rule, texts, options), (
                rule,
                options,
            )


# Texts that the rules' shortcuts take (a value's canonical text: what DuckDB writes back
# for it), the same texts spelt a little differently, and their neighbours just out of range.
_TIMESTAMP_FORMATS = [
    "{y}-{mo}-{d}",
    "{y}-{mo}-{d}T{h}:{mi}:{s}",
    "{y}-{mo}-{d} {h}:{mi}:{s}",
    "{y}-{mo}-{d}T{h}:{mi}:{s}Z",
    "{y}-{mo}-{d}T{h}:{mi}:{s}.{ms}",
    "{y}-{mo}-{d} {h}:{mi}:{s}.{ms}",
    "{y}-{mo}-{d}T{h}:{mi}:{s}.{ms}Z",
    "{y}-{mo}-{d}T{h}:{mi}:{s}.{us}",
    "{y}-{mo}-{d} {h}:{mi}:{s}.{us}",
    "{y}-{mo}-{d}T{h}:{mi}:{s}.{us}Z",
    "{y}-{mo}-{d}T{h}:{mi}:{s}.{us}+00:00",
    "{y}-{mo}-{d}t{h}:{mi}:{s}.{ms}z",
    "{y}-{mo}-{d}X{h}:{mi}:{s}.{ms}Z",
]
_canonical_timestamps = st.builds(
    lambda fmt, when, pad: fmt.format(
        y=f"{when.year:0{pad}d}",
        mo=f"{when.month:02d}",
        d=f"{when.day:02d}",
        h=f"{when.hour:02d}",
        mi=f"{when.minute:02d}",
        s=f"{when.second:02d}",
        ms=f"{when.microsecond // 1000:03d}",
        us=f"{when.microsecond:06d}",
    ),
    st.sampled_from(_TIMESTAMP_FORMATS),
    st.datetimes(),
    st.sampled_from([4, 4, 4, 1, 5]),
)
_canonical_numbers = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(-(2**70), 2**70).map(lambda i: f"{i:+d}"),
    st.integers(-(10**14), 10**14).map(lambda i: f"{i // 100}.{abs(i) % 100:02d}"),
    st.integers(-(10**14), 10**14).map(lambda i: f"{i / 100:.2f}"),
    st.integers(-(10**14), 10**14).map(lambda i: f"{i / 1000:.3f}"),
    st.integers(-(10**14), 10**14).map(lambda i: f"{i:d}.0"),
    st.sampled_from(["0.00", "-0.00", "-0", "00", "0.5", ".50", "5.", "1e2", " 5", "5 ", "1_000"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_canonical_timestamps | _canonical_numbers, min_size=1, max_size=60))
def test_shortcuts_for_canonical_texts_agree(texts: list[str]) -> None:
    for rule in RULES:
        assert run_python(rule, texts, convert.DEFAULT_OPTIONS) == run_sql(
            rule, texts, convert.DEFAULT_OPTIONS
        ), rule


@given(st.datetimes(), st.sampled_from(["Europe/Paris", "America/Los_Angeles", "UTC"]))
@settings(max_examples=50, deadline=None)
def test_timestamptz_does_not_depend_on_the_session_time_zone(when: dt.datetime, zone: str) -> None:
    con = connection()
    text = when.isoformat()
    sql = convert.TimestampRule(timezone=True).sql_value("s")
    con.execute(f"SET TimeZone = '{zone}'")
    try:
        row = con.execute(f"SELECT {sql} FROM (SELECT ?::VARCHAR AS s)", [text]).fetchone()
    finally:
        con.execute("SET TimeZone = 'UTC'")
    assert row is not None
    (value,) = row
    expected = convert.TimestampRule(timezone=True).python(text)
    assert (None if value is None else value.astimezone(dt.UTC)) == expected


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_json_values)
def test_json_text_matches_duckdb_extraction(value: object) -> None:
    document = json.dumps({"v": value}, ensure_ascii=False)
    (extracted,) = connection().execute(
        "SELECT json_extract_string(?, '$.v')", [document]
    ).fetchone() or (None,)
    assert convert.json_text(value) == extracted  # type: ignore[arg-type]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_double_round_trips(value: float) -> None:
    text = convert.format_double(value)
    assert float(text) == value
    assert math.copysign(1, float(text)) == math.copysign(1, value)
