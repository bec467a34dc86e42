"""Property tests of reading and converting: any input gives rows or rejects, never an
unhandled exception, and the Python and SQL forms of every conversion agree.

The reader and the vectorised transform run as the loaders run them (objects in a local
store, ``Feed`` -> ``Converter``), on the private in-process DuckDB, with no warehouse. Every
test sets its own example budget; the whole file runs in well under a minute. With ``CI``
set, Hypothesis is derandomised so that a CI run is reproducible.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import string
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import example, given, reject
from hypothesis import strategies as st

from arbalest import (
    Boolean,
    Integer,
    LoadError,
    Nested,
    String,
    convert,
)
from arbalest.loading.converter import Converter, batches
from arbalest.loading.reader import Feed
from arbalest.loading.rejects import Reject
from arbalest.stores.local import LocalStore
from tests.fixtures.budgets import budget
from tests.fixtures.schemas import NAMED, every_type, fresh_base
from tests.unit.convert.helpers import connection, run_python, run_sql

Base = fresh_base()


_EVERY_TYPE = every_type(NAMED, id=String(8), decimal=(12, 2), char=4, string=12)


class Typed(Base, _EVERY_TYPE):  # type: ignore[misc, valid-type]
    """One column of every type, an array index, a nested key and a NOT NULL column last."""

    __tablename__ = "typed"
    first = String(8, path="$['tags'][0]")

    class nested(Nested):
        n = Integer()

    must = Boolean(nullable=False)


COLUMNS: Final = [spec.name for spec in Typed.__fields__]
KEYS: Final = [str(spec.path[0]) for spec in Typed.__fields__]  # top-level JSON keys
CODES: Final = {1204, 1205, 1206, 1207, 1208, 1210, 1213, 1216, 1220, 1222, 1224}


# --- running the reader and the transform ---------------------------------------------------


@dataclass
class Loaded:
    """What the transform gave for some objects: rows by (key, line), and the rejects."""

    rows: list[tuple[str, int, tuple[Any, ...]]]
    rejects: list[Reject]

    def at(self, key: str, line: int) -> tuple[list[tuple[Any, ...]], list[Reject]]:
        """The rows and rejects of one line."""
        rows = [values for k, n, values in self.rows if (k, n) == (key, line)]
        return rows, [r for r in self.rejects if (r.key, r.line) == (key, line)]


@pytest.fixture(scope="module")
def converter() -> Iterator[Converter]:
    """One converter (one private DuckDB) for the module: creating one per example would
    spend most of the time budget connecting."""
    conv = Converter(Typed.__fields__, convert.ConvertOptions(), workers=1)
    yield conv
    conv.close()


def load(
    converter: Converter,
    objects: dict[str, bytes],
    *,
    chunk_bytes: int = 8 * 1024 * 1024,
    batch_bytes: int = 32 * 1024 * 1024,
) -> Loaded:
    """Read and convert ``objects`` (key -> bytes) as a copy step does."""
    with tempfile.TemporaryDirectory() as lake, tempfile.TemporaryDirectory() as work:
        for key, data in objects.items():
            (Path(lake) / key).write_bytes(data)
        store = LocalStore(lake)
        infos = sorted(store.list(""), key=lambda info: info.key)
        workdir = Path(work)
        loaded = Loaded([], [])
        with Feed(
            store, infos, compression=None, workdir=workdir, chunk_bytes=chunk_bytes, workers=1
        ) as feed:
            for batch in converter.run(
                batches(iter(feed), batch_bytes), workdir, "arrow", with_position=True
            ):
                keys = {chunk.seq: chunk.info.key for chunk in batch.chunks}
                loaded.rejects += batch.rejects
                if batch.table is not None:
                    for row in batch.table.to_pylist():
                        values = tuple(row[f"v{i}"] for i in range(1, len(COLUMNS) + 1))
                        loaded.rows.append((keys[row["chunk"]], row["line"], values))
                    batch.table = None
                for chunk in batch.chunks:
                    chunk.discard()
        return loaded


def line_count(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def whole_object_lines(data: bytes) -> list[int]:
    """Lines that are, by themselves, one JSON object (strict JSON, valid UTF-8)."""
    found = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if len(raw) > 10_000:
            continue
        try:
            value = json.loads(
                raw.decode("utf-8"), parse_constant=lambda name: _raise(ValueError(name))
            )
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            found.append(number)
    return found


def _raise(exc: Exception) -> Any:
    raise exc


def check_outcome(loaded: Loaded, objects: dict[str, bytes]) -> None:
    """What holds for any input: well-formed rejects and rows on real lines, in order, and
    every line that is a whole JSON object is at most one row or one reject (none when it is
    inside a record that spans lines, which cannot end on it: a line is a record by itself
    only when no record is open before it)."""
    order = {key: index for index, key in enumerate(sorted(objects))}
    for bad in loaded.rejects:
        assert bad.key in objects
        assert 1 <= bad.line <= max(1, line_count(objects[bad.key])), bad
        assert bad.code in CODES, bad
        assert isinstance(bad.reason, str), bad
        assert bad.reason, bad
        assert bad.column is None or bad.column in COLUMNS, bad
        assert bad.value is None or len(bad.value) <= 1024, bad
        if bad.column is None:
            assert bad.code in (1216, 1220), bad  # a record, not a value, is bad
    positions = [(order[r.key], r.line) for r in loaded.rejects]
    assert positions == sorted(positions)
    for key, line, _ in loaded.rows:
        assert 1 <= line <= line_count(objects[key])
    for key, data in objects.items():
        for line in whole_object_lines(data):
            rows, rejects = loaded.at(key, line)
            assert len(rows) + len(rejects) <= 1, (key, line, rows, rejects)


# --- strategies ---------------------------------------------------------------------------------

_TOKENS: Final = [
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b":",
    b",",
    b"\\",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xc3\xa9",
    b"null",
    b"true",
    b"NaN",
    b"-Infinity",
    b"1e400",
    b"99999999999999999999999",
    b"-0",
    b'"id"',
    b'"i32"',
    b'"j"',
    b'"tags"',
    b'"\\u0000"',
    b'"\\ud800"',
    b'{"id": "x"}',
    b'{"must": true}',
]
_jsonish_bytes = st.lists(
    st.one_of(st.sampled_from(_TOKENS), st.binary(min_size=1, max_size=4)), max_size=60
).map(b"".join)

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_digits = st.text("0123456789", min_size=1, max_size=22)
_numberish = st.builds(
    lambda sign, whole, frac, exp: sign + whole + frac + exp,
    st.sampled_from(["", "-", "+"]),
    _digits,
    st.sampled_from(["", ".", ".5", ".259", ".0000001"]),
    st.sampled_from(["", "e5", "E-3", "e+2", "e400", "e-400", "e38", "e39"]),
)
_dateish = st.builds(
    lambda y, mo, d, sep, h, tz: f"{y:04d}-{mo}-{d}{sep}{h}{tz}",
    st.integers(0, 10_000),
    st.sampled_from(["1", "02", "12", "13", "00"]),
    st.sampled_from(["1", "28", "29", "30", "31", "32"]),
    st.sampled_from(["", "T", " "]),
    st.sampled_from(["", "00:00", "23:59:59", "24:00", "05:09:12.1234567"]),
    st.sampled_from(["", "Z", "+01", "-08:00", "+15:00", " UTC"]),
)
_special_strings = st.sampled_from(
    ["", " ", "t", "YES", "no", "0", "1", "2", "NaN", "Infinity", "-inf", "é", "🚀", "\x00"]
)
_strings = st.one_of(_text, _numberish, _dateish, _special_strings)
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([math.nan, math.inf, -math.inf]),  # the reader accepts them
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    _floats,
    _strings,
)
_json_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["k", "n", "0", "a b"]), children, max_size=3),
    ),
    max_leaves=8,
)


def _ints(bits: int) -> st.SearchStrategy[Any]:
    high = 2 ** (bits - 1)
    values = st.integers(-high, high - 1)
    return st.one_of(values, values.map(str))


def _int_edges(bits: int) -> st.SearchStrategy[Any]:
    high = 2 ** (bits - 1)
    values = st.sampled_from([-high - 1, -high, high - 1, high, 10 * high])
    return st.one_of(values, values.map(str), values.map(lambda v: f"{v}.0"))


_OFFSETS: Final = [
    None,
    dt.UTC,
    dt.timezone(dt.timedelta(hours=-8)),
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
]
_timestamps = st.builds(
    lambda value, sep: value.isoformat(sep=sep),
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from(_OFFSETS),
    ),
    st.sampled_from(["T", " "]),
)
_letters = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_finite_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(_letters, max_size=6),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(_letters, max_size=3), children, max_size=3),
    ),
    max_leaves=6,
)

#: Values each column's rule accepts...
_VALID: Final[dict[str, st.SearchStrategy[Any]]] = {
    "id": st.text(_letters, max_size=2),  # at most 8 bytes of UTF-8
    "i16": _ints(16),
    "i32": _ints(32),
    "i64": _ints(64),
    "dec": st.one_of(
        st.floats(-1e9, 1e9),
        st.decimals(-(10**9), 10**9, allow_nan=False, allow_infinity=False).map(str),
    ),
    "r": st.one_of(st.floats(-1e38, 1e38), st.floats(-1e38, 1e38).map(repr)),
    "d": st.one_of(st.floats(allow_nan=False, allow_infinity=False), _numberish),
    "b": st.sampled_from([True, False, 1, 0, "t", "Yes", "n", "0", "1", "FALSE"]),
    "ch": st.text(string.ascii_letters + string.digits + " .-", max_size=4),
    "s": st.text(_letters, max_size=3),
    "day": _timestamps,
    "ts": _timestamps,
    "tz": _timestamps,
    "j": _finite_values,
    "tags": st.lists(st.text(_letters, max_size=2), min_size=1, max_size=3),
    "nested": st.fixed_dictionaries({}, optional={"n": _ints(32)}),
    "must": st.booleans(),
}
#: ... values at and past the edges of each rule ...
_EDGES: Final[dict[str, st.SearchStrategy[Any]]] = {
    "id": st.text(max_size=9),
    "i16": _int_edges(16),
    "i32": _int_edges(32),
    "i64": _int_edges(64),
    "dec": st.one_of(_numberish, st.sampled_from(["9999999999.999", "-0.001", "1e10"])),
    "r": st.one_of(_numberish, st.sampled_from([3.4e38, 3.5e38, 1e-46, "1e39"])),
    "d": st.one_of(_numberish, st.sampled_from(["1e308", "1e309", "-0.0", "NaN"])),
    "b": _special_strings,
    "ch": st.text(max_size=6),
    "s": st.text(max_size=14),
    "day": _dateish,
    "ts": _dateish,
    "tz": _dateish,
    "j": _json_values,
    "tags": st.one_of(st.just([]), st.dictionaries(st.just("0"), _scalars), _scalars),
    "nested": _scalars,
    "must": st.one_of(_strings, st.none()),
}
assert set(_VALID) == set(_EDGES) == set(KEYS)
# ... and any JSON value at all: mostly valid, so that rows as well as rejects are compared.


def _column_values(key: str) -> st.SearchStrategy[Any]:
    return st.integers(0, 9).flatmap(
        lambda n: _VALID[key] if n < 8 else _EDGES[key] if n == 8 else _json_values
    )


_records = st.fixed_dictionaries(
    {"must": _column_values("must")},  # NOT NULL: usually there
    optional={key: _column_values(key) for key in KEYS if key != "must"},
)


def dumps(record: dict[str, Any], *, ascii_only: bool, indent: int | None = None) -> str:
    return json.dumps(record, ensure_ascii=ascii_only, allow_nan=True, indent=indent)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """Records written one per line, pretty-printed, or several on one line."""
    records = draw(st.lists(_records, max_size=6))
    ascii_only = draw(st.booleans())
    parts = []
    for record in records:
        layout = draw(st.sampled_from(["line", "line", "pretty", "same line"]))
        if layout == "pretty":
            parts.append(dumps(record, ascii_only=ascii_only, indent=2) + "\n")
        elif layout == "same line":
            parts.append(dumps(record, ascii_only=ascii_only) + " ")
        else:
            parts.append(dumps(record, ascii_only=ascii_only) + "\n")
    return "".join(parts).encode()


@st.composite
def mutated(draw: st.DrawFn, document: st.SearchStrategy[bytes]) -> bytes:
    """A document with up to four edits: deletions, insertions, replacements, a cut."""
    data = bytearray(draw(document))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "cut"]))
        at = draw(st.integers(0, len(data)))
        if kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(_TOKENS))
        elif kind == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 40))]
        elif kind == "cut":
            del data[at:]
    return bytes(data)


# --- reading: any input gives rows or rejects ----------------------------------------------------


@budget(20)
@given(objects=st.lists(st.one_of(st.binary(max_size=200), _jsonish_bytes), min_size=1, max_size=3))
def test_any_bytes_give_rows_or_rejects(converter: Converter, objects: list[bytes]) -> None:
    named = {f"o{index}.json": data for index, data in enumerate(objects)}
    check_outcome(load(converter, named), named)


@budget(20)
@given(data=mutated(documents()))
def test_mutated_json_gives_rows_or_rejects(converter: Converter, data: bytes) -> None:
    check_outcome(load(converter, {"doc.json": data}), {"doc.json": data})


@budget(10)
@given(
    data=mutated(documents()),
    chunk_bytes=st.integers(32, 400),
    batch_chunks=st.integers(1, 3),
)
def test_cutting_an_object_into_chunks_changes_nothing(
    converter: Converter, data: bytes, chunk_bytes: int, batch_chunks: int
) -> None:
    whole = load(converter, {"doc.json": data})
    cut = load(
        converter,
        {"doc.json": data},
        chunk_bytes=chunk_bytes,
        batch_bytes=chunk_bytes * batch_chunks,
    )
    if any(r.line > line_count(data) for r in cut.rejects):
        # A known bug, pinned by test_a_record_open_at_the_end_is_rejected_on_its_last_line:
        # discard the example. Remove this once the bug is fixed.
        reject()
    assert sorted(cut.rows, key=repr) == sorted(whole.rows, key=repr)
    assert cut.rejects == whole.rejects


# --- converting: the loader (SQL form) agrees with from_json (Python form) -----------------------


def normalise(column: str, value: Any) -> Any:
    """One value as both forms can be compared: REAL as 32 bits, instants in UTC."""
    if value is None:
        return None
    if column == "r":
        return struct.unpack("f", struct.pack("f", value))[0]
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def python_outcome(record: dict[str, Any] | str) -> tuple[Any, ...] | tuple[str | None, int]:
    """``from_json``'s row, or the column and code of its LoadError."""
    try:
        row = Typed.from_json(record).row()
    except LoadError as exc:
        return (exc.column, exc.code)
    return tuple(normalise(c, v) for c, v in zip(COLUMNS, row, strict=True))


def sql_outcome(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A loaded row, SUPER values (JSON text) decoded."""
    return tuple(
        normalise(c, json.loads(v) if c == "j" and v is not None else v)
        for c, v in zip(COLUMNS, values, strict=True)
    )


def assert_agree(loaded: Loaded, records: Sequence[dict[str, Any] | str]) -> None:
    """Each record of ``doc.json`` (one a line) loaded as ``from_json`` reads it: the same
    row, or a reject of the same column and code."""
    assert len(loaded.rows) + len(loaded.rejects) == len(records)
    for line, record in enumerate(records, start=1):
        rows, rejects = loaded.at("doc.json", line)
        if rejects:
            (bad,) = rejects
            got: Any = (bad.column, bad.code)
        else:
            (values,) = rows
            got = sql_outcome(values)
        assert got == python_outcome(record), (line, record)


@budget(25)
@given(records=st.lists(_records, min_size=1, max_size=12), ascii_only=st.booleans())
def test_the_loader_and_from_json_agree_on_every_record(
    converter: Converter, records: list[dict[str, Any]], ascii_only: bool
) -> None:
    data = "".join(dumps(r, ascii_only=ascii_only) + "\n" for r in records).encode()
    assert_agree(load(converter, {"doc.json": data}), records)


@st.composite
def record_texts(draw: st.DrawFn) -> str:
    """One record as JSON text that Python's writer never gives: a key twice (at the top or
    inside a value), numbers beyond a double, integers and decimals of any length."""
    members = []
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=8)):
        if draw(st.booleans()):
            value = json.dumps(draw(_column_values(key)), allow_nan=True)
        else:
            value = draw(json_texts())
        members.append(f"{json.dumps(key)}: {value}")
    members.append(f'"must": {json.dumps(draw(st.booleans()))}')
    if draw(st.booleans()):
        members.reverse()  # NOT NULL column first: a later "must" is a duplicate key
    return "{" + ", ".join(members) + "}"


@budget(25)
@given(records=st.lists(record_texts(), min_size=1, max_size=8))
@example(
    records=[
        '{"i64": 1, "i64": 2, "must": true}',
        '{"j": {"k": 1, "k": 2}, "must": true}',
        '{"dec": 1E400, "d": 1e400, "must": true}',
        '{"r": -1E400, "must": true}',
        '{"j": 1e400, "must": true}',
        '{"s": 1E400, "j": 123456789012345678901234567890, "must": true}',
        '{"must": true, "must": null}',
    ]
)
def test_the_loader_and_from_json_agree_on_every_record_text(
    converter: Converter, records: list[str]
) -> None:
    data = "".join(r + "\n" for r in records).encode()
    assert_agree(load(converter, {"doc.json": data}), records)


# --- converting: the two forms of each rule agree on any string ----------------------------------

RULES: Final[list[convert.Rule]] = [
    *(spec.rule for spec in Typed.__fields__ if not spec.rule.takes_json),
    convert.DecimalRule(38, 0),  # 29 to 38 digits: more than the default decimal context's
    convert.DecimalRule(38, 9),
    convert.DecimalRule(38, 38),
]
OPTIONS: Final = [
    convert.ConvertOptions(),
    convert.ConvertOptions(truncate_columns=True, time_format="epochmillisecs"),
    convert.ConvertOptions(time_format="YYYY-MM-DD HH:MI:SS.SSS"),
]


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """A valid literal of some type with a few characters changed."""
    text = list(
        draw(
            st.sampled_from(
                [
                    "12",
                    "-32768",
                    "2147483647",
                    "9223372036854775807",
                    "20.259",
                    "1.5e2",
                    "true",
                    "yes",
                    "abcd",
                    "2019-02-11",
                    "2019-02-11T05:09:12.195Z",
                    "1997-12-17 07:37:16-08",
                    "19960108 040809",
                    "12/31/2019 23:59:58",
                    "1549861752195",
                ]
            )
        )
    )
    alphabet = st.sampled_from([*" \t\n\x00+-.eE:/TZ0119٣１", "é", "🚀"])
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        if kind == "insert":
            text.insert(at, draw(alphabet))
        elif text and at < len(text):
            if kind == "delete":
                del text[at]
            else:
                text[at] = draw(alphabet)
    return "".join(text)


_wide_decimals = st.from_regex(r"[+-]?[0-9]{0,40}(?:\.[0-9]{0,40})?", fullmatch=True)
_any_strings = st.one_of(
    _wide_decimals,
    st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    st.text(string.printable, max_size=30),
    _numberish,
    _dateish,
    near_misses(),
)


@budget(20)
@given(
    texts=st.lists(st.one_of(st.none(), _any_strings), min_size=1, max_size=80),
    options=st.sampled_from(OPTIONS),
)
@example(
    texts=[
        "99999999999999999999999999999.9999999999",
        "-12345678901234567890123456789.123456789",
        "0.12345678901234567890123456789012345678",
    ],
    options=OPTIONS[0],
)
def test_python_and_sql_forms_agree_on_any_string(
    texts: list[str | None], options: convert.ConvertOptions
) -> None:
    for rule in RULES:
        python = run_python(rule, texts, options)
        assert python == run_sql(rule, texts, options), (rule, options)
        for (value, code), text in zip(python, texts, strict=True):
            assert value is None or code is None, text
            assert code is None or code in CODES


@budget(40)
@given(values=st.lists(_json_values, min_size=1, max_size=20))
def test_python_and_sql_forms_of_super_agree_on_any_json_value(values: list[Any]) -> None:
    rule = convert.SuperRule()
    python = run_python(rule, values, convert.ConvertOptions())
    sql = run_sql(rule, values, convert.ConvertOptions())
    assert [code for _, code in python] == [code for _, code in sql]
    for (p, _), (s, _) in zip(python, sql, strict=True):
        assert p == s or (
            isinstance(p, float) and isinstance(s, float) and math.isnan(p) and math.isnan(s)
        )


_json_numbers = st.one_of(
    st.from_regex(
        r"-?(?:0|[1-9][0-9]{0,40})(?:\.[0-9]{1,40})?(?:[eE][+-]?[0-9]{1,3})?", fullmatch=True
    ),
    st.sampled_from(["1e400", "1E400", "-1e400", "1000e306", "1.7976931348623157e308", "1e308"]),
    st.integers(300, 320).map(lambda n: "9" * n),  # integers about the size of a double
)


@budget(30)
@given(text=st.one_of(_numberish, _json_numbers))
@example(text="1e400")
@example(text="1E400")
@example(text="9" * 309)
def test_python_and_sql_forms_of_super_agree_on_any_number_text(text: str) -> None:
    rule = convert.SuperRule()
    try:
        decoded = convert.json_loads(text)  # as from_json reads JSON text
    except ValueError:
        return  # not a JSON number ("+1", "01"): the reader rejects the record first
    python = run_python(rule, [decoded], convert.ConvertOptions())
    _, sql_code = run_sql_text(rule, text)
    assert [code for _, code in python] == [sql_code]


_keys = st.sampled_from(["k", "n", "a b", "0"])


@st.composite
def json_texts(draw: st.DrawFn, depth: int = 2) -> str:
    """JSON text as writers other than Python's write it: keys twice, numbers of any size."""
    kind = draw(st.sampled_from(["number", "scalar", "array", "object"] if depth else ["number"]))
    if kind == "number":
        return draw(_json_numbers)
    if kind == "scalar":
        return json.dumps(draw(_scalars), allow_nan=True)
    items = draw(st.lists(json_texts(depth - 1), max_size=3))
    if kind == "array":
        return "[" + ",".join(items) + "]"
    return "{" + ",".join(f"{json.dumps(draw(_keys))}:{item}" for item in items) + "}"


@budget(30)
@given(texts=st.lists(json_texts(), min_size=1, max_size=10))
@example(texts=['{"k":1,"k":2}', '[{"a":{"n":1,"n":1}}]', "1e400", "[1,-1E400]"])
def test_python_and_sql_forms_of_super_agree_on_any_json_text(texts: list[str]) -> None:
    rule = convert.SuperRule()
    for text in texts:
        (python,) = run_python(rule, [convert.json_loads(text)], convert.ConvertOptions())
        value, code = run_sql_text(rule, text)
        assert python[1] == code, text
        if code is None and python[0] is not None:
            assert json.loads(value) == python[0], text


def run_sql_text(rule: convert.Rule, text: str) -> tuple[Any, int | None]:
    """The SQL form of a JSON rule on a value given as JSON text, as the reader gives it."""
    row = (
        connection()
        .execute(
            f"SELECT v, {rule.sql_error('s', 'v')} FROM "
            f"(SELECT s, {rule.sql_value('s')} AS v FROM (SELECT json_extract(?, '$.v') AS s))",
            [f'{{"v": {text}}}'],
        )
        .fetchone()
    )
    assert row is not None
    return row[0], row[1]


def test_a_duckdb_error_cut_inside_a_character_does_not_crash_the_load(
    converter: Converter,
) -> None:
    # (a key no column reads, and the NOT NULL column given: two good rows)
    data = '{"id": "a", "x": "' + "x" * 26 + 'éé", "must": true} {"id": "b", "must": true}\n'
    data_bytes = data.encode()
    with tempfile.TemporaryDirectory() as lake, tempfile.TemporaryDirectory() as work:
        (Path(lake) / "doc.json").write_bytes(data_bytes)
        store = LocalStore(lake)
        with Feed(store, list(store.list("")), compression=None, workdir=Path(work)) as feed:
            (batch,) = converter.run(batches(iter(feed), 1 << 20), Path(work), "arrow")
    assert batch.total_rows == 2
    assert batch.rejects == []


_NUMERIC_RULES: Final[list[convert.Rule]] = [
    convert.IntegerRule(16),
    convert.IntegerRule(64),
    convert.DecimalRule(12, 2),
    convert.DecimalRule(38, 0),
    convert.FloatRule(32),
    convert.FloatRule(64),
]
_number_texts = st.builds(
    lambda sign, digits, exponent: f"{sign}{digits}{exponent}",
    st.sampled_from(["", "-"]),
    st.sampled_from(["1", "1.7976931348623157", "9" * 40]),
    st.integers(250, 330).map(lambda e: f"e{e}"),
)


@budget(20)
@given(text=_number_texts)
@example(text="1e307")
def test_python_form_of_decimal_never_raises(text: str) -> None:
    for rule in _NUMERIC_RULES:
        python = run_python(rule, [text], convert.ConvertOptions())
        assert python == run_sql(rule, [text], convert.ConvertOptions()), rule


@budget(10)
@given(digits=st.integers(4200, 5000), sign=st.sampled_from(["", "-", "+"]))
@example(digits=5000, sign="")
def test_python_form_of_integers_never_raises(digits: int, sign: str) -> None:
    text = sign + "1" * digits
    for rule in _NUMERIC_RULES:
        python = run_python(rule, [text], convert.ConvertOptions())
        assert python == run_sql(rule, [text], convert.ConvertOptions()), rule


@pytest.mark.parametrize("chunk_bytes", [20, 46])
def test_a_record_open_at_the_end_is_rejected_on_its_last_line(
    converter: Converter, chunk_bytes: int
) -> None:
    data = b'{"id": "a", "must": true}\n{"id": "b", "s": "x"\n'
    loaded = load(converter, {"doc.json": data}, chunk_bytes=chunk_bytes, batch_bytes=chunk_bytes)
    assert [(r.line, r.reason) for r in loaded.rejects] == [
        (2, "Unexpected end of data in a record")
    ]
