"""Choosing a field type for the values seen at one JSON path.

Each candidate type is checked against every value with the loaders' own conversion rules
(``convert.convert_value``, the Python form of the rule each field type applies), so the
type chosen is one that loads every value of the sample: the narrowest candidate that
accepts them all. The candidates depend on what kind of JSON values were seen:

* booleans (and strings such as ``"yes"`` mixed with them): ``Boolean``;
* numbers, and numbers mixed with strings that COPY converts (``"2"``): ``Integer``,
  ``BigInt``, ``Decimal(p, s)`` (integers beyond 64 bits, or numbers with 1 to
  ``MAX_SCALE`` digits after the point, none in exponent notation), ``Double``;
* strings: ``Date`` (no time part), ``TimestampTZ`` (some carry ``Z`` or an offset) or
  ``Timestamp`` when every one is a date or timestamp by ``TIMEFORMAT 'auto'`` and written
  with ``-`` or ``/`` (``20240101`` is a number to people, whatever COPY thinks), then
  ``String(n)``;
* objects: a nested class (decided by the caller), arrays and mixed kinds: ``Super``;

and ``String(n)`` of the value's text, then ``Super``, as the last resorts. A value that no
type loads (a string holding U+0000) leaves the field out, with a comment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from arbalest import convert
from arbalest.convert import JSONNumber
from arbalest.errors import LoadError
from arbalest.schema import fields

__all__ = [
    "MAX_SCALE",
    "STRING_LENGTHS",
    "Choice",
    "Node",
    "choose",
    "kind_of",
    "string_length",
]

#: Numbers with more digits after the point than this are ``Double``, not ``Decimal``.
MAX_SCALE: Final = 6
#: ``Decimal`` precision at least (Redshift's default), for headroom in the integer part.
MIN_PRECISION: Final = 18
#: ``String`` lengths chosen from, the smallest that fits the longest value with headroom.
STRING_LENGTHS: Final = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65535)
#: ``String`` length headroom: the length holds the longest value seen times this.
HEADROOM: Final = 1.5

_ZONE: Final = re.compile(r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)\Z")


@dataclass
class Node:
    """What a sample holds at one JSON path: its values and, for objects, its keys.

    Attributes:
        present: Records whose value here is not null (nor missing).
        kinds: The kinds of JSON value seen (see ``kind_of()``).
        values: Every value seen that is not null (objects included).
        children: The keys of the objects seen here, in the order first seen.
    """

    present: int = 0
    kinds: set[str] = field(default_factory=set)
    values: list[Any] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)

    def add(self, record: Any) -> None:
        """Count one record's object (``record``) into this node's children."""
        if not isinstance(record, dict):
            return
        for key, value in record.items():
            child = self.children.get(key)
            if child is None:
                child = self.children[key] = Node()
            if value is None:
                continue
            child.present += 1
            child.kinds.add(kind_of(value))
            child.values.append(value)
            if isinstance(value, dict):
                child.add(value)


def kind_of(value: Any) -> str:
    """``"boolean"``, ``"integer"``, ``"number"``, ``"string"``, ``"object"`` or ``"array"``."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | JSONNumber):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"


@dataclass(frozen=True)
class Choice:
    """A field type and its arguments: ``Choice("String", (64,))`` is ``String(64)``.

    ``type`` is ``None`` when no type loads every value (the field is left out).
    """

    type: str | None
    args: tuple[int, ...] = ()
    note: str = ""

    def make(self) -> Any:
        """The field (for checking the choice against the values)."""
        assert self.type is not None
        return getattr(fields, self.type)(*self.args)

    def __str__(self) -> str:
        return f"{self.type}({', '.join(map(str, self.args))})"


def _loads(choice: Choice, values: Sequence[Any]) -> bool:
    """Whether the loaders' rule of ``choice`` converts every value."""
    rule = choice.make().rule
    try:
        for value in values:
            convert.convert_value(rule, value, column="sample")
    except LoadError:
        return False
    return True


def string_length(longest: int) -> int | None:
    """The ``String`` length for values of up to ``longest`` bytes (``None``: none fits)."""
    if longest > STRING_LENGTHS[-1]:
        return None
    want = math.ceil(longest * HEADROOM)
    return next((n for n in STRING_LENGTHS if n >= want), STRING_LENGTHS[-1])


def _text_length(texts: Sequence[str | None]) -> int:
    return max(
        (len(t.encode("utf-8", errors="replace")) for t in texts if t is not None), default=0
    )


def _decimal(texts: Sequence[str]) -> Choice | None:
    """``Decimal(p, s)`` for numbers in plain notation that it holds exactly, else None."""
    digits = scale = 0
    for text in texts:
        if not text:
            continue  # an empty string is NULL for numbers
        if "e" in text or "E" in text or not text or text[-1:].isalpha():
            return None  # exponent notation, NaN, Infinity: Double's or String's
        whole, _, fraction = text.lstrip("+-").partition(".")
        digits = max(digits, len(whole.lstrip("0")))
        scale = max(scale, len(fraction.rstrip("0")))
    if scale > MAX_SCALE or digits + scale > 38:
        return None
    return Choice("Decimal", (max(MIN_PRECISION, digits + scale), scale))


def _number_candidates(texts: Sequence[str]) -> list[Choice]:
    """Integer, BigInt, Decimal, Double: the rules decide which loads every text."""
    found = [Choice("Integer"), Choice("BigInt")]
    decimal = _decimal(texts)
    if decimal is not None and not any("." in t for t in texts):
        found.append(Choice("Decimal", (38, 0)))
    # a number with a fraction of 1 to MAX_SCALE digits: Decimal; whole numbers written as
    # 5.0 are doubles that happened to be whole
    elif decimal is not None and decimal.args[1] > 0:
        found.append(decimal)
    return [*found, Choice("Double")]


def _string_candidates(texts: Sequence[str]) -> list[Choice]:
    written = [t for t in texts if t]
    if not written or not all("-" in t or "/" in t for t in written):
        return []
    if not any(":" in t for t in written):
        return [Choice("Date")]
    times = [t.rpartition("T")[2].rpartition(" ")[2] for t in written]
    zoned = any(":" in t and _ZONE.search(t) for t in times)
    return [Choice("TimestampTZ")] if zoned else [Choice("Timestamp")]


def choose(node: Node) -> Choice:
    """The narrowest field type whose rule loads every value seen at ``node``."""
    values = node.values
    if not values:
        return Choice("Super", note="no value seen; Super takes any")
    texts = [convert.json_text(v) for v in values]
    candidates: list[Choice] = []
    if node.kinds == {"boolean"}:
        candidates = [Choice("Boolean")]
    elif node.kinds <= {"integer", "number"}:
        candidates = _number_candidates([t for t in texts if t is not None])
    elif node.kinds == {"string"}:
        candidates = _string_candidates([t for t in texts if t is not None])
    elif node.kinds not in ({"object"}, {"array"}):
        # numbers and strings (or booleans and strings) mixed: COPY converts "2" into an
        # INTEGER and "yes" into a BOOLEAN, so a scalar type may load them all
        mixed = "strings mixed with other values"
        if node.kinds <= {"integer", "number", "string"}:
            numbers = _number_candidates([t for t in texts if t is not None])
            candidates = [Choice(c.type, c.args, mixed) for c in numbers]
        elif node.kinds == {"boolean", "string"}:
            candidates = [Choice("Boolean", note=mixed)]
        candidates.append(Choice("Super", note="values of more than one kind"))
    length = string_length(_text_length(texts))
    if node.kinds <= {"array", "object"}:
        candidates.append(Choice("Super"))
    if length is not None:
        candidates.append(Choice("String", (length,)))
    candidates.append(Choice("Super"))
    for candidate in candidates:
        if _loads(candidate, values):
            return candidate
    return Choice(None, note="no type loads every value (a string holding U+0000?)")
