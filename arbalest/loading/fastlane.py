"""The fast lane: the plainest records converted in one pass in C, the rest by the SQL path.

Most lines in a lake are one JSON object each, with keys the schema reads and values
in their plainest forms: integers as digits, decimals with at most 15 significant digits,
``true``/``false``, strings of valid UTF-8 within the column's length, ISO 8601 timestamps
such as ``2026-01-11T06:14:57.966Z``. The C module ``_fastlane`` converts such a line into
Arrow column buffers in one pass, with no parse tree and no SQL. Any other line is
*deferred*: the transform converts it with the exact SQL path (``transform.Transform``),
which decides everything the lane does not: rejects, duplicate keys, values a rule reads in
more than one way, anything that may not be JSON. A key no column reads is skipped (its
value checked as strictly as any JSON reader would) and counted for the drift report: the
lane numbers each distinct set of such keys, per chunk. The lane never rejects a line, so
whatever it does not take, it leaves exactly as it was.

Why the two paths give the same rows: the lane takes a value only where the text of the
JSON token is the text the SQL path's rule sees (``json_extract_string`` gives a number's
shortest round-trip text, which for at most 15 significant digits, printed without an
exponent, has the token's digits) and the rule's answer is plain to compute (see
``parse_value`` in ``_fastlane_rules.c``; ``_fastlane.h`` says what each C unit holds).
``tests/unit/loading/test_fastlane.py`` holds the lane to the SQL path on generated
records, and the conformance suite runs through both.

The lane is there when the extension was built (``pip install`` compiles it; without a C
compiler it is left out and every line takes the SQL path) and the schema's columns are of
kinds it knows. ``ARBALEST_FAST_LANE=0`` turns it off.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from arbalest.convert import ConvertOptions
from arbalest.convert.numbers import BooleanRule, DecimalRule, FloatRule, IntegerRule
from arbalest.convert.text import VarcharRule
from arbalest.convert.time import DateRule, TimestampRule
from arbalest.loading.drift import KeyShape, read_objects
from arbalest.schema._build import ColumnSpec
from arbalest.schema.jsonpath import JSONPath

if TYPE_CHECKING:
    import pyarrow as pa

_fastlane: ModuleType | None
try:
    from arbalest.loading import _fastlane
except ImportError:  # built without a C compiler: the SQL path converts every line
    _fastlane = None

__all__ = ["AVAILABLE", "FastRows", "Lane", "lane_for", "turned_off"]

#: Whether the C extension is importable here.
AVAILABLE: Final = _fastlane is not None

# The column kinds of the C module (the enum in _fastlane.h).
_INT = {16: 1, 32: 2, 64: 3}
_DECIMAL, _REAL, _DOUBLE, _BOOL, _VARCHAR, _TIMESTAMP, _DATE = 4, 5, 6, 7, 8, 9, 10


@dataclass(frozen=True)
class FastRows:
    """One chunk through the lane.

    Attributes:
        table: The lines it took, converted: ``chunk``, ``line``, ``idx`` (0), ``v1..vn``
            and ``shape``: 0, or the key shape (in ``shapes``) of a record with keys no
            column reads.
        deferred: The lines it left, for the SQL path: ``chunk``, ``line``, ``idx`` (0),
            ``l`` (the line's text; not yet checked as UTF-8: ``pyarrow``'s cast does that).
        shapes: Per shape number from 1, the keys no column reads of each object the schema
            reads into (``drift.KeyShape``; the drift report needs no other key).
    """

    table: pa.Table
    deferred: pa.Table
    shapes: dict[int, KeyShape]


@dataclass(frozen=True)
class Lane:
    """A schema's columns as the C module takes them, and their Arrow types."""

    columns: list[tuple[tuple[bytes, ...], int, int, int, bool]]
    types: list[pa.DataType]
    #: The objects the schema reads into, as ``drift.read_objects`` orders them.
    objects: tuple[JSONPath, ...]
    #: Per node number of the C module's key tree, the object path (objects only).
    nodes: dict[int, JSONPath]

    def convert(self, data: bytes, first_line: int, seq: int) -> FastRows:
        """Run the lines of ``data`` (one chunk, its first line numbered ``first_line``)."""
        import pyarrow as pa

        assert _fastlane is not None
        rows, lines, columns, d_lines, d_offsets, d_text, shapes, known = _fastlane.convert(
            data, first_line, self.columns
        )
        arrays: dict[str, Any] = {
            "chunk": _constant(pa.int32(), seq, rows),
            "line": pa.Array.from_buffers(pa.int64(), rows, [None, pa.py_buffer(lines)]),
            "idx": _constant(pa.int32(), 0, rows),
        }
        for i, (kind, (validity, values, offsets)) in enumerate(
            zip(self.types, columns, strict=True), start=1
        ):
            buffers = [pa.py_buffer(validity)]
            if offsets is not None:
                buffers.append(pa.py_buffer(offsets))
            buffers.append(pa.py_buffer(values))
            arrays[f"v{i}"] = pa.Array.from_buffers(kind, rows, buffers)
        arrays["shape"] = pa.Array.from_buffers(pa.int32(), rows, [None, pa.py_buffer(shapes)])
        count = len(d_lines) // 8
        deferred = pa.table(
            {
                "chunk": _constant(pa.int32(), seq, count),
                "line": pa.Array.from_buffers(pa.int64(), count, [None, pa.py_buffer(d_lines)]),
                "idx": _constant(pa.int32(), 0, count),
                "l": pa.Array.from_buffers(
                    pa.binary(), count, [None, pa.py_buffer(d_offsets), pa.py_buffer(d_text)]
                ),
            }
        )
        return FastRows(pa.table(arrays), deferred, self._shapes(known))

    def _shapes(self, known: bytes) -> dict[int, KeyShape]:
        """Decode the C module's signatures: per record kind, (node, key) pairs in order."""
        out: dict[int, KeyShape] = {}
        at, number = 0, 0
        while at < len(known):
            number += 1
            (size,) = struct.unpack_from("<i", known, at)
            at += 4
            end = at + size
            keys: dict[JSONPath, set[str]] = {}
            while at < end:
                node, length = struct.unpack_from("<ii", known, at)
                at += 8
                keys.setdefault(self.nodes[node], set()).add(known[at : at + length].decode())
                at += length
            out[number] = tuple(
                tuple(sorted(keys[path])) if path in keys else None for path in self.objects
            )
        return out


def _constant(kind: pa.DataType, value: int, count: int) -> pa.Array:
    import pyarrow as pa

    return pa.Array.from_buffers(
        kind, count, [None, pa.py_buffer(value.to_bytes(4, "little", signed=True) * count)]
    )


def turned_off() -> bool:
    """Whether ``ARBALEST_FAST_LANE=0`` turns off the C code's fast paths: the JSON and CSV
    lanes, and the binary ``COPY`` encoder (``pgcopy``)."""
    return os.environ.get("ARBALEST_FAST_LANE", "1") == "0"


def lane_for(specs: Sequence[ColumnSpec], options: ConvertOptions) -> Lane | None:
    """The lane for a schema, or None where every line takes the SQL path: the extension is
    not built, it is turned off, an option changes a rule, a column is of a kind the lane does
    not know (CHAR, SUPER, DECIMAL of scale over 18, an array index in a path, the record
    itself), or one key is read both as a value and as an object (or by two columns)."""
    if _fastlane is None or turned_off():
        return None
    if options.truncate_columns or options.time_format != "auto":
        return None
    columns: list[tuple[tuple[bytes, ...], int, int, int, bool]] = []
    types: list[pa.DataType] = []
    paths: set[tuple[str | int, ...]] = set()
    for spec in specs:
        path = tuple(spec.path)
        if not path or not all(isinstance(step, str) for step in path):
            return None
        paths.add(path)
        known = _kind(spec.rule)
        if known is None:
            return None
        kind, a, b, arrow = known
        columns.append(
            (tuple(str(step).encode("utf-8") for step in path), kind, a, b, spec.nullable)
        )
        types.append(arrow)
    # a key read both as a value and as an object (or by two columns): the SQL path decides
    for path in paths:
        if any(other != path and other[: len(path)] == path for other in paths):
            return None
    if len(paths) != len(columns):
        return None
    # the C module numbers its key tree's nodes as it meets new keys along the paths
    numbers: dict[tuple[str | int, ...], int] = {(): 0}
    for spec in specs:
        for k in range(1, len(spec.path) + 1):
            numbers.setdefault(tuple(spec.path[:k]), len(numbers))
    nodes = {n: path for path, n in numbers.items() if path not in paths}
    return Lane(columns, types, read_objects(specs).paths, nodes)


def _kind(rule: object) -> tuple[int, int, int, pa.DataType] | None:
    import pyarrow as pa  # (imported only for a load: commands that plan never need it)

    if type(rule) is IntegerRule:  # (a subclass may read differently)
        arrow = {16: pa.int16(), 32: pa.int32(), 64: pa.int64()}[rule.bits]
        return _INT[rule.bits], 0, 0, arrow
    if type(rule) is DecimalRule:
        if rule.scale > 18:
            return None
        return _DECIMAL, rule.precision, rule.scale, pa.decimal128(rule.precision, rule.scale)
    if type(rule) is FloatRule:
        return (_REAL, 0, 0, pa.float32()) if rule.bits == 32 else (_DOUBLE, 0, 0, pa.float64())
    if type(rule) is BooleanRule:
        return _BOOL, 0, 0, pa.bool_()
    if type(rule) is VarcharRule:
        return _VARCHAR, rule.length, 0, pa.string()
    if type(rule) is TimestampRule:
        arrow = pa.timestamp("us", tz="UTC") if rule.timezone else pa.timestamp("us")
        return _TIMESTAMP, 0, 0, arrow
    if type(rule) is DateRule:
        return _DATE, 0, 0, pa.date32()
    return None
