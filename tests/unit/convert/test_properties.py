"""Property tests: the Python and SQL forms of every rule agree on any input, and
``json_text`` gives what DuckDB's JSON extraction gives for any JSON value."""

from __future__ import annotations

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
