"""The conformance table for Parquet and CSV: objects in, rows and rejects out, the same on
every warehouse Arbalest feeds.

Each case names its objects (key -> bytes or text; ``.gz`` keys are compressed by the test),
the copy options, the schema, the rows expected (a dict per row; columns not named are NULL)
and the rejects expected (key, line, column, code). A case with ``error`` fails its step
with a ``PipelineError`` whose message holds that text, and loads nothing.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal as D
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from arbalest import (
    Boolean,
    Date,
    Decimal,
    Double,
    Integer,
    Nested,
    Schema,
    String,
    Timestamp,
    TimestampTZ,
)
from tests.conformance import cases
from tests.fixtures.schemas import NAMED, every_type, fresh_base

UTC = dt.UTC


Base = fresh_base()


#: every field type, named for it (i16 ... j), after a String(10) key
_EVERY_TYPE = every_type(NAMED, id=String(10, primary_key=True), string=8)


class Tab(Base, _EVERY_TYPE):  # type: ignore[misc, valid-type]
    """Every field type, a key with spaces, and a nested class (``nested.n`` in a CSV
    header, a struct in Parquet)."""

    __tablename__ = "formats"

    odd = String(8, key="key with spaces")

    class nested(Nested):
        n = Integer()


class Listed(Base):  # type: ignore[misc, valid-type]
    """A list element by index (Parquet only: CSV has no lists)."""

    __tablename__ = "listed"

    id = String(10, primary_key=True)
    first_tag = String(8, path="$['tags'][0]")
    second_tag = String(8, path="$['tags'][1]")


class Laned(Base):  # type: ignore[misc, valid-type]
    """Field types the Parquet lane takes (no CHAR, no SUPER): a chunk whose values give no
    reject is converted in Arrow, any other by the query, object by object and chunk by
    chunk (``lane`` cases)."""

    __tablename__ = "laned"

    id = String(10, primary_key=True)
    i32 = Integer()
    dec = Decimal(12, 2)
    d = Double()
    b = Boolean()
    s = String(8)
    day = Date()
    ts = Timestamp()
    tz = TimestampTZ()

    class nested(Nested):
        n = Integer()


def parquet(columns: dict[str, pa.Array | list[Any]], **kw: Any) -> bytes:
    """A Parquet object holding ``columns`` (pyarrow infers the types of plain lists)."""
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out, **kw)
    return out.getvalue()


def parquet_groups(columns: dict[str, list[Any]], rows_per_group: int) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out, row_group_size=rows_per_group)
    return out.getvalue()


@dataclass(frozen=True)
class Case(cases.Case):
    """A JSON case's fields (``schema`` in the same place, ``Tab`` unless named), and:"""

    schema: type[Schema] = Tab
    #: The Parquet lane is tried on every chunk, and in small chunks takes some of an
    #: object's and leaves others (with a reject) to the query.
    lane: bool = False
    error: str | None = None  # the step fails with a PipelineError holding this text

    @property
    def format(self) -> str:
        return "parquet" if any(".parquet" in k for k in self.objects) else "csv"


HEADER = "id,i16,i32,i64,dec,r,d,b,ch,s,day,ts,tz,j,key with spaces,nested.n\n"

CSV_CASES = [
    Case(
        "every type from CSV text",
        {
            "a.csv": HEADER + "a,1,-2,9007199254740993,20.259,0.5,2.25,t,x,hello,2019-02-11,"
            '2019-02-11T05:09:12.195Z,1997-12-17 07:37:16-08,"{""k"": [1, ""two"", null]}",'
            "odd,7\n"
        },
        [
            {
                "id": "a",
                "i16": 1,
                "i32": -2,
                "i64": 9007199254740993,
                "dec": D("20.259"),
                "r": 0.5,
                "d": 2.25,
                "b": True,
                "ch": "x  ",
                "s": "hello",
                "day": dt.date(2019, 2, 11),
                "ts": dt.datetime(2019, 2, 11, 5, 9, 12, 195000),
                "tz": dt.datetime(1997, 12, 17, 15, 37, 16, tzinfo=UTC),
                "j": {"k": [1, "two", None]},
                "odd": "odd",
                "nested_n": 7,
            }
        ],
    ),
    Case(
        "header names map by key, in any order; a column no field reads is left out",
        {"a.csv": "s,unused,id,nested.n\nfirst,zzz,h1,3\n"},
        [{"id": "h1", "s": "first", "nested_n": 3}],
    ),
    Case(
        "empty, quoted empty, the null string and blanks",
        {
            "a.csv": "id,s,ch,i32,d,b,j\n"
            "e1,,,,,,\n"
            'e2,"","","","",,""\n'
            "e3,\\N,\\N,\\N,\\N,\\N,\\N\n"
            'e4,"\\N",  ,  , \t,  , \n'
        },
        [
            {"id": "e1", "s": "", "ch": "   "},
            {"id": "e2", "s": "", "ch": "   "},
            {"id": "e3"},
            {"id": "e4", "s": "\\N", "ch": "   "},
        ],
    ),
    Case(
        "empty_as_null and blanks_as_null make CHAR and VARCHAR NULL, quoted fields aside",
        {"a.csv": 'id,s,ch\nn1,,\nn2,"",""\nn3,  ,\t\nn4,"  ","  "\n'},
        [
            {"id": "n1"},
            {"id": "n2", "s": "", "ch": "   "},
            {"id": "n3"},
            {"id": "n4", "s": "  ", "ch": "   "},
        ],
        options={"csv_options": {"empty_as_null": True, "blanks_as_null": True}},
    ),
    Case(
        "null_as names another null string",
        {"a.csv": "id,s,i32\nq1,NULL,NULL\nq2,\\N,5\n"},
        [{"id": "q1"}, {"id": "q2", "s": "\\N", "i32": 5}],
        options={"csv_options": {"null_as": "NULL"}},
    ),
    Case(
        "without a header, fields map by position in column order",
        {
            "a.csv": "p1,1,2,3,4.5,0.25,1.5,no,abc,s,2020-01-01,2020-01-01 10:00,2020-01-01,"
            "[1],o,9\n"
            "p2\n"
            "p3,1,2,3,4.5,0.25,1.5,no,abc,s,2020-01-01,2020-01-01 10:00,2020-01-01,[1],o,9,x\n"
        },
        [
            {
                "id": "p1",
                "i16": 1,
                "i32": 2,
                "i64": 3,
                "dec": D("4.500"),
                "r": 0.25,
                "d": 1.5,
                "b": False,
                "ch": "abc",
                "s": "s",
                "day": dt.date(2020, 1, 1),
                "ts": dt.datetime(2020, 1, 1, 10, 0),
                "tz": dt.datetime(2020, 1, 1, tzinfo=UTC),
                "j": [1],
                "odd": "o",
                "nested_n": 9,
            }
        ],
        [("a.csv", 2, None, 1203), ("a.csv", 3, None, 1202)],
        {"csv_options": {"header": False}, "max_errors": 2},
    ),
    Case(
        "too few or too many fields reject the record at the line it starts on",
        {"a.csv": 'id,i32,s\nf1,1,a\nf2,2\nf3,3,c,d\n\nf4,"4","mu\nlti"\nf5,x,e\n'},
        [{"id": "f1", "i32": 1, "s": "a"}, {"id": "f4", "i32": 4, "s": "mu\nlti"}],
        [
            ("a.csv", 3, None, 1203),
            ("a.csv", 4, None, 1202),
            ("a.csv", 8, "i32", 1207),
        ],
        {"max_errors": 3},
    ),
    Case(
        "quotes: doubled inside, blanks around ignored, line ends kept, CRLF lines",
        {
            "a.csv": 'id,s,key with spaces\r\nq1, "a,b" ,"x""y"\r\nq2,"tw\r\no",o"k\r\n'
            'q3,"ab"c,z\r\nq4,ok,"fine"\r\n'
        },
        [
            {"id": "q1", "s": "a,b", "odd": 'x"y'},
            {"id": "q2", "s": "tw\r\no", "odd": 'o"k'},
            {"id": "q4", "s": "ok", "odd": "fine"},
        ],
        [("a.csv", 5, None, 1216)],
        {"max_errors": 1},
    ),
    Case(
        "a quoted field still open at the end of the object rejects the rest",
        {"a.csv": 'id,s\nu1,a\nu2,"never closed\nu3,b\n'},
        [{"id": "u1", "s": "a"}],
        [("a.csv", 3, None, 1216)],
        {"max_errors": 1},
    ),
    Case(
        "delimiter and quote options, and .tsv objects with a tab",
        {"a.csv": "id;s;i32\n'a;b';'it''s';7\n"},
        [{"id": "a;b", "s": "it's", "i32": 7}],
        options={"csv_options": {"delimiter": ";", "quote": "'"}, "format": "csv"},
    ),
    Case(
        "tab-separated objects by suffix",
        {"b.tsv": "id\ts\tch\nt1\t a \tx\n"},
        [{"id": "t1", "s": " a ", "ch": "x  "}],
    ),
    Case(
        "ignore_header skips lines before the header; line numbers still count them",
        {"a.csv": "exported by a tool\nsecond line\nid,i32\ni1,1\ni2,x\n"},
        [{"id": "i1", "i32": 1}],
        [("a.csv", 5, "i32", 1207)],
        {"csv_options": {"ignore_header": 2}, "max_errors": 1},
    ),
    Case(
        "UTF-16 with a byte-order mark",
        {"a.csv": "id,s\nw1,été\n".encode("utf-16")},
        [{"id": "w1", "s": "été"}],
        options={"csv_options": {"encoding": "utf16"}},
    ),
    Case(
        "UTF-8 byte-order mark skipped; a line that is not UTF-8 is rejected alone",
        {"a.csv": b"\xef\xbb\xbfid,s\nb1,ok\nb2,\xff\xfe\nb3,\xc3\xa9\n"},
        [{"id": "b1", "s": "ok"}, {"id": "b3", "s": "é"}],
        [("a.csv", 3, None, 1220)],
        {"max_errors": 1},
    ),
    Case(
        "compressed objects by suffix",
        {"a.csv.gz": "id,i32\nz1,5\n"},
        [{"id": "z1", "i32": 5}],
    ),
    Case(
        "values take COPY's text rules: rejects at their line and column",
        {
            "bad.csv": "id,i16,b,s,day,ts,ch,j\n"
            "ok1,,,,,,,\n"
            "x1,40000,,,,,,\n"
            "x2,,maybe,,,,,\n"
            "x3,,,much too long,,,,\n"
            "\\N,,,,,,,\n"
            "x5,,,,2019-02-30,,,\n"
            "x6,,,,,yesterday,,\n"
            "x7,,,,,,é,\n"
            "x8,,,,,,,{oops\n"
            "ok2,,,,,,,\n"
        },
        [{"id": "ok1", "s": "", "ch": "   "}, {"id": "ok2", "s": "", "ch": "   "}],
        [
            ("bad.csv", 3, "i16", 1222),
            ("bad.csv", 4, "b", 1210),
            ("bad.csv", 5, "s", 1204),
            ("bad.csv", 6, "id", 1213),
            ("bad.csv", 7, "day", 1205),
            ("bad.csv", 8, "ts", 1206),
            ("bad.csv", 9, "ch", 1220),
            ("bad.csv", 10, "j", 1224),
        ],
        {"max_errors": 8},
    ),
    Case(
        "one reject too many fails the step and loads nothing",
        {"a.csv": "id,i32\nok,1\nx,bad\ny,bad\n"},
        [],
        [("a.csv", 3, "i32", 1207), ("a.csv", 4, "i32", 1207)],
        {"max_errors": 1},
        fails=True,
    ),
    Case(
        "time_format applies to CSV text",
        {"a.csv": "id,ts,day\nt1,1549861752,86400\n"},
        [{"id": "t1", "ts": dt.datetime(2019, 2, 11, 5, 9, 12), "day": dt.date(1970, 1, 2)}],
        options={"time_format": "epochsecs"},
    ),
    Case(
        "truncate_columns cuts strings at a character boundary",
        {"a.csv": "id,s,ch\ntr,ééééé,abcdef\n"},
        [{"id": "tr", "s": "éééé", "ch": "abc"}],
        options={"truncate_columns": True},
    ),
    Case(
        "a header without a NOT NULL field's column fails the step, naming the object",
        {"a.csv": "s\nx\n"},
        [],
        error="a.csv': the header has no column 'id'",
    ),
    Case(
        "a header naming a field's column twice fails the step",
        {"a.csv": "id,s,s\nx,1,2\n"},
        [],
        error="the header names 's' more than once",
    ),
    Case(
        "an empty object, and one with a header only, load nothing",
        {"a.csv": "", "b.csv": "id,s\n"},
        [],
    ),
]


TS = dt.datetime(2019, 2, 11, 5, 9, 12, 195000)

PARQUET_CASES = [
    Case(
        "every type from its own Parquet type",
        {
            "a.parquet": parquet(
                {
                    "id": ["a"],
                    "i16": pa.array([1], pa.int16()),
                    "i32": pa.array([-2], pa.int32()),
                    "i64": pa.array([9007199254740993], pa.int64()),
                    "dec": pa.array([D("20.259")], pa.decimal128(10, 3)),
                    "r": pa.array([0.5], pa.float32()),
                    "d": pa.array([2.25], pa.float64()),
                    "b": [True],
                    "ch": ["x"],
                    "s": ["hello"],
                    "day": pa.array([dt.date(2019, 2, 11)], pa.date32()),
                    "ts": pa.array([TS], pa.timestamp("us")),
                    "tz": pa.array([TS.replace(tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
                    "j": pa.array([{"k": [1, 2], "t": "two"}]),
                    "key with spaces": ["odd"],
                    "nested": pa.array([{"n": 7}], pa.struct([("n", pa.int32())])),
                }
            )
        },
        [
            {
                "id": "a",
                "i16": 1,
                "i32": -2,
                "i64": 9007199254740993,
                "dec": D("20.259"),
                "r": 0.5,
                "d": 2.25,
                "b": True,
                "ch": "x  ",
                "s": "hello",
                "day": dt.date(2019, 2, 11),
                "ts": TS,
                "tz": TS.replace(tzinfo=UTC),
                "j": {"k": [1, 2], "t": "two"},
                "odd": "odd",
                "nested_n": 7,
            }
        ],
    ),
    Case(
        "narrower types widen without loss",
        {
            "a.parquet": parquet(
                {
                    "id": ["w"],
                    "i16": pa.array([-128], pa.int8()),
                    "i32": pa.array([65535], pa.uint16()),
                    "i64": pa.array([2147483647], pa.int32()),
                    "dec": pa.array([D("-123.45")], pa.decimal128(5, 2)),
                    "d": pa.array([0.1], pa.float32()),
                    "j": pa.array([12], pa.int64()),
                }
            )
        },
        [
            {
                "id": "w",
                "i16": -128,
                "i32": 65535,
                "i64": 2147483647,
                "dec": D("-123.450"),
                "d": 0.10000000149011612,
                "j": 12,
            }
        ],
    ),
    Case(
        "timestamps: instants, local times, milliseconds, nanoseconds cut, INT96",
        {
            "a.parquet": parquet(
                {
                    "id": ["t1", "t2"],
                    "ts": pa.array([TS.replace(tzinfo=UTC), None], pa.timestamp("ms", tz="UTC")),
                    "tz": pa.array([1_549_861_752_195_999_999, -1], pa.timestamp("ns")),
                }
            ),
            "b.parquet": parquet(
                {"id": ["t3"], "ts": pa.array([TS], pa.timestamp("ns"))},
                use_deprecated_int96_timestamps=True,
            ),
        },
        [
            {"id": "t1", "ts": TS, "tz": dt.datetime(2019, 2, 11, 5, 9, 12, 195999, tzinfo=UTC)},
            {"id": "t2", "tz": dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)},
            {"id": "t3", "ts": TS},
        ],
    ),
    Case(
        "strings take the column's rules: rejects at the row's number",
        {
            "a.parquet": parquet(
                {
                    "id": ["ok1", "x1", "x2", None, "x4", "ok2"],
                    "s": ["", "much too long", None, None, "nul\x00", "fine"],
                    "ch": ["ab", None, "é", None, None, None],
                }
            )
        },
        [{"id": "ok1", "s": "", "ch": "ab "}, {"id": "ok2", "s": "fine"}],
        [
            ("a.parquet", 2, "s", 1204),
            ("a.parquet", 3, "ch", 1220),
            ("a.parquet", 4, "id", 1213),
            ("a.parquet", 5, "s", 1220),
        ],
        {"max_errors": 4},
    ),
    Case(
        "truncate_columns cuts Parquet strings too",
        {"a.parquet": parquet({"id": ["tr"], "s": ["ééééé"], "ch": ["abcdef"]})},
        [{"id": "tr", "s": "éééé", "ch": "abc"}],
        options={"truncate_columns": True},
    ),
    Case(
        "one reject too many fails the step and loads nothing",
        {"a.parquet": parquet({"id": ["ok", None, None]})},
        [],
        [("a.parquet", 2, "id", 1213), ("a.parquet", 3, "id", 1213)],
        {"max_errors": 1},
        fails=True,
    ),
    Case(
        "a column the object lacks is NULL; columns no field reads are left out",
        {"a.parquet": parquet({"id": ["m1"], "other": [1.5], "nested": [{"x": 1}]})},
        [{"id": "m1"}],
    ),
    Case(
        "structs and lists load into SUPER as JSON",
        {
            "a.parquet": parquet(
                {"id": ["j1", "j2", "j3"], "j": [["a", "b"], [], None]},
            )
        },
        [{"id": "j1", "j": ["a", "b"]}, {"id": "j2", "j": []}, {"id": "j3"}],
    ),
    Case(
        "list elements by index; an index out of range rejects the row",
        {"a.parquet": parquet({"id": ["l1", "l2", "l3"], "tags": [["a", "b"], ["c"], None]})},
        [{"id": "l1", "first_tag": "a", "second_tag": "b"}, {"id": "l3"}],
        [("a.parquet", 2, "second_tag", 1216)],
        {"max_errors": 1},
        schema=Listed,
    ),
    Case(
        "rows are numbered per object across row groups, in load order",
        {
            "a.parquet": parquet_groups({"id": ["r1", "r2", "r3", None, "r5"]}, 2),
            "b.parquet": parquet_groups({"id": [None, "r7"]}, 1),
        },
        [{"id": "r1"}, {"id": "r2"}, {"id": "r3"}, {"id": "r5"}, {"id": "r7"}],
        [("a.parquet", 4, "id", 1213), ("b.parquet", 1, "id", 1213)],
        {"max_errors": 2},
    ),
    Case(
        "dates and times outside years 1 to 9999 are rejected",
        {
            "a.parquet": parquet(
                {
                    "id": ["d1", "d2"],
                    "day": pa.array([dt.date(2000, 1, 1), None], pa.date32()),
                    "ts": pa.array([None, 253402300800000000], pa.timestamp("us")),
                }
            ),
            "b.parquet": parquet({"id": ["d3"], "day": pa.array([2932897], pa.date32())}),
        },
        [{"id": "d1", "day": dt.date(2000, 1, 1)}],
        [("a.parquet", 2, "ts", 1206), ("b.parquet", 1, "day", 1205)],
        {"max_errors": 2},
    ),
    Case(
        "a column whose type does not fit its field fails the step, naming both",
        {"a.parquet": parquet({"id": ["x"], "i32": pa.array([1], pa.int64())})},
        [],
        error="a.parquet': field 'i32' (INTEGER) reads $['i32'], which is Parquet int64",
    ),
    Case(
        "a string column does not load into a number field",
        {"a.parquet": parquet({"id": ["x"], "d": ["1.5"]})},
        [],
        error="which is Parquet string",
    ),
    Case(
        "a NOT NULL field's column missing fails the step",
        {"a.parquet": parquet({"s": ["x"]})},
        [],
        error="a.parquet' has no column $['id'] for the NOT NULL field 'id'",
    ),
    Case(
        "an object named .parquet that is not Parquet fails the step",
        {"a.parquet": '{"id": "x"}\n'},
        [],
        error="'in/a.parquet' is not a Parquet file",
    ),
    Case(
        "objects of two formats under one source fail the step",
        {"a.parquet": parquet({"id": ["x"]}), "b.csv": "id\ny\n"},
        [],
        error="more than one format",
    ),
    Case(
        "an object of another format than the step's fails the step",
        {"a.parquet": parquet({"id": ["x"]}), "b.json": '{"id": "y"}\n'},
        [],
        options={"format": "parquet"},
        error="'in/b.json' is a JSON object by its suffix, but the step reads format='parquet'",
    ),
]


def _laned(ids: list[str | None], **changes: list[Any] | pa.Array) -> bytes:
    """A Parquet object of ``Laned``'s columns, in row groups of 2 rows, the values of row
    ``k`` derived from ``k`` unless ``changes`` gives a column."""
    n = len(ids)
    columns: dict[str, Any] = {
        "id": ids,
        "i32": pa.array([k * 10 for k in range(n)], pa.int32()),
        "dec": pa.array([D(f"{k}.25") for k in range(n)], pa.decimal128(12, 2)),
        "d": pa.array([k / 4 for k in range(n)], pa.float64()),
        "b": pa.array([k % 2 == 0 for k in range(n)], pa.bool_()),
        "s": [f"s{k}" for k in range(n)],
        "day": pa.array([dt.date(2024, 1, 1 + k) for k in range(n)], pa.date32()),
        "ts": pa.array([dt.datetime(2024, 1, 1, k) for k in range(n)], pa.timestamp("us")),
        "tz": pa.array(
            [dt.datetime(2024, 1, 1, k, tzinfo=UTC) for k in range(n)], pa.timestamp("ms", "UTC")
        ),
        "nested": pa.array([{"n": k} for k in range(n)], pa.struct([("n", pa.int32())])),
    }
    columns.update(changes)
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out, row_group_size=2)
    return out.getvalue()


def _laned_row(k: int, id: str, **changes: Any) -> dict[str, Any]:
    """Row ``k`` of ``_laned``'s object, as loaded."""
    row = {
        "id": id,
        "i32": k * 10,
        "dec": D(f"{k}.25"),
        "d": k / 4,
        "b": k % 2 == 0,
        "s": f"s{k}",
        "day": dt.date(2024, 1, 1 + k),
        "ts": dt.datetime(2024, 1, 1, k),
        "tz": dt.datetime(2024, 1, 1, k, tzinfo=UTC),
        "nested_n": k,
    }
    row.update(changes)
    return row


LANE_CASES = [
    Case(
        "the Parquet lane leaves a chunk with an overlong string to the query, mid-object",
        {
            "a.parquet": _laned(
                ["p0", "p1", "p2", "p3", "p4"], s=["s0", "s1", "much too long", "s3", None]
            ),
            "b.parquet": _laned(["q0", "q1", "q2"]),
        },
        [
            *(_laned_row(k, f"p{k}") for k in (0, 1, 3)),
            _laned_row(4, "p4", s=None),
            *(_laned_row(k, f"q{k}") for k in range(3)),
        ],
        [("a.parquet", 3, "s", 1204)],
        {"max_errors": 1},
        schema=Laned,
        lane=True,
    ),
    Case(
        "the Parquet lane leaves NULL in a NOT NULL field, NUL and a year beyond 9999 to the "
        "query; the chunks between are taken",
        {
            "a.parquet": _laned(
                ["r0", None, "r2", "r3", "r4", "r5", "r6"],
                s=["s0", "s1", "s2", "nul\x00", "s4", "s5", "s6"],
                ts=pa.array(
                    [dt.datetime(2024, 1, 1, k) for k in range(5)] + [None, None],
                    pa.timestamp("us"),
                ),
                day=pa.array([19723 + k for k in range(6)] + [2932897], pa.date32()),
            ),
        },
        [
            *(_laned_row(k, f"r{k}") for k in (0, 2, 4)),
            _laned_row(5, "r5", ts=None, day=dt.date(2024, 1, 6)),
        ],
        [("a.parquet", 2, "id", 1213), ("a.parquet", 4, "s", 1220), ("a.parquet", 7, "day", 1205)],
        {"max_errors": 3},
        schema=Laned,
        lane=True,
    ),
]

CASES = CSV_CASES + PARQUET_CASES + LANE_CASES
