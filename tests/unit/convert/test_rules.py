"""Every conversion rule, table-driven: each case runs through the Python form and the
DuckDB SQL form, and both must give the expected value or the expected reject code."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal as D
from typing import Any

import pytest

from arbalest import convert
from arbalest.convert import ConvertOptions
from tests.unit.convert.helpers import run_python, run_sql

UTC = dt.UTC
TRUNCATE = ConvertOptions(truncate_columns=True)
EPOCHSECS = ConvertOptions(time_format="epochsecs")
EPOCHMILLIS = ConvertOptions(time_format="epochmillisecs")
CUSTOM = ConvertOptions(time_format="YYYY-MM-DD HH24:MI:SS")
CUSTOM_FRACTION = ConvertOptions(time_format="DD/MM/YYYY HH:MI:SS.SSS")


@dataclass(frozen=True)
class Reject:
    code: int


@dataclass(frozen=True)
class Case:
    rule: convert.Rule
    text: Any
    expected: Any
    options: ConvertOptions = convert.DEFAULT_OPTIONS

    def __str__(self) -> str:
        opts = "" if self.options == convert.DEFAULT_OPTIONS else f" {self.options}"
        return f"{self.rule!r}{opts} {self.text!r}"


SMALL, INT, BIG = convert.IntegerRule(16), convert.IntegerRule(32), convert.IntegerRule(64)
DEC = convert.DecimalRule(12, 2)
DEC0 = convert.DecimalRule(5, 0)
REAL, DOUBLE = convert.FloatRule(32), convert.FloatRule(64)
BOOL = convert.BooleanRule()
VC5, CH5 = convert.VarcharRule(5), convert.CharRule(5)
TS, TSTZ, DATE = convert.TimestampRule(), convert.TimestampRule(timezone=True), convert.DateRule()
SUPER = convert.SuperRule()

CASES = [
    # --- null, missing and the empty string --------------------------------------------
    *(Case(rule, None, None) for rule in (SMALL, DEC, REAL, BOOL, VC5, CH5, TS, DATE, SUPER)),
    *(Case(rule, "", None) for rule in (SMALL, INT, BIG, DEC, REAL, DOUBLE, BOOL, TS, TSTZ, DATE)),
    Case(VC5, "", ""),
    Case(CH5, "", "     "),
    # --- integers: sign and digits only; range per width -----------------------------------
    Case(INT, "12", 12),
    Case(INT, "+12", 12),
    Case(INT, "-0", 0),
    Case(INT, "00012", 12),
    Case(INT, "-2147483648", -2147483648),
    Case(INT, "2147483647", 2147483647),
    Case(INT, "2147483648", Reject(1222)),
    Case(INT, "-2147483649", Reject(1222)),
    Case(SMALL, "32767", 32767),
    Case(SMALL, "32768", Reject(1222)),
    Case(SMALL, "-32769", Reject(1222)),
    Case(BIG, "9223372036854775807", 9223372036854775807),
    Case(BIG, "9223372036854775808", Reject(1222)),
    Case(BIG, "-9223372036854775809", Reject(1222)),
    Case(INT, "5.0", Reject(1207)),  # a number with a fraction part is not an integer
    Case(INT, "5.5", Reject(1207)),
    Case(INT, "1e3", Reject(1207)),
    Case(INT, " 12", Reject(1207)),  # no blanks around numbers
    Case(INT, "12 ", Reject(1207)),
    Case(INT, "1_000", Reject(1207)),
    Case(INT, "1,000", Reject(1207)),
    Case(INT, "0x10", Reject(1207)),
    Case(INT, "１２", Reject(1207)),  # full-width digits are not digits
    Case(INT, "true", Reject(1207)),
    Case(INT, '{"a":1}', Reject(1207)),
    # --- decimals: truncated to the scale, never rounded ---------------------------------
    Case(DEC, "20.259", D("20.25")),
    Case(DEC, "-20.259", D("-20.25")),
    Case(DEC, "20.2", D("20.20")),
    Case(DEC, "7", D("7.00")),
    Case(DEC, "5.", D("5.00")),
    Case(DEC, ".5", D("0.50")),
    Case(DEC, "-.5", D("-0.50")),
    Case(DEC, "-0.001", D("0.00")),  # no negative zero
    Case(DEC, "0.30000000000000004", D("0.30")),
    Case(DEC, "9999999999.999", D("9999999999.99")),
    Case(DEC, "10000000000", Reject(1204)),  # 11 integer digits > 12 - 2
    Case(DEC, "1.5e2", D("150.00")),  # exponent notation is read as a double
    Case(DEC, "1E+2", D("100.00")),
    Case(DEC, "1e-7", D("0.00")),
    Case(DEC, "-1.259e1", D("-12.59")),
    Case(DEC, "1.2345678901234568e29", Reject(1204)),
    Case(DEC, "1e400", Reject(1204)),
    Case(DEC, "12abc", Reject(1207)),
    Case(DEC, "NaN", Reject(1207)),
    Case(DEC, "1,5", Reject(1207)),
    Case(DEC, " 1", Reject(1207)),
    Case(DEC0, "99999.9", D("99999")),
    Case(DEC0, ".5", D("0")),
    Case(DEC0, "100000", Reject(1204)),
    Case(
        convert.DecimalRule(38, 0),
        "12345678901234567890123456789012345678",
        D("12345678901234567890123456789012345678"),
    ),
    Case(convert.DecimalRule(5, 5), "0.123456", D("0.12345")),
    Case(convert.DecimalRule(5, 5), "1", Reject(1204)),
    # --- floating point ------------------------------------------------------------------
    Case(DOUBLE, "1.5", 1.5),
    Case(DOUBLE, "-0.25e-3", -0.00025),
    Case(DOUBLE, "12", 12.0),
    Case(DOUBLE, ".5", 0.5),
    Case(DOUBLE, "1.7976931348623157e308", 1.7976931348623157e308),
    Case(DOUBLE, "1e400", Reject(1204)),
    Case(DOUBLE, "NaN", Reject(1208)),
    Case(DOUBLE, "Infinity", Reject(1208)),
    Case(DOUBLE, "-inf", Reject(1208)),
    Case(DOUBLE, "0x10", Reject(1208)),
    Case(DOUBLE, "1.5.2", Reject(1208)),
    Case(REAL, "0.1", 0.10000000149011612),  # rounded to 32 bits
    Case(REAL, "3.4028234663852886e38", 3.4028234663852886e38),
    Case(REAL, "3.5e38", Reject(1204)),
    Case(REAL, "1e-50", 0.0),
    # --- booleans --------------------------------------------------------------------------
    *(Case(BOOL, text, True) for text in ("true", "t", "T", "TRUE", "y", "Yes", "YES", "1")),
    *(Case(BOOL, text, False) for text in ("false", "f", "F", "False", "n", "NO", "no", "0")),
    *(Case(BOOL, text, Reject(1210)) for text in ("2", "tr", "yes ", " true", "on", "-1", "ｔ")),
    # --- VARCHAR: lengths in bytes of UTF-8 -------------------------------------------------
    Case(VC5, "abcde", "abcde"),
    Case(VC5, "abcdef", Reject(1204)),
    Case(VC5, "ééé", Reject(1204)),  # 3 characters, 6 bytes
    Case(VC5, "éé", "éé"),
    Case(VC5, "abcdef", "abcde", TRUNCATE),
    Case(VC5, "ééé", "éé", TRUNCATE),  # never splits a character
    Case(VC5, "ab🚀", "ab", TRUNCATE),  # the rocket is 4 bytes and does not fit
    Case(VC5, "a🚀", "a🚀"),
    Case(VC5, "日本語", "日", TRUNCATE),
    Case(VC5, "a\x00b", Reject(1220)),
    Case(VC5, "a\x00b", Reject(1220), TRUNCATE),
    Case(convert.VarcharRule(1), "é", Reject(1204)),
    Case(convert.VarcharRule(1), "é", "", TRUNCATE),
    # --- CHAR: single-byte characters, padded ---------------------------------------------
    Case(CH5, "ab", "ab   "),
    Case(CH5, "abcde", "abcde"),
    Case(CH5, "abcdef", Reject(1204)),
    Case(CH5, "abcdef", "abcde", TRUNCATE),
    Case(CH5, "é", Reject(1220)),
    Case(CH5, "é", Reject(1220), TRUNCATE),
    Case(CH5, "\x00", Reject(1220)),
    # --- timestamps, TIMEFORMAT 'auto' ---------------------------------------------------------
    Case(TS, "2019-02-11T05:09:12.195Z", dt.datetime(2019, 2, 11, 5, 9, 12, 195000)),
    Case(TS, "1996-01-08 04:05:06.789", dt.datetime(1996, 1, 8, 4, 5, 6, 789000)),
    Case(TS, "1997-12-17 07:37:16-08", dt.datetime(1997, 12, 17, 15, 37, 16)),  # to UTC
    Case(TS, "2019-02-11T05:09:12+05:30", dt.datetime(2019, 2, 10, 23, 39, 12)),
    Case(TS, "2019-02-11T05:09:12-0830", dt.datetime(2019, 2, 11, 13, 39, 12)),
    Case(TS, "2019-02-11", dt.datetime(2019, 2, 11)),
    Case(TS, "2019-2-3 4:05", dt.datetime(2019, 2, 3, 4, 5)),
    Case(TS, "19960108 040809", dt.datetime(1996, 1, 8, 4, 8, 9)),
    Case(TS, "19960108", dt.datetime(1996, 1, 8)),
    Case(TS, "12/31/2019", dt.datetime(2019, 12, 31)),
    Case(TS, "12/31/2019 23:59:58", dt.datetime(2019, 12, 31, 23, 59, 58)),
    Case(TS, "2019-02-11T05:09:12.1234567Z", dt.datetime(2019, 2, 11, 5, 9, 12, 123456)),
    Case(TS, "2020-02-29", dt.datetime(2020, 2, 29)),
    Case(TS, "9999-12-31 23:59:59.999999", dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
    Case(TS, "0001-01-01", dt.datetime(1, 1, 1)),
    *(
        Case(TS, text, Reject(1206))
        for text in (
            "2019-02-29",  # not a leap year
            "2019-02-30",
            "2019-13-01",
            "2019-02-11 24:00:00",
            "2019-02-11 23:60:00",
            "2019-02-11 23:59:60",
            "0000-01-01",
            "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
            "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC
            "2019-02-11T05:09:12+15:00",
            " 2019-02-11",
            "2019-02-11 05:09:12 UTC",
            "Jan 8 1996",
            "epoch",
            "infinity",
            "1549861752",
            "13/31/2019",
            "true",
        )
    ),
    Case(TSTZ, "2019-02-11T05:09:12.195Z", dt.datetime(2019, 2, 11, 5, 9, 12, 195000, UTC)),
    Case(TSTZ, "1997-12-17 07:37:16-08", dt.datetime(1997, 12, 17, 15, 37, 16, tzinfo=UTC)),
    Case(TSTZ, "2019-02-11 05:09", dt.datetime(2019, 2, 11, 5, 9, tzinfo=UTC)),
    Case(TSTZ, "2019-02-30", Reject(1206)),
    Case(DATE, "2019-02-11", dt.date(2019, 2, 11)),
    Case(DATE, "2019-02-11T23:30:00", dt.date(2019, 2, 11)),  # the time part is dropped
    Case(DATE, "2019-02-11T23:30:00-05:00", dt.date(2019, 2, 12)),  # after moving to UTC
    Case(DATE, "19960108", dt.date(1996, 1, 8)),
    Case(DATE, "2019-02-30", Reject(1205)),
    Case(DATE, "not a date", Reject(1205)),
    # --- epoch formats ----------------------------------------------------------------------
    Case(TS, "1549861752", dt.datetime(2019, 2, 11, 5, 9, 12), EPOCHSECS),
    Case(TS, "1549861752.195", dt.datetime(2019, 2, 11, 5, 9, 12, 195000), EPOCHSECS),
    Case(TS, "1549861752.1234567", dt.datetime(2019, 2, 11, 5, 9, 12, 123456), EPOCHSECS),
    Case(TS, "-1", dt.datetime(1969, 12, 31, 23, 59, 59), EPOCHSECS),
    Case(TS, "1549861752195", dt.datetime(2019, 2, 11, 5, 9, 12, 195000), EPOCHMILLIS),
    Case(TS, "1549861752195.9", dt.datetime(2019, 2, 11, 5, 9, 12, 195900), EPOCHMILLIS),
    Case(TSTZ, "0", dt.datetime(1970, 1, 1, tzinfo=UTC), EPOCHSECS),
    Case(DATE, "86400", dt.date(1970, 1, 2), EPOCHSECS),
    Case(TS, "253402300800", Reject(1206), EPOCHSECS),  # year 10000
    Case(TS, "1e9", Reject(1206), EPOCHSECS),
    Case(TS, "2019-02-11", Reject(1206), EPOCHSECS),
    Case(DATE, "abc", Reject(1205), EPOCHMILLIS),
    # --- a custom TIMEFORMAT ----------------------------------------------------------------
    Case(TS, "2019-02-11 05:09:12", dt.datetime(2019, 2, 11, 5, 9, 12), CUSTOM),
    Case(TS, "2019-02-11T05:09:12", Reject(1206), CUSTOM),
    Case(TS, "2019-02-30 05:09:12", Reject(1206), CUSTOM),
    Case(TS, "11/02/2019 05:09:12.5", dt.datetime(2019, 2, 11, 5, 9, 12, 500000), CUSTOM_FRACTION),
    Case(TS, "11/02/2019 05:09:12", Reject(1206), CUSTOM_FRACTION),
    Case(DATE, "2019-02-11 05:09:12", dt.date(2019, 2, 11), CUSTOM),
    # --- SUPER: the JSON value itself -------------------------------------------------------
    Case(SUPER, {"a": [1, 2.5, None, "x"]}, {"a": [1, 2.5, None, "x"]}),
    Case(SUPER, "text", "text"),
    Case(SUPER, "", ""),
    Case(SUPER, 12, 12),
    Case(SUPER, False, False),
    Case(SUPER, ["a\\u0000"], ["a\\u0000"]),  # a backslash, then "u0000": no NUL
    Case(SUPER, {"k": "a\x00"}, Reject(1220)),
    Case(SUPER, ["x", {"y": "\x00"}], Reject(1220)),
    Case(SUPER, {"nan": "NaN", "inf": ["Infinity"]}, {"nan": "NaN", "inf": ["Infinity"]}),
    Case(SUPER, {"a": [1, float("nan")]}, Reject(1224)),
    Case(SUPER, {"a": float("-inf")}, Reject(1224)),
]


def _expected(case: Case) -> tuple[Any, int | None]:
    if isinstance(case.expected, Reject):
        return (None, case.expected.code)
    return (case.expected, None)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_python_form(case: Case) -> None:
    (got,) = run_python(case.rule, [case.text], case.options)
    assert got == _expected(case)
    assert type(got[0]) is type(_expected(case)[0])


@pytest.mark.parametrize(
    "options", sorted({c.options for c in CASES}, key=repr), ids=lambda o: repr(o)
)
def test_sql_form(options: ConvertOptions) -> None:
    """One DuckDB query per rule and option set, over every case for it."""
    by_rule: dict[convert.Rule, list[Case]] = {}
    for case in CASES:
        if case.options == options:
            by_rule.setdefault(case.rule, []).append(case)
    failures = []
    for rule, cases in by_rule.items():
        results = run_sql(rule, [c.text for c in cases], options)
        for case, got in zip(cases, results, strict=True):
            expected = _expected(case)
            if got != expected or type(got[0]) is not type(expected[0]):
                failures.append(f"{case}: got {got!r}, expected {expected!r}")
    assert not failures, "\n".join(failures)


def test_reasons_name_the_type() -> None:
    assert INT.reason(1207) == "Invalid digit (type INTEGER)"
    assert VC5.reason(1204) == "String length exceeds DDL length (type VARCHAR(5))"
    assert DATE.reason(1205).startswith("Invalid date format")


@pytest.mark.parametrize(
    "fmt",
    [
        "YYYY-MM-DD HH:MI:SS AM",
        "MON DD YYYY",
        "YYYY-MM",
        "YYYY-MM-DD SS.SSSSSSS",
        "YYYY-YYYY-MM-DD",
    ],
)
def test_unsupported_time_formats_are_configuration_errors(fmt: str) -> None:
    from arbalest.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="time_format"):
        ConvertOptions(time_format=fmt)
