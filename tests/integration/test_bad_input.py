"""The bad input catalogue: hostile objects through the public ``Pipeline``, on DuckDB and
PostgreSQL.

Each case is one object (its bytes), the schema it is loaded with, and the documented outcome:
the rows in the table and the rejects (line, column, code, value, reason). The outcomes come
from REDSHIFT_COPY.md and DESIGN.md (and, where those are silent, from the choices listed in
docs/loading.md), not from what the code happens to do: a case the code gets wrong is a strict
``xfail`` whose reason starts with ``BUG:``.

For every case and warehouse the test checks that the rows and rejects are exactly those
expected, that the journal records the object with its counts, that a second run loads
nothing, and (where each record is on its own line) that every record is either a row or a
reject. A second test checks that DuckDB and PostgreSQL give the same outcome, value for value.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any, Final

import pytest
import sqlalchemy as sa

from arbalest import (
    BigInt,
    Decimal,
    Double,
    Integer,
    Pipeline,
    PipelineError,
    Real,
    Reject,
    Schema,
    SmallInt,
    String,
    Super,
    journal,
)
from tests.fixtures.schemas import fresh_base

MB: Final = 1024 * 1024
SOURCE: Final = "in"


Base = fresh_base()


class Doc(Base):  # type: ignore[misc, valid-type]
    """The general-purpose schema: a NOT NULL id, a string and a SUPER value."""

    __tablename__ = "bad_doc"
    id = String(16, nullable=False)
    s = String(64)
    j = Super()


class Loose(Base):  # type: ignore[misc, valid-type]
    """Every column nullable: an empty record is a row of NULLs."""

    __tablename__ = "bad_loose"
    id = String(16)
    s = String(64)


class Wide(Base):  # type: ignore[misc, valid-type]
    """Room for long values: deep nesting and records of 4 MB."""

    __tablename__ = "bad_wide"
    id = String(16, nullable=False)
    s = String(65535)
    j = Super()


class Numbers(Base):  # type: ignore[misc, valid-type]
    __tablename__ = "bad_numbers"
    id = String(40, nullable=False)
    i16 = SmallInt()
    i32 = Integer()
    i64 = BigInt()
    dec = Decimal(10, 2)
    r = Real()
    d = Double()
    s = String(40)
    j = Super()


class OddKeys(Base):  # type: ignore[misc, valid-type]
    """Keys that dot notation cannot express, named through ``key=`` and ``path=``."""

    __tablename__ = "bad_keys"
    id = String(16, nullable=False)
    spaced = String(16, key="a key")
    quoted = String(16, key='it\'s "quoted"')
    dotted = String(16, key="a.b")
    bracketed = String(16, key="a[0]")
    bracket_quote = String(16, key="['x']")
    letters = String(16, key="clé_ключ_鍵")
    dollar = String(16, key="$")
    backslash = String(16, key="back\\slash")
    nested_dotted = String(16, path="$['a.b2']['c d']")
    double_quoted = String(16, path='$["it\'s"]')


class Items(Base):  # type: ignore[misc, valid-type]
    """JSONPaths with array indexes, in dot and in bracket notation."""

    __tablename__ = "bad_items"
    id = String(16, nullable=False)
    first = String(16, path="$.items[0].name")
    second = String(16, path="$.items[1].name")
    inner = Integer(path="$['m'][0][1]")


def jtext(value: Any) -> str:
    """The canonical text of a SUPER value: compact JSON, keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=True)


def _keep_duplicates_visible(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys):  # an object that holds a key twice is not one value
        return {"<duplicate keys>": [list(pair) for pair in pairs]}
    return dict(pairs)


def canonical_super(text: str) -> str:
    """A SUPER value read back as text, in canonical form.

    An object holding a key twice stays visible as such; a value nested too deeply for
    Python's JSON reader is compared as its text without whitespace.
    """
    try:
        return jtext(json.loads(text, object_pairs_hook=_keep_duplicates_visible))
    except RecursionError:
        return "".join(text.split())


@dataclass(frozen=True)
class Rej:
    """An expected reject; ``reason`` is a fragment the reason must contain."""

    line: int
    column: str | None
    code: int
    value: str | None
    reason: str


@dataclass(frozen=True)
class Case:
    """One object, the schema it is loaded with, and the documented outcome.

    ``rows`` are dicts of the non-NULL columns (SUPER values as ``jtext``). ``records`` is
    how many records the object holds (each becomes a row or a reject); ``None`` when a
    record can also be split into several rejects, so no such count applies.
    ``bug`` marks the case a strict xfail on ``bug_on``, failing with ``raises``;
    ``differs`` marks the comparison of the two warehouses a strict xfail.
    """

    id: str
    data: bytes
    schema: type[Schema]
    rows: list[dict[str, Any]]
    rejects: list[Rej] = field(default_factory=list)
    records: int | None = -1  # -1: one record per non-blank line
    key: str = "object.json"
    bug: str | None = None
    bug_on: tuple[str, ...] = ("duckdb", "postgresql")
    raises: type[BaseException] = AssertionError  # how the bug shows
    differs: str | None = None

    def __str__(self) -> str:
        return self.id

    @property
    def record_count(self) -> int | None:
        if self.records != -1:
            return self.records
        return sum(1 for line in self.data.split(b"\n") if line.strip(b" \t\r"))


def lines(*records: str | bytes) -> bytes:
    """Newline-delimited records, each followed by a line end."""
    return b"".join((r.encode() if isinstance(r, str) else r) + b"\n" for r in records)


def deep_array(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def deep_object(depth: int) -> str:
    return '{"k":' * depth + "1" + "}" * depth


def padded_record(size: int, *, id: str = "exact", text: str = "x") -> bytes:
    """A record of exactly ``size`` bytes, its bulk in a key no column reads."""
    head = f'{{"id": "{id}", "pad": "'.encode()
    tail = b'"}'
    return head + text.encode() * (size - len(head) - len(tail)) + tail


BIG_LINE: Final = padded_record(5 * MB, id="big")


def _over_8mb() -> tuple[bytes, str, int]:
    """Records of 1 KB, then one cut short whose line end is the first past 8 MB (where the
    reader cuts an object into chunks); its text, and its line number."""
    records = [padded_record(1023, id=f"r{n:05d}") + b"\n" for n in range(1, 8191)]
    last = '{"id": "last", "pad": "' + "x" * 3000 + '"'
    return b"".join(records) + last.encode() + b"\n", last, len(records) + 1


OVER_8MB, OVER_8MB_LAST, OVER_8MB_LINES = _over_8mb()
EXACT_4MB: Final = padded_record(4 * MB)
DEEP: Final = 1000

INVALID_UTF8: Final = [
    b'{"id": "ff", "s": "\xff"}',  # a byte that never starts a character
    b'{"id": "overlong", "s": "\xc0\xaf"}',  # an overlong encoding of '/'
    b'{"id": "surrogate", "s": "\xed\xa0\x80"}',  # U+D800 encoded as UTF-8
    b'{"id": "above", "s": "\xf4\x90\x80\x80"}',  # beyond U+10FFFF
    b'{"id": "cut", "s": "\xc3"}',  # a character cut short
    b'{"id": "in key", "\xfe": 1}',  # in a key no column reads
]


def utf8_reject(line: int, raw: bytes) -> Rej:
    return Rej(line, None, 1220, raw.decode("utf-8", errors="replace"), "Invalid UTF-8")


def bad_json(line: int, text: str) -> Rej:
    return Rej(line, None, 1216, text, "Invalid JSON")


CASES: Final[list[Case]] = [
    # --- malformed and truncated JSON ------------------------------------------------------
    Case(
        "malformed JSON is rejected line by line",
        lines(
            '{"id": "a"}',
            '{"id": "b", oops}',
            '{"id": "c", "s": }',
            '{"id": "d",, "s": "x"}',
            "{'id': 'e'}",
            '{id: "f"}',
            '{"id": "g" "s": "x"}',
            "not json at all",
            '{"id": "h"}',
        ),
        Doc,
        [{"id": "a"}, {"id": "h"}],
        [
            bad_json(2, '{"id": "b", oops}'),
            bad_json(3, '{"id": "c", "s": }'),
            bad_json(4, '{"id": "d",, "s": "x"}'),
            bad_json(5, "{'id': 'e'}"),
            bad_json(6, '{id: "f"}'),
            bad_json(7, '{"id": "g" "s": "x"}'),
            Rej(8, None, 1216, "not json at all", "not a JSON object or array"),
        ],
    ),
    Case(
        "stray text between records on one line is one reject",
        lines('{"id": "a"}, {"id": "b"}', '{"id": "c"}'),
        Doc,
        [{"id": "a"}, {"id": "c"}],
        [Rej(1, None, 1216, ', {"id": "b"}', "Unexpected ','")],
        records=3,
    ),
    Case(
        "an object that ends inside a string: the open record is rejected",
        b'{"id": "a"}\n{"id": "b", "s": "abc',
        Doc,
        [{"id": "a"}],
        # the reason may speak of the open string or of the open record: both are true
        [Rej(2, None, 1216, '{"id": "b", "s": "abc', "")],
    ),
    Case(
        "an object that ends inside a record: the open record is rejected",
        b'{"id": "a"}\n{"id": "b", "s": "abc"',
        Doc,
        [{"id": "a"}],
        [Rej(2, None, 1216, '{"id": "b", "s": "abc"', "Unexpected end of data in a record")],
    ),
    Case(
        "a pretty-printed record cut short at the end of the object",
        b'{"id": "a"}\n{\n  "id": "b",\n  "j": [1, 2',
        Doc,
        [{"id": "a"}],
        [Rej(4, None, 1216, '{\n  "id": "b",\n  "j": [1, 2', "Unexpected end of data")],
        records=2,
    ),
    Case(
        "a truncated line does not swallow the whole object on the next line",
        lines('{"id": "a", "s": "x"', '{"id": "b"}'),
        Doc,
        [{"id": "b"}],
        [Rej(1, None, 1216, '{"id": "a", "s": "x"', "Record is not complete")],
    ),
    Case(
        "two records on one line, with accented letters",
        lines('{"id": "a", "s": "' + "x" * 26 + 'éé"} {"id": "b"}', '{"id": "c"}'),
        Doc,
        [{"id": "a", "s": "x" * 26 + "éé"}, {"id": "b"}, {"id": "c"}],
        records=3,
    ),
    Case(
        "a byte order mark is skipped at the start of an object, and is not JSON elsewhere",
        b"\xef\xbb\xbf" + lines('{"id": "a"}', '\ufeff{"id": "b"}', '{"id": "c"}'),
        Doc,
        [{"id": "a"}, {"id": "c"}],
        [Rej(2, None, 1216, '\ufeff{"id": "b"}', "not a JSON object or array")],
    ),
    Case(
        "raw control characters inside strings are invalid JSON",
        lines('{"id": "a", "s": "tab\there"}', '{"id": "b", "j": "x\x01y"}', '{"id": "c"}'),
        Doc,
        [{"id": "c"}],
        [
            bad_json(1, '{"id": "a", "s": "tab\there"}'),
            bad_json(2, '{"id": "b", "j": "x\x01y"}'),
        ],
    ),
    # --- encodings and NUL -------------------------------------------------------------------
    Case(
        "invalid UTF-8 rejects its line only",
        lines(*INVALID_UTF8, '{"id": "ok", "s": "\xc3\xa9t\xc3\xa9"}'.encode("latin-1")),
        Doc,
        [{"id": "ok", "s": "été"}],
        [utf8_reject(n, raw) for n, raw in enumerate(INVALID_UTF8, start=1)],
    ),
    Case(
        "invalid UTF-8 on a last line without a line end",
        b'{"id": "a"}\n{"id": "b", "s": "\xe2\x82"}',
        Doc,
        [{"id": "a"}],
        [utf8_reject(2, b'{"id": "b", "s": "\xe2\x82"}')],
    ),
    Case(
        "a lone surrogate escape is refused by the JSON reader",
        lines(
            '{"id": "a", "s": "\\ud800"}',
            '{"id": "b", "j": "\\udfff"}',
            '{"id": "c", "s": "\\ud83d\\ude80"}',
        ),
        Doc,
        [{"id": "c", "s": "🚀"}],
        [
            Rej(1, None, 1216, '{"id": "a", "s": "\\ud800"}', "Invalid JSON"),
            Rej(2, None, 1216, '{"id": "b", "j": "\\udfff"}', "Invalid JSON"),
        ],
    ),
    Case(
        "raw NUL bytes: invalid JSON inside a string, stray text outside",
        lines(
            b'{"id": "a", "s": "x\x00y"}',
            b'{"id": "b", "j": "x\x00y"}',
            b'{"id": "c"}\x00',
            b'{"id": "d"}',
        ),
        Doc,
        [{"id": "c"}, {"id": "d"}],
        [
            bad_json(1, '{"id": "a", "s": "x\x00y"}'),
            bad_json(2, '{"id": "b", "j": "x\x00y"}'),
            Rej(3, None, 1216, "\x00", "not a JSON object or array"),
        ],
        records=5,
    ),
    Case(
        "escaped NUL: rejected in a VARCHAR and anywhere in a SUPER value, fine elsewhere",
        lines(
            '{"id": "a", "s": "x\\u0000y"}',
            '{"id": "b", "j": "x\\u0000y"}',
            '{"id": "c", "j": {"k": ["\\u0000"]}}',
            '{"id": "d", "j": {"k\\u0000": 1}}',
            '{"id": "e", "ignored": "\\u0000", "s": "ok"}',
            '{"id": "f", "s": "\\\\u0000", "j": ["\\\\u0000"]}',
        ),
        Doc,
        [
            {"id": "e", "s": "ok"},
            {"id": "f", "s": "\\u0000", "j": jtext(["\\u0000"])},
        ],
        [
            Rej(1, "s", 1220, "x\x00y", "U+0000"),
            Rej(2, "j", 1220, '"x\\u0000y"', "U+0000"),
            Rej(3, "j", 1220, '{"k":["\\u0000"]}', "U+0000"),
            Rej(4, "j", 1220, '{"k\\u0000":1}', "U+0000"),
        ],
    ),
    # --- size and depth ----------------------------------------------------------------------
    Case(
        "a 5 MB record is rejected; the records around it load",
        lines('{"id": "a"}', BIG_LINE, '{"id": "c"}'),
        Doc,
        [{"id": "a"}, {"id": "c"}],
        [Rej(2, None, 1216, BIG_LINE[:1024].decode(), "larger than 4 MB")],
    ),
    Case(
        "a 5 MB record in a compressed object is rejected the same way",
        gzip.compress(lines('{"id": "a"}', BIG_LINE, '{"id": "c"}'), mtime=0),
        Doc,
        [{"id": "a"}, {"id": "c"}],
        [Rej(2, None, 1216, BIG_LINE[:1024].decode(), "larger than 4 MB")],
        records=3,
        key="object.json.gz",
    ),
    Case(
        "a record of exactly 4 MB loads",
        lines('{"id": "a"}', EXACT_4MB),
        Wide,
        [{"id": "a"}, {"id": "exact"}],
    ),
    Case(
        "a record of exactly 4 MB with a CRLF line end loads",
        b'{"id": "a"}\r\n' + EXACT_4MB + b"\r\n",
        Wide,
        [{"id": "a"}, {"id": "exact"}],
    ),
    Case(
        "a pretty-printed record over 4 MB is one reject, on its last line",
        b'{"id": "a"}\n{\n  "id": "big",\n  "pad": "' + b"x" * (5 * MB) + b'"\n}\n{"id": "c"}\n',
        Doc,
        [{"id": "a"}, {"id": "c"}],
        [
            Rej(
                5,
                None,
                1216,
                ('{\n  "id": "big",\n  "pad": "' + "x" * 1024)[:1024],
                "larger than 4 MB",
            )
        ],
        records=3,
    ),
    Case(
        "an object over 8 MB whose last record is cut short",
        OVER_8MB,
        Doc,
        [{"id": f"r{n:05d}"} for n in range(1, OVER_8MB_LINES)],
        [
            Rej(
                OVER_8MB_LINES,
                None,
                1216,
                OVER_8MB_LAST[:1024],
                "Unexpected end of data in a record",
            )
        ],
    ),
    Case(
        "1,000-deep nesting in extracted columns loads whole",
        lines(f'{{"id": "a", "j": {deep_array(DEEP)}, "s": {deep_object(DEEP)}}}', '{"id": "b"}'),
        Wide,
        [{"id": "a", "j": deep_array(DEEP), "s": deep_object(DEEP)}, {"id": "b"}],
    ),
    Case(
        "1,000-deep nesting in a key no column reads is ignored",
        lines(
            f'{{"id": "a", "x": {deep_array(DEEP)}, "s": "ok"}}',
            f'{{"id": "b", "y": {deep_object(DEEP)}}}',
        ),
        Doc,
        [{"id": "a", "s": "ok"}, {"id": "b"}],
    ),
    Case(
        "a malformed record with 1,000-deep nesting is a reject, not a crash",
        lines(f'{{"id": "a", "x": {deep_array(DEEP)}, oops}}', '{"id": "b"}'),
        Doc,
        [{"id": "b"}],
        [bad_json(1, f'{{"id": "a", "x": {deep_array(DEEP)}, oops}}'[:1024])],
    ),
    Case(
        "a record continued by a 1,000-deep line loads",
        lines('{"id": "a", "x":', deep_object(DEEP) + "}", '{"id": "b"}'),
        Doc,
        [{"id": "a"}, {"id": "b"}],
        records=2,
    ),
    # --- numbers -----------------------------------------------------------------------------
    Case(
        "numbers beyond each column type",
        lines(
            '{"id": "i16 32767", "i16": 32767}',
            '{"id": "i16 32768", "i16": 32768}',
            '{"id": "i16 -32769", "i16": -32769}',
            '{"id": "i16 1e400", "i16": 1e400}',
            '{"id": "i32 2147483648", "i32": 2147483648}',
            '{"id": "i32 -1e400", "i32": -1e400}',
            '{"id": "i64 9223372036854775807", "i64": 9223372036854775807}',
            '{"id": "i64 9223372036854775808", "i64": 9223372036854775808}',
            '{"id": "i64 huge", "i64": 99999999999999999999999}',
            '{"id": "i64 1e400", "i64": 1e400}',
            '{"id": "dec 99999999.999", "dec": 99999999.999}',
            '{"id": "dec 100000000", "dec": 100000000}',
            '{"id": "dec huge", "dec": 99999999999999999999999}',
            '{"id": "dec 1e400", "dec": 1e400}',
            '{"id": "r 3.5e38", "r": 3.5e38}',
            '{"id": "r 1e400", "r": 1e400}',
            '{"id": "d 1e400", "d": 1e400}',
            '{"id": "d -1e400", "d": -1e400}',
            '{"id": "d huge", "d": 99999999999999999999999}',
            '{"id": "d 1e-400", "d": 1e-400}',
            '{"id": "s huge", "s": 99999999999999999999999}',
            '{"id": "j huge", "j": 99999999999999999999999}',
            '{"id": "i32 string", "i32": "99999999999999999999999"}',
            '{"id": "dec 1e307", "dec": 1e307}',
            '{"id": "i32 5000 digits", "i32": "' + "1" * 5000 + '"}',
        ),
        Numbers,
        [
            {"id": "i16 32767", "i16": 32767},
            {"id": "i64 9223372036854775807", "i64": 9223372036854775807},
            {"id": "dec 99999999.999", "dec": D("99999999.99")},
            {"id": "d huge", "d": 1e23},
            {"id": "d 1e-400", "d": 0.0},
            {"id": "s huge", "s": "99999999999999999999999"},
            {"id": "j huge", "j": "99999999999999999999999"},
        ],
        [
            Rej(2, "i16", 1222, "32768", "Integer overflow (type SMALLINT)"),
            Rej(3, "i16", 1222, "-32769", "Integer overflow (type SMALLINT)"),
            Rej(4, "i16", 1207, "1e400", "Invalid digit (type SMALLINT)"),
            Rej(5, "i32", 1222, "2147483648", "Integer overflow (type INTEGER)"),
            Rej(6, "i32", 1207, "-1e400", "Invalid digit (type INTEGER)"),
            Rej(8, "i64", 1222, "9223372036854775808", "Integer overflow (type BIGINT)"),
            Rej(9, "i64", 1222, "99999999999999999999999", "Integer overflow (type BIGINT)"),
            Rej(10, "i64", 1207, "1e400", "Invalid digit (type BIGINT)"),
            Rej(
                12,
                "dec",
                1204,
                "100000000",
                "Value out of range for the column's type (type DECIMAL(10,2))",
            ),
            Rej(13, "dec", 1204, "99999999999999999999999", "(type DECIMAL(10,2))"),
            Rej(
                14,
                "dec",
                1204,
                "1e400",
                "Value out of range for the column's type (type DECIMAL(10,2))",
            ),
            Rej(15, "r", 1204, "3.5e38", "Value out of range for the column's type (type REAL)"),
            Rej(16, "r", 1204, "1e400", "Value out of range for the column's type (type REAL)"),
            Rej(17, "d", 1204, "1e400", "Value out of range for the column's type (type DOUBLE)"),
            Rej(18, "d", 1204, "-1e400", "Value out of range for the column's type (type DOUBLE)"),
            Rej(23, "i32", 1222, "99999999999999999999999", "Integer overflow (type INTEGER)"),
            Rej(24, "dec", 1204, "1e307", "(type DECIMAL(10,2))"),
            Rej(25, "i32", 1222, "1" * 1024, "Integer overflow (type INTEGER)"),
        ],
    ),
    Case(
        "a number beyond a double inside a SUPER value",
        lines('{"id": "a", "j": 1e400}', '{"id": "b", "j": [1, -1e400]}', '{"id": "c"}'),
        Numbers,
        [{"id": "c"}],
        [
            Rej(1, "j", 1224, "1e400", "(type SUPER)"),
            Rej(2, "j", 1224, "[1,-1e400]", "(type SUPER)"),
        ],
    ),
    Case(
        "NaN, Infinity and -Infinity go through each column's rule",
        lines(
            '{"id": "d NaN", "d": NaN}',
            '{"id": "d Infinity", "d": Infinity}',
            '{"id": "r -Infinity", "r": -Infinity}',
            '{"id": "dec NaN", "dec": NaN}',
            '{"id": "i32 Infinity", "i32": Infinity}',
            '{"id": "s NaN", "s": NaN}',
            '{"id": "s -Infinity", "s": -Infinity}',
            '{"id": "j NaN", "j": NaN}',
            '{"id": "j nested", "j": {"a": [1, {"b": -Infinity}]}}',
            '{"id": "d string", "d": "NaN"}',
            '{"id": "j string", "j": "Infinity"}',
        ),
        Numbers,
        [
            {"id": "s NaN", "s": "NaN"},
            {"id": "s -Infinity", "s": "-Infinity"},
            {"id": "j string", "j": jtext("Infinity")},
        ],
        [
            Rej(1, "d", 1208, "NaN", "Invalid float value (type DOUBLE)"),
            Rej(2, "d", 1208, "Infinity", "Invalid float value (type DOUBLE)"),
            Rej(3, "r", 1208, "-Infinity", "Invalid float value (type REAL)"),
            Rej(4, "dec", 1207, "NaN", "Invalid digit (type DECIMAL(10,2))"),
            Rej(5, "i32", 1207, "Infinity", "Invalid digit (type INTEGER)"),
            Rej(8, "j", 1224, "NaN", "NaN or Infinity"),
            Rej(9, "j", 1224, '{"a":[1,{"b":-Infinity}]}', "NaN or Infinity"),
            Rej(10, "d", 1208, "NaN", "Invalid float value (type DOUBLE)"),
        ],
    ),
    # --- keys and empty records --------------------------------------------------------------
    Case(
        "duplicate keys: the first one counts",
        lines(
            '{"id": "a", "s": "first", "s": "second"}',
            '{"id": "b", "id": "c"}',
            '{"id": "d", "s": null, "s": "second"}',
        ),
        Doc,
        [{"id": "a", "s": "first"}, {"id": "b"}, {"id": "d"}],
    ),
    Case(
        "duplicate keys inside a SUPER value: rejected, as every warehouse would store it "
        "differently",
        lines(
            '{"id": "a", "j": {"k": 1, "k": 2}}',
            '{"id": "b", "j": [{"x": {"k": 1, "k": 1}}]}',
            '{"id": "c", "j": {"k": 1, "K": 2}, "s": "first", "s": "second"}',
        ),
        Doc,
        [{"id": "c", "j": jtext({"k": 1, "K": 2}), "s": "first"}],
        [
            Rej(1, "j", 1224, '{"k":1,"k":2}', "a key twice in one object"),
            Rej(2, "j", 1224, '[{"x":{"k":1,"k":1}}]', "(type SUPER)"),
        ],
    ),
    Case(
        "an empty object is NULL in every column: a reject for a NOT NULL one",
        lines("{}", "[]", '{"id": ""}', '{"id": null}'),
        Doc,
        [{"id": ""}],
        [
            Rej(1, "id", 1213, None, "Missing data for not-null field"),
            Rej(2, "id", 1213, None, "Missing data for not-null field"),
            Rej(4, "id", 1213, None, "Missing data for not-null field"),
        ],
    ),
    Case(
        "an empty object is a row of NULLs when every column is nullable",
        lines("{}", "{ }", '{"other": 1}'),
        Loose,
        [{}, {}, {}],
    ),
    Case("a zero-byte object loads nothing", b"", Doc, [], records=0),
    Case("an object of blank lines loads nothing", b"\n\r\n  \n\t\n", Doc, [], records=0),
    Case(
        "keys with spaces, quotes, dots, brackets and other letters",
        lines(
            json.dumps(
                {
                    "id": "k1",
                    "a key": "spaced",
                    'it\'s "quoted"': "quoted",
                    "a.b": "dotted",
                    "a[0]": "bracketed",
                    "['x']": "brq",
                    "clé_ключ_鍵": "letters",
                    "$": "dollar",
                    "back\\slash": "backslash",
                    "a.b2": {"c d": "nested"},
                    "it's": "dq",
                },
                ensure_ascii=False,
            ),
            # near misses: none of these is one of the keys above
            json.dumps(
                {
                    "id": "k2",
                    "a": {"b": "x", "key": "x", "b2": {"c d": "x"}},
                    "a key ": "x",
                    "A KEY": "x",
                    "a\u00a0key": "x",
                    "cle_ключ_鍵": "x",
                    'it\'s \\"quoted\\"': "x",
                    "a[1]": "x",
                    "'x'": "x",
                },
                ensure_ascii=False,
            ),
        ),
        OddKeys,
        [
            {
                "id": "k1",
                "spaced": "spaced",
                "quoted": "quoted",
                "dotted": "dotted",
                "bracketed": "bracketed",
                "bracket_quote": "brq",
                "letters": "letters",
                "dollar": "dollar",
                "backslash": "backslash",
                "nested_dotted": "nested",
                "double_quoted": "dq",
            },
            {"id": "k2"},
        ],
    ),
    # --- array indexes in JSONPaths ----------------------------------------------------------
    Case(
        "array indexes: in range, out of range, not an array, null on the way",
        lines(
            '{"id": "a1", "items": [{"name": "x"}, {"name": "y"}], "m": [[1, 2]]}',
            '{"id": "a2", "items": [{"name": "x"}]}',
            '{"id": "a3", "items": []}',
            '{"id": "a4", "items": {"0": {"name": "x"}}}',
            '{"id": "a5", "items": null}',
            '{"id": "a6"}',
            '{"id": "a7", "items": [{"nom": "x"}, "y"]}',
            '{"id": "a8", "items": [null, {"name": 7}], "m": [null]}',
        ),
        Items,
        [
            {"id": "a1", "first": "x", "second": "y", "inner": 2},
            {"id": "a5"},
            {"id": "a6"},
            {"id": "a7"},
            {"id": "a8", "second": "7"},
        ],
        [
            Rej(2, "second", 1216, '[{"name":"x"}]', "Not an array or index out of range"),
            Rej(3, "first", 1216, "[]", "Not an array or index out of range"),
            Rej(4, "first", 1216, '{"0":{"name":"x"}}', "Not an array or index out of range"),
        ],
    ),
    Case(
        "an index into a string is rejected with the string as its value",
        lines('{"id": "a", "items": "abc"}'),
        Items,
        [],
        [Rej(1, "first", 1216, "abc", "Not an array or index out of range")],
    ),
    Case(
        "an inner index out of range is reported with the array it indexes",
        lines('{"id": "a", "m": [[1], 5]}', '{"id": "b", "m": [5]}'),
        Items,
        [],
        [
            Rej(1, "inner", 1216, "[1]", "Not an array or index out of range"),
            Rej(2, "inner", 1216, "5", "Not an array or index out of range"),
        ],
    ),
]

BACKENDS: Final = ("duckdb", "postgresql")
_BACKEND_MARKS: Final = {"duckdb": pytest.mark.duckdb, "postgresql": pytest.mark.postgres}


def _case_params() -> list[Any]:
    params = []
    for case in CASES:
        for backend in BACKENDS:
            marks = [_BACKEND_MARKS[backend]]
            if case.bug is not None and backend in case.bug_on:
                marks.append(pytest.mark.xfail(strict=True, raises=case.raises, reason=case.bug))
            params.append(pytest.param(case, backend, marks=marks, id=f"{case.id}-{backend}"))
    return params


def _compare_params() -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.duckdb, pytest.mark.postgres]
        if case.differs is not None:
            marks.append(pytest.mark.xfail(strict=True, reason=case.differs))
        params.append(pytest.param(case, marks=marks, id=case.id))
    return params


# --- running a case --------------------------------------------------------------------------


Row = tuple[Any, ...]
RejectFacts = tuple[str, int, str | None, str | None, str, int]


@dataclass(frozen=True)
class Outcome:
    """What one load gave: the normalised rows and the rejects, or the error it raised."""

    rows: list[Row]
    rejects: list[RejectFacts]
    error: str | None = None


def _normalisers(schema: type[Schema]) -> list[Callable[[Any], Any]]:
    out: list[Callable[[Any], Any]] = []
    for spec in schema.__fields__:
        rule = spec.rule.type_name
        if rule == "REAL":
            out.append(lambda v: None if v is None else struct.unpack("f", struct.pack("f", v))[0])
        elif rule == "SUPER":
            out.append(lambda v: None if v is None else canonical_super(v))
        elif rule == "TIMESTAMPTZ":
            out.append(lambda v: None if v is None else v.astimezone(dt.UTC))
        else:
            out.append(lambda v: v)
    return out


def _sort_key(row: Row) -> tuple[bool, str]:
    return (row[0] is not None, "" if row[0] is None else str(row[0]))


def table_rows(engine: sa.Engine, schema: type[Schema]) -> list[Row]:
    """The table's rows in column order, SUPER values as canonical text, sorted by id."""
    table = schema.__table__
    columns = [
        sa.cast(c, sa.Text) if spec.rule.type_name == "SUPER" else c
        for spec, c in zip(schema.__fields__, table.columns, strict=True)
    ]
    normalise = _normalisers(schema)
    with engine.connect() as conn:
        result = conn.execute(sa.select(*columns))
        rows = [tuple(f(v) for f, v in zip(normalise, row, strict=True)) for row in result]
    return sorted(rows, key=_sort_key)


def expected_rows(case: Case) -> list[Row]:
    names = [spec.name for spec in case.schema.__fields__]
    normalise = _normalisers(case.schema)
    rows = []
    for row in case.rows:
        unknown = set(row) - set(names)
        assert not unknown, f"the case names unknown columns {unknown}"
        rows.append(tuple(f(row.get(n)) for n, f in zip(names, normalise, strict=True)))
    return sorted(rows, key=_sort_key)


def facts(reject: Reject) -> RejectFacts:
    return (reject.key, reject.line, reject.column, reject.value, reject.reason, reject.code)


def journal_entries(engine: sa.Engine, target: str) -> dict[str, tuple[int, int]]:
    j = journal.JOURNAL
    with engine.connect() as conn:
        query = sa.select(j.c.key, j.c.rows_loaded, j.c.rows_rejected).where(j.c.target == target)
        return {str(k): (int(n), int(r)) for k, n, r in conn.execute(query)}


def pipeline_for(case: Case, engine: sa.Engine, store: Path) -> Pipeline:
    return Pipeline(engine, store=store).copy(
        case.schema, source=SOURCE, max_errors=len(case.rejects)
    )


_OUTCOMES: dict[tuple[str, str], Outcome] = {}


def load(case: Case, backend: str, engine: sa.Engine, root: Path) -> Outcome:
    """Run the case's first load once and remember its outcome for the comparison test."""
    path = root / SOURCE / case.key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.data)
    try:
        result = pipeline_for(case, engine, root).run()
    except Exception as exc:  # the comparison test compares errors too
        _OUTCOMES[(case.id, backend)] = Outcome([], [], f"{type(exc).__name__}: {exc}")
        raise
    outcome = Outcome(table_rows(engine, case.schema), [facts(r) for r in result.steps[0].rejects])
    _OUTCOMES[(case.id, backend)] = outcome
    step = result.steps[0]
    assert (step.rows_loaded, step.rows_rejected) == (len(outcome.rows), len(step.rejects))
    assert step.objects_loaded == 1
    return outcome


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "backend"), _case_params())
def test_bad_input(
    case: Case, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine: sa.Engine = request.getfixturevalue(f"warehouse_{backend}")
    outcome = load(case, backend, engine, tmp_path)
    key = f"{SOURCE}/{case.key}"

    assert outcome.rows == expected_rows(case)
    got = [(r[0], r[1], r[2], r[5], r[3]) for r in outcome.rejects]
    want = [(key, e.line, e.column, e.code, e.value) for e in case.rejects]
    assert got == want
    for reject, expected in zip((Reject(*r) for r in outcome.rejects), case.rejects, strict=True):
        assert reject.reason, "every reject says why"
        assert expected.reason in reject.reason
        # what a person reads names the place, the reason and the value
        text = str(reject)
        assert f"{key}:{reject.line}" in text
        assert reject.reason in text
        if reject.value is not None:
            assert repr(reject.value[:80]) in text

    # every record is either a row or a reject: nothing lost, nothing twice
    if case.record_count is not None:
        assert len(outcome.rows) + len(outcome.rejects) == case.record_count

    # the journal holds the object with its counts, and a second run loads nothing
    assert journal_entries(engine, case.schema.__tablename__) == {
        key: (len(case.rows), len(case.rejects))
    }
    again = pipeline_for(case, engine, tmp_path).run().steps[0]
    assert (again.objects_loaded, again.rows_loaded, again.rows_rejected) == (0, 0, 0)
    assert table_rows(engine, case.schema) == outcome.rows


@pytest.mark.parametrize("case", _compare_params())
def test_duckdb_and_postgresql_give_the_same_outcome(
    case: Case, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Rows (value for value), rejects (with their reasons and values), or the same error.

    Reuses the outcomes of ``test_bad_input`` when it ran first; loads again otherwise.
    """
    outcomes = []
    for backend in BACKENDS:
        outcome = _OUTCOMES.get((case.id, backend))
        if outcome is None:
            engine: sa.Engine = request.getfixturevalue(f"warehouse_{backend}")
            try:
                outcome = load(case, backend, engine, tmp_path / backend)
            except Exception:
                outcome = _OUTCOMES[(case.id, backend)]
        outcomes.append(outcome)
    duckdb, postgresql = outcomes
    assert duckdb == postgresql


# --- a compressed object cut short -------------------------------------------------------------


@pytest.mark.parametrize("backend", [pytest.param(b, marks=_BACKEND_MARKS[b]) for b in BACKENDS])
def test_a_truncated_compressed_object_fails_the_step_and_loads_once_complete(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine: sa.Engine = request.getfixturevalue(f"warehouse_{backend}")
    data = gzip.compress(lines(*(f'{{"id": "r{n}"}}' for n in range(2000))), mtime=0)
    path = tmp_path / SOURCE / "cut.json.gz"
    path.parent.mkdir()
    path.write_bytes(data[: len(data) // 2])
    pipeline = Pipeline(engine, store=tmp_path).copy(Doc, source=SOURCE, max_errors=10)
    with pytest.raises(PipelineError) as info:
        pipeline.run()
    assert info.value.step == "copy bad_doc (incremental)"
    assert "in/cut.json.gz" in str(info.value)
    with engine.connect() as conn:  # the step was rolled back: no table, no journal entry
        assert not journal.table_exists(conn, Doc.__table__)
        assert journal.loaded(conn, "bad_doc") == {}
    path.write_bytes(data)
    assert pipeline.run().rows_loaded == 2000
    assert pipeline.run().rows_loaded == 0


# --- names that SQL reserves or that need quoting -----------------------------------------------

TABLE_NAMES: Final = ["select", "order", "user", "group", 'we"ird', "my table"]


def awkward_schema(tablename: str) -> type[Schema]:
    """Columns named by reserved words, a double quote and a space, keyed the same way."""

    class Own(Schema):
        __abstract__ = True
        metadata = sa.MetaData()

    class Awkward(Own):
        __tablename__ = tablename
        select = String(16, primary_key=True)
        order = Integer()
        user = String(16)
        group = String(16)
        quoted = String(16, name='a"b', key='a"b')
        spaced = String(16, name="a b", key="a b")

    return Awkward


@pytest.mark.parametrize("tablename", TABLE_NAMES)
@pytest.mark.parametrize("backend", [pytest.param(b, marks=_BACKEND_MARKS[b]) for b in BACKENDS])
def test_reserved_and_odd_names_are_quoted_everywhere(
    tablename: str, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine: sa.Engine = request.getfixturevalue(f"warehouse_{backend}")
    schema = awkward_schema(tablename)
    table = schema.__table__
    assert table.c.keys() == ["select", "order", "user", "group", 'a"b', "a b"]
    folder = tmp_path / SOURCE
    folder.mkdir()

    def put(name: str, *records: dict[str, Any]) -> None:
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))

    def contents() -> list[Row]:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.select))]

    def pipeline(mode: str) -> Pipeline:
        return Pipeline(engine, store=tmp_path).copy(schema, source=SOURCE, mode=mode)

    put("a.json", {"select": "k1", "order": 1, "user": "u", "group": "g", 'a"b': "q", "a b": "s"})
    put("b.json", {"select": "k2", "order": 2})
    # replace creates the table and swaps its contents
    plan = pipeline("replace").plan()
    assert plan.steps[0].keys == ["in/a.json", "in/b.json"]
    for _ in range(2):
        result = pipeline("replace").run()
        assert (result.steps[0].label, result.rows_loaded) == (f"copy {tablename} (replace)", 2)
        assert contents() == [("k1", 1, "u", "g", "q", "s"), ("k2", 2, None, None, None, None)]
    # incremental loads only what the journal has not seen
    put("c.json", {"select": "k3", "order": 3, "a b": "new"})
    assert pipeline("incremental").run().rows_loaded == 1
    assert pipeline("incremental").run().rows_loaded == 0
    # merge upserts on the quoted primary key; the newest record for a key wins
    put("d.json", {"select": "k1", "order": 10, 'a"b': "q2"}, {"select": "k4", "user": "v"})
    assert pipeline("merge").validate().rows_loaded == 2
    assert pipeline("merge").run().rows_loaded == 2
    assert pipeline("merge").run().rows_loaded == 0
    assert contents() == [
        ("k1", 10, None, None, "q2", None),
        ("k2", 2, None, None, None, None),
        ("k3", 3, None, None, None, "new"),
        ("k4", None, "v", None, None, None),
    ]
    # the journal knows the target by its name, as it is
    assert journal_entries(engine, tablename) == {
        "in/a.json": (1, 0),
        "in/b.json": (1, 0),
        "in/c.json": (1, 0),
        "in/d.json": (2, 0),
    }
    # rejects name the odd column as it is
    put("e.json", {"select": "k5", "order": "NaN"})
    lenient = Pipeline(engine, store=tmp_path).copy(schema, source=SOURCE, max_errors=1)
    rejects = lenient.run().steps[0].rejects
    assert [(r.key, r.line, r.column, r.code) for r in rejects] == [("in/e.json", 1, "order", 1207)]
