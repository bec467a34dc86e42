"""Any valid JSON layout reads as exactly its records, and malformed stretches cost only
themselves.

Records are written by the common writers (one per line, several per line, Python's
``json.dumps`` with ``indent=2`` and ``indent=0``, jq's and ``JSON.stringify``'s two-space
layouts, arrays of one-line objects each on its own line, and all of these mixed), with LF
or CRLF line ends, and read as the loaders read them (``Feed`` -> ``Converter``) with chunks
and batches small enough that records span them.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from arbalest import BigInt, Super, convert
from arbalest.loading.converter import Converter, batches
from arbalest.loading.reader import Feed
from arbalest.loading.rejects import Reject
from arbalest.stores.local import LocalStore
from tests.fixtures.budgets import budget
from tests.fixtures.schemas import fresh_base


class Numbered(fresh_base()):  # type: ignore[misc]
    """A record's number, and its payload kept whole."""

    __tablename__ = "numbered"
    n = BigInt()
    v = Super()


@dataclass
class Loaded:
    """Rows as (n, payload, (chunk, line, index)) in position order, and the rejects."""

    rows: list[tuple[int, Any, tuple[int, int, int]]]
    rejects: list[Reject]


@pytest.fixture(scope="module")
def converter() -> Iterator[Converter]:
    conv = Converter(Numbered.__fields__, convert.ConvertOptions(), workers=2)
    yield conv
    conv.close()


def load(converter: Converter, data: bytes, *, chunk_bytes: int, batch_bytes: int) -> Loaded:
    """Read and convert one object as a merge step does (with each row's position)."""
    loaded = Loaded([], [])
    with tempfile.TemporaryDirectory() as lake, tempfile.TemporaryDirectory() as work:
        (Path(lake) / "doc.json").write_bytes(data)
        store = LocalStore(lake)
        workdir = Path(work)
        with Feed(
            store, list(store.list("")), compression=None, workdir=workdir, chunk_bytes=chunk_bytes
        ) as feed:
            for batch in converter.run(
                batches(iter(feed), batch_bytes), workdir, "arrow", with_position=True
            ):
                loaded.rejects += batch.rejects
                if batch.table is not None:
                    for row in batch.table.to_pylist():
                        payload = None if row["v2"] is None else json.loads(row["v2"])
                        position = (row["chunk"], row["line"], row["idx"])
                        loaded.rows.append((row["v1"], payload, position))
                    batch.table = None
                for chunk in batch.chunks:
                    chunk.discard()
    loaded.rows.sort(key=lambda row: row[2])  # the order a merge reads them in
    return loaded


# --- records --------------------------------------------------------------------------------

#: Strings full of what a scanner must not be fooled by.
_strings = st.text(st.sampled_from([*'{}[]":,\\/ \t\n\r', "x", "é", "🚀", "\x7f"]), max_size=8)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**62), 2**62), _strings)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(st.dictionaries(_strings, children, max_size=2), max_size=4),  # of objects
        st.dictionaries(_strings, children, max_size=4),
        st.sampled_from([{}, [], [{}], [[]], {"": {}}, [{}, []]]),
    ),
    max_leaves=12,
)


# --- layouts --------------------------------------------------------------------------------


def write(value: Any, *, indent: str | None, nl: str, ascii_only: bool) -> str:
    """``value`` as JSON, broken into lines at every element (``indent``: what each level
    adds before a line) or on one line (``indent=None``)."""
    if indent is None or not isinstance(value, dict | list) or not value:
        return json.dumps(value, ensure_ascii=ascii_only, separators=(", ", ": "))
    return _write(value, indent, 1, nl, ascii_only)


def _write(value: Any, indent: str, level: int, nl: str, ascii_only: bool) -> str:
    if not isinstance(value, dict | list) or not value:
        return json.dumps(value, ensure_ascii=ascii_only)
    inner = nl + indent * level
    if isinstance(value, dict):
        items = [
            json.dumps(k, ensure_ascii=ascii_only)
            + ": "
            + _write(v, indent, level + 1, nl, ascii_only)
            for k, v in value.items()
        ]
        opening, closing = "{", "}"
    else:
        items = [_write(v, indent, level + 1, nl, ascii_only) for v in value]
        opening, closing = "[", "]"
    return opening + inner + ("," + inner).join(items) + nl + indent * (level - 1) + closing


def elements_on_lines(value: Any, nl: str, ascii_only: bool) -> str:
    """Each element of an array (at any depth) on its own line, written on one line: the
    shape of ``{"a": [\\n{"x": 1},\\n{"y": 2}\\n]}``."""
    if isinstance(value, list) and value:
        items = [json.dumps(v, ensure_ascii=ascii_only) for v in value]
        return "[" + nl + ("," + nl).join(items) + nl + "]"
    if isinstance(value, dict) and value:
        items = [
            json.dumps(k, ensure_ascii=ascii_only) + ": " + elements_on_lines(v, nl, ascii_only)
            for k, v in value.items()
        ]
        return "{" + ", ".join(items) + "}"
    return json.dumps(value, ensure_ascii=ascii_only)


def values_on_lines(record: dict[str, Any], nl: str, ascii_only: bool) -> str:
    """Each value of the record on the line after its key, written on one line: the record
    may then end on a line that begins with a nested object, followed by the next record."""
    items = [
        json.dumps(k, ensure_ascii=ascii_only) + ":" + nl + json.dumps(v, ensure_ascii=ascii_only)
        for k, v in record.items()
    ]
    return "{" + ", ".join(items) + "}"


LAYOUTS: Final = [
    "one line",
    "json.dumps(indent=2)",  # also jq's and JSON.stringify(v, null, 2)'s layout
    "json.dumps(indent=0)",
    "four spaces",
    "tab",
    "elements on lines",
    "values on lines",
]


def lay_out(record: Any, layout: str, nl: str, ascii_only: bool) -> str:
    if layout == "one line":
        return json.dumps(record, ensure_ascii=ascii_only)
    if layout == "json.dumps(indent=2)":
        return json.dumps(record, ensure_ascii=ascii_only, indent=2).replace("\n", nl)
    if layout == "json.dumps(indent=0)":
        return json.dumps(record, ensure_ascii=ascii_only, indent=0).replace("\n", nl)
    if layout == "elements on lines":
        return elements_on_lines(record, nl, ascii_only)
    if layout == "values on lines":
        return values_on_lines(record, nl, ascii_only)
    return write(
        record, indent="    " if layout == "four spaces" else "\t", nl=nl, ascii_only=ascii_only
    )


_SEPARATORS: Final = ["\n", "\n", " ", "", "\n\n", "\t\n  "]


@st.composite
def documents(draw: st.DrawFn) -> tuple[list[dict[str, Any]], bytes]:
    """Numbered records in random layouts, and the object holding them."""
    payloads = draw(st.lists(_values, max_size=8))
    records = [{"n": n, "v": v} for n, v in enumerate(payloads)]
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    ascii_only = draw(st.booleans())
    mixed = draw(st.booleans())
    layout = draw(st.sampled_from(LAYOUTS))
    parts = []
    for record in records:
        if mixed:
            layout = draw(st.sampled_from(LAYOUTS))
        separator = draw(st.sampled_from(_SEPARATORS)).replace("\n", nl)
        parts.append(lay_out(record, layout, nl, ascii_only) + separator)
    return records, "".join(parts).encode()


_sizes = st.sampled_from([16, 40, 100, 1000, 1 << 20])

# The examples that cut records with today's rule.
_ARRAY_OF_ONE_LINE_OBJECTS: Final = b'{"n": 0, "v": [\n{"x": 1},\n{"y": 2}\n]}\n{"n": 1, "v": 1}\n'
_INDENT_0_WITH_EMPTY_OBJECT: Final = (
    json.dumps({"n": 0, "v": [{}, {"a": [[]]}]}, indent=0) + "\n"
).encode()


def expected(records: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    return [(r["n"], r["v"]) for r in records]


@budget(150)
@given(document=documents(), chunk_bytes=_sizes, batch_bytes=_sizes)
@example(
    document=([{"n": 0, "v": [{"x": 1}, {"y": 2}]}, {"n": 1, "v": 1}], _ARRAY_OF_ONE_LINE_OBJECTS),
    chunk_bytes=1 << 20,
    batch_bytes=1 << 20,
).via("an array of one-line objects")
@example(
    document=([{"n": 0, "v": [{}, {"a": [[]]}]}], _INDENT_0_WITH_EMPTY_OBJECT),
    chunk_bytes=16,
    batch_bytes=16,
).via("indent=0 with an empty object alone on a line")
def test_any_valid_layout_reads_as_exactly_its_records(
    converter: Converter,
    document: tuple[list[dict[str, Any]], bytes],
    chunk_bytes: int,
    batch_bytes: int,
) -> None:
    records, data = document
    loaded = load(converter, data, chunk_bytes=chunk_bytes, batch_bytes=batch_bytes)
    assert loaded.rejects == []
    assert [(n, v) for n, v, _ in loaded.rows] == expected(records)
    positions = [position for _, _, position in loaded.rows]
    assert len(set(positions)) == len(positions)  # the merge order is total


# --- malformed stretches --------------------------------------------------------------------


@st.composite
def malformed_stretches(draw: st.DrawFn) -> str:
    """Text that is not a record: truncated records (as a cut line of newline-delimited JSON,
    or a cut pretty-printed record), invalid records, stray text."""
    kind = draw(st.sampled_from(["truncated line", "truncated pretty", "fixed"]))
    if kind == "fixed":
        return draw(
            st.sampled_from(
                [
                    '{"n": oops}',
                    "12",
                    '"just a string"',
                    ",",
                    "]",
                    '{"n": 1,, "v": 2}',
                    '{\n  "n": 1,,\n  "v": 2\n}',
                    '{"n": "broken\n string"}',
                ]
            )
        )
    record = {"n": -1, "v": draw(_values)}
    indent = None if kind == "truncated line" else 2
    text = json.dumps(record, indent=indent)
    cut = draw(st.integers(1, len(text) - 1))
    return text[:cut].rstrip("\n")


@budget(100)
@given(
    document=documents(),
    bad=st.lists(st.tuples(st.integers(0, 8), malformed_stretches()), min_size=1, max_size=3),
    chunk_bytes=_sizes,
    batch_bytes=_sizes,
)
@example(
    document=([{"n": 0, "v": 0}, {"n": 1, "v": 1}], b'{"n": 0, "v": 0}\n{"n": 1, "v": 1}\n'),
    bad=[(1, '{"n": -1, "v": [1')],
    chunk_bytes=16,
    batch_bytes=16,
).via("one truncated line of newline-delimited JSON")
@example(
    document=([{"n": 0, "v": None}], b'{"n": 0, "v": null}\n'),
    bad=[(0, '{"n": oops}'), (0, '{\n  "n": -1,\n  "v": '), (1, '{\n  "')],
    chunk_bytes=16,
    batch_bytes=16,
).via("a stretch waiting for a value before a record (left out: one record to a reader)")
def test_malformed_stretches_are_rejected_and_the_records_around_them_load(
    converter: Converter,
    document: tuple[list[dict[str, Any]], bytes],
    bad: list[tuple[int, str]],
    chunk_bytes: int,
    batch_bytes: int,
) -> None:
    records, _ = document
    # Each record on lines of its own, so that every record starts a line; a malformed
    # stretch goes on lines of its own between two records.
    nl = "\n"
    texts = [json.dumps(r, indent=2 if r["n"] % 2 else None) for r in records]
    inserted: dict[int, list[str]] = {}
    for at, stretch in bad:
        # (lines after its first that could start a record would be read as records; a
        # stretch that ends waiting for a value takes the next line's record as that value,
        # and the two are one malformed record, as any JSON reader sees them)
        if any(line[:1] in "{[" for line in stretch.split("\n")[1:]):
            continue
        if stretch.rstrip()[-1:] in (":", ",", "[", "{"):
            continue
        inserted.setdefault(min(at, len(texts)), []).append(stretch)
    lines: list[str] = []
    bad_lines: set[int] = set()
    for index in range(len(texts) + 1):
        for stretch in inserted.get(index, []):
            first = len(lines) + 1
            lines += stretch.split("\n")
            bad_lines |= set(range(first, len(lines) + 1))
        if index < len(texts):
            lines += texts[index].split("\n")
    data = (nl.join(lines) + nl).encode()
    loaded = load(converter, data, chunk_bytes=chunk_bytes, batch_bytes=batch_bytes)
    assert [(n, v) for n, v, _ in loaded.rows] == expected(records)
    assert {r.line for r in loaded.rejects} <= bad_lines
    assert bool(loaded.rejects) == bool(inserted)
