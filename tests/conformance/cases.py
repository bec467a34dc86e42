"""The conformance table: JSON objects in, rows and rejects out, the same on every warehouse.

Each case is a set of objects (key -> text; ``.gz``, ``.bz2`` and ``.zst`` keys are
compressed by the test), the copy options, the rows expected in the table (a dict per row;
columns not named are NULL), and the rejects expected (key, line, column, code). The
Parquet and CSV table (``format_cases``) extends ``Case``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal as D
from typing import Any

from arbalest import Integer, Nested, Schema, String
from tests.fixtures.schemas import NAMED, every_type, fresh_base

UTC = dt.UTC


Base = fresh_base()


#: id, then a column of each type (i16 ... j)
_EVERY_TYPE = every_type(NAMED, id=String(10, primary_key=True), string=8)


# id, then a column of each type (i16 ... j), then a path, an odd key and a nested object
class Row(Base, _EVERY_TYPE):  # type: ignore[misc, valid-type]
    __tablename__ = "conformance"

    first_tag = String(8, path="$['tags'][0]")
    odd = String(8, key="key with spaces.and 'dots'")

    class nested(Nested):
        n = Integer()


@dataclass(frozen=True)
class Case:
    name: str
    objects: dict[str, str | bytes]
    rows: list[dict[str, Any]]
    rejects: list[tuple[str, int, str | None, int]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    schema: type[Schema] = Row
    fails: bool = False  # too many rejects: the step fails and loads nothing

    def __str__(self) -> str:
        return self.name


CASES = [
    Case(
        "every type from native JSON values",
        {
            "a.json": '{"id": "a", "i16": 1, "i32": -2, "i64": 9007199254740993, "dec": 1.5, '
            '"r": 0.5, "d": 2.25, "b": true, "ch": "x", "s": "hello", "day": "2019-02-11", '
            '"ts": "2019-02-11T05:09:12.195Z", "tz": "1997-12-17 07:37:16-08", '
            '"j": {"k": [1, "two", null]}, "tags": ["t0", "t1"], '
            '"key with spaces.and \'dots\'": "odd", "nested": {"n": 7}}\n'
        },
        [
            {
                "id": "a",
                "i16": 1,
                "i32": -2,
                "i64": 9007199254740993,
                "dec": D("1.500"),
                "r": 0.5,
                "d": 2.25,
                "b": True,
                "ch": "x  ",
                "s": "hello",
                "day": dt.date(2019, 2, 11),
                "ts": dt.datetime(2019, 2, 11, 5, 9, 12, 195000),
                "tz": dt.datetime(1997, 12, 17, 15, 37, 16, tzinfo=UTC),
                "j": {"k": [1, "two", None]},
                "first_tag": "t0",
                "odd": "odd",
                "nested_n": 7,
            }
        ],
    ),
    Case(
        "strings convert by COPY's rules",
        {
            "a.json": '{"id": "s", "i16": "12", "i32": "+7", "i64": "-0", "dec": "20.259", '
            '"r": "1e-3", "d": "-4.5E2", "b": "Yes", "s": 123, "day": "19960108", '
            '"ts": "12/31/2019 23:59:58", "tz": "2019-02-11", "j": "just text"}\n'
        },
        [
            {
                "id": "s",
                "i16": 12,
                "i32": 7,
                "i64": 0,
                "dec": D("20.259"),
                "r": 0.001,
                "d": -450.0,
                "b": True,
                "s": "123",
                "day": dt.date(1996, 1, 8),
                "ts": dt.datetime(2019, 12, 31, 23, 59, 58),
                "tz": dt.datetime(2019, 2, 11, tzinfo=UTC),
                "j": "just text",
            }
        ],
    ),
    Case(
        "decimals are truncated, empty strings are NULL but for strings",
        {"a.json": '{"id": "t", "dec": 1.23456, "i32": "", "s": "", "ch": "", "b": ""}\n'},
        [{"id": "t", "dec": D("1.234"), "s": "", "ch": "   "}],
    ),
    Case(
        "missing keys and nulls are NULL",
        {
            "a.json": '{"id": "m", "i32": null, "nested": {}, "tags": null}\n'
            '{"id": "n", "nested": null}\n'
        },
        [{"id": "m"}, {"id": "n"}],
    ),
    Case(
        "rejected values are reported with key, line, column and code",
        {
            "bad.json": '{"id": "ok1"}\n'
            '{"id": "x1", "i32": "12x"}\n'
            '{"id": "x2", "i16": 40000}\n'
            '{"id": "x3", "b": "maybe"}\n'
            '{"id": "x4", "s": "much too long"}\n'
            '{"i32": 1}\n'
            '{"id": "x6", "day": "2019-02-30"}\n'
            '{"id": "x7", "ts": "yesterday"}\n'
            '{"id": "x8", "d": "NaN"}\n'
            '{"id": "x9", "ch": "é"}\n'
            '{"id": "ok2"}\n'
        },
        [{"id": "ok1"}, {"id": "ok2"}],
        [
            ("bad.json", 2, "i32", 1207),
            ("bad.json", 3, "i16", 1222),
            ("bad.json", 4, "b", 1210),
            ("bad.json", 5, "s", 1204),
            ("bad.json", 6, "id", 1213),
            ("bad.json", 7, "day", 1205),
            ("bad.json", 8, "ts", 1206),
            ("bad.json", 9, "d", 1208),
            ("bad.json", 10, "ch", 1220),
        ],
        {"max_errors": 9},
    ),
    Case(
        "one reject too many fails the step and loads nothing",
        {"a.json": '{"id": "ok"}\n{"id": "x", "i32": "bad"}\n{"id": "y", "i32": "bad"}\n'},
        [],
        [("a.json", 2, "i32", 1207), ("a.json", 3, "i32", 1207)],
        {"max_errors": 1},
        fails=True,
    ),
    Case(
        "truncate_columns cuts strings at a character boundary",
        {"a.json": '{"id": "tr", "s": "ééééé", "ch": "abcdef"}\n'},
        [{"id": "tr", "s": "éééé", "ch": "abc"}],
        options={"truncate_columns": True},
    ),
    Case(
        "malformed lines are rejected and reading resumes on the next line",
        {
            "m.json": '{"id": "a"}\n'
            '{"id": "b", oops}\n'
            '{"id": "c"}\n'
            "not json at all\n"
            '{"id": "d"\n'
            '{"id": "e"}\n'
            "12\n"
            '"just a string"\n'
            '{"id": "f"}\n'
        },
        [{"id": "a"}, {"id": "c"}, {"id": "e"}, {"id": "f"}],
        [
            ("m.json", 2, None, 1216),
            ("m.json", 4, None, 1216),
            ("m.json", 5, None, 1216),
            ("m.json", 7, None, 1216),
            ("m.json", 8, None, 1216),
        ],
        {"max_errors": 5},
    ),
    Case(
        "pretty-printed records span lines; the line is where a record ends",
        {
            "p.json": '{\n  "id": "p1",\n  "tags": [\n    "x",\n    "y"\n  ],\n  "i32": 1\n}\n'
            '{"id": "p2"} {"id": "p3"}\n'
            '  {"id": "p4",\n   "nested": {"n": 4}}\n'
        },
        [
            {"id": "p1", "first_tag": "x", "i32": 1},
            {"id": "p2"},
            {"id": "p3"},
            {"id": "p4", "nested_n": 4},
        ],
    ),
    Case(
        "line numbers of rejects inside pretty-printed data",
        {"p.json": '{\n  "id": "q1",\n  "i32": "nope"\n}\n{"id": "q2"}\n'},
        [{"id": "q2"}],
        [("p.json", 4, "i32", 1207)],
        {"max_errors": 1},
    ),
    Case(
        "blank lines, CRLF line ends and whitespace are fine",
        {"w.json": '\n\r\n{"id": "w1"}\r\n   \n\t{"id": "w2"}  \r\n\n'},
        [{"id": "w1"}, {"id": "w2"}],
    ),
    Case(
        "compressed objects by suffix",
        {
            "a.json.gz": '{"id": "gz"}\n',
            "b.json.bz2": '{"id": "bz"}\n',
            "c.json.zst": '{"id": "zs"}\n',
            "d.json": '{"id": "plain"}\n',
        },
        [{"id": "bz"}, {"id": "gz"}, {"id": "plain"}, {"id": "zs"}],
    ),
    Case(
        "invalid UTF-8 rejects its line only",
        {"u.json": b'{"id": "u1"}\n{"id": "u\xff2"}\n{"id": "u3", "s": "\xc3\xa9t\xc3\xa9"}\n'},
        [{"id": "u1"}, {"id": "u3", "s": "été"}],
        [("u.json", 2, None, 1220)],
        {"max_errors": 1},
    ),
    Case(
        "array index paths; out of range or not an array is rejected",
        {
            "i.json": '{"id": "i1", "tags": ["a", "b"]}\n'
            '{"id": "i2", "tags": []}\n'
            '{"id": "i3", "tags": {"0": "x"}}\n'
            '{"id": "i4", "tags": "zz"}\n'
            '{"id": "i5"}\n'
        },
        [{"id": "i1", "first_tag": "a"}, {"id": "i5"}],
        [
            ("i.json", 2, "first_tag", 1216),
            ("i.json", 3, "first_tag", 1216),
            ("i.json", 4, "first_tag", 1216),
        ],
        {"max_errors": 3},
    ),
    Case(
        "epoch seconds",
        {"e.json": '{"id": "e1", "ts": 1549861752, "tz": "1549861752.5", "day": 86400}\n'},
        [
            {
                "id": "e1",
                "ts": dt.datetime(2019, 2, 11, 5, 9, 12),
                "tz": dt.datetime(2019, 2, 11, 5, 9, 12, 500000, tzinfo=UTC),
                "day": dt.date(1970, 1, 2),
            }
        ],
        options={"time_format": "epochsecs"},
    ),
    Case(
        "a DATE reads every form TIMEFORMAT 'auto' reads, and is the date in UTC",
        {
            "d.json": '{"id": "d1", "day": "2019-02-11T23:30:00-05:00"}\n'
            '{"id": "d2", "day": "2019-02-11T00:30:00+01:00"}\n'
            '{"id": "d3", "day": "2019-02-11 05:09:12.195Z"}\n'
            '{"id": "d4", "day": "2020-2-3"}\n'
            '{"id": "d5", "day": "12/31/2019 23:59:58"}\n'
            '{"id": "d6", "day": "19960108 040809"}\n'
            '{"id": "d7", "day": "2019-02-29T10:00:00Z"}\n'
        },
        [
            {"id": "d1", "day": dt.date(2019, 2, 12)},
            {"id": "d2", "day": dt.date(2019, 2, 10)},
            {"id": "d3", "day": dt.date(2019, 2, 11)},
            {"id": "d4", "day": dt.date(2020, 2, 3)},
            {"id": "d5", "day": dt.date(2019, 12, 31)},
            {"id": "d6", "day": dt.date(1996, 1, 8)},
        ],
        [("d.json", 7, "day", 1205)],
        {"max_errors": 1},
    ),
    Case(
        "a DATE with a custom time_format reads that format",
        {
            "c.json": '{"id": "c1", "day": "2019-02-11 23:59:59"}\n'
            '{"id": "c2", "day": "2019-02-11"}\n'
        },
        [{"id": "c1", "day": dt.date(2019, 2, 11)}],
        [("c.json", 2, "day", 1205)],
        {"time_format": "YYYY-MM-DD HH:MI:SS", "max_errors": 1},
    ),
    Case(
        "an empty object and an object of blank lines load nothing",
        {"empty.json": "", "blank.json": "\n\n", "one.json": '{"id": "one"}'},
        [{"id": "one"}],
    ),
    Case(
        "objects that are JSON arrays are one row each",
        {"arr.json": '["not", "an object"]\n'},
        [],
        [("arr.json", 1, "id", 1213)],
        {"max_errors": 1},
    ),
    Case(
        "duplicate keys: the first one counts",
        {"dup.json": '{"id": "dup", "i32": 1, "i32": 2}\n'},
        [{"id": "dup", "i32": 1}],
    ),
    Case(
        "NaN and trailing commas: read, then converted by the column's rules",
        {"nan.json": '{"id": "n1", "s": NaN, "tags": ["a",],}\n{"id": "n2", "d": Infinity}\n'},
        [{"id": "n1", "s": "NaN", "first_tag": "a"}],
        [("nan.json", 2, "d", 1208)],
        {"max_errors": 1},
    ),
    Case(
        "SUPER keeps the value; NUL and NaN inside it are rejected",
        {
            "j.json": '{"id": "j1", "j": [1, 2.5, {"a": "b"}]}\n'
            '{"id": "j2", "j": {"x": "\\u0000"}}\n'
            '{"id": "j3", "j": [NaN]}\n'
            '{"id": "j4", "j": null}\n'
            '{"id": "j5", "j": "s"}\n'
        },
        [{"id": "j1", "j": [1, 2.5, {"a": "b"}]}, {"id": "j4"}, {"id": "j5", "j": "s"}],
        [("j.json", 2, "j", 1220), ("j.json", 3, "j", 1224)],
        {"max_errors": 2},
    ),
    Case(
        "SUPER: a key twice and a number beyond a double are rejected; big integers are exact",
        {
            "jd.json": '{"id": "d1", "j": {"k": 1, "k": 2}}\n'
            '{"id": "d2", "j": [{"a": {"x": 1, "x": 1}}]}\n'
            '{"id": "d3", "j": 1E400}\n'
            '{"id": "d4", "j": {"n": [1, -1e400]}}\n'
            '{"id": "d5", "j": {"n": 123456789012345678901234567890, "m": 2.5}}\n'
            '{"id": "d6", "j": {"k": 1, "K": 2}, "i32": 1, "i32": 2}\n'
        },
        [
            {"id": "d5", "j": {"n": 123456789012345678901234567890, "m": 2.5}},
            {"id": "d6", "j": {"k": 1, "K": 2}, "i32": 1},
        ],
        [
            ("jd.json", 1, "j", 1224),
            ("jd.json", 2, "j", 1224),
            ("jd.json", 3, "j", 1224),
            ("jd.json", 4, "j", 1224),
        ],
        {"max_errors": 4},
    ),
    Case(
        "numbers beyond a double keep their text for the column's rule",
        {
            "big.json": '{"id": "b1", "s": 1E400}\n'
            '{"id": "b2", "d": 1E400}\n'
            '{"id": "b3", "dec": -1e400}\n'
            '{"id": "b4", "dec": "1234567.1239"}\n'
        },
        [{"id": "b1", "s": "1E400"}, {"id": "b4", "dec": D("1234567.123")}],
        [("big.json", 2, "d", 1204), ("big.json", 3, "dec", 1204)],
        {"max_errors": 2},
    ),
    Case(
        "unicode text and escapes",
        {"x.json": '{"id": "x1", "s": "日\\n\\u00e9\\""}\n{"id": "x2", "s": "tab\\there"}\n'},
        [{"id": "x1", "s": '日\né"'}, {"id": "x2", "s": "tab\there"}],
    ),
    Case(
        "strings that mean something to a bulk format arrive as they are",
        {
            "c.json": '{"id": "\\\\.", "s": "\\\\."}\n'
            '{"id": "c2", "s": "a\\n\\\\.\\nb"}\n'
            '{"id": "c3", "s": "\\\\N"}\n'
            '{"id": "c4", "s": "\\r"}\n'
            '{"id": "c5", "s": "a\\r\\nb"}\n'
            '{"id": "c6", "s": "\\"\\",\\\\"}\n'
            '{"id": "c7", "s": ""}\n'
            '{"id": "c8", "s": "NULL"}\n'
        },
        [
            {"id": "\\.", "s": "\\."},
            {"id": "c2", "s": "a\n\\.\nb"},
            {"id": "c3", "s": "\\N"},
            {"id": "c4", "s": "\r"},
            {"id": "c5", "s": "a\r\nb"},
            {"id": "c6", "s": '"",\\'},
            {"id": "c7", "s": ""},
            {"id": "c8", "s": "NULL"},
        ],
    ),
    Case(
        "a byte-order mark at the start of an object is skipped; elsewhere it is not JSON",
        {
            "bom.json": b'\xef\xbb\xbf{"id": "bom1"}\n{"id": "bom2"}\n',
            "bom.json.gz": b'\xef\xbb\xbf{"id": "bom3"}\n',
            "bom-pretty.json": b'\xef\xbb\xbf{\n  "id": "bom4"\n}\n',
            "bom-inside.json": b'{"id": "bom5"}\n\xef\xbb\xbf{"id": "bom6"}\n',
        },
        [{"id": "bom1"}, {"id": "bom2"}, {"id": "bom3"}, {"id": "bom4"}, {"id": "bom5"}],
        [("bom-inside.json", 2, None, 1216)],
        {"max_errors": 1},
    ),
]
