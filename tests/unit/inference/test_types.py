"""Choosing a field type from the values seen at one JSON path (the loaders' rules decide)."""

from __future__ import annotations

from typing import Any

import pytest

from arbalest.convert import JSONNumber
from arbalest.inference.types import Node, choose, string_length


def chosen(*values: Any) -> str:
    root = Node()
    for value in values:
        root.add({"k": value})
    return str(choose(root.children["k"]))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((1, -5, 2**31 - 1), "Integer()"),
        ((1, 2**31), "BigInt()"),
        ((1, 2**63), "Decimal(38, 0)"),
        ((1, 10**40), "Double()"),
        ((19.99, 5, 0.5), "Decimal(18, 2)"),
        ((1234567890123456.5,), "Decimal(18, 1)"),
        ((0.1234567,), "Double()"),  # more digits after the point than MAX_SCALE
        ((1e-7,), "Double()"),  # exponent notation
        ((5.0, 2.0), "Double()"),  # whole doubles
        ((JSONNumber("1E400"),), "String(32)"),  # beyond a double: kept as text
        ((float("nan"),), "String(32)"),
        ((True, False), "Boolean()"),
        (("2024-01-01", "1999-12-31"), "Date()"),
        (("2024-01-01T10:00:00", "2024-01-01 10:00"), "Timestamp()"),
        (("2024-01-01T10:00:00Z", "2024-01-01 10:00:00"), "TimestampTZ()"),
        (("2024-01-01 10:00:00+02:00",), "TimestampTZ()"),
        (("2024-01-01 10:00:00-0800",), "TimestampTZ()"),
        (("2024-01-01", ""), "Date()"),  # the empty string loads as NULL there
        (("2024-13-45",), "String(32)"),  # not a date by TIMEFORMAT 'auto'
        (("20240101",), "String(32)"),  # COPY would take it; people mean a number
        (("", ""), "String(32)"),
        (("x" * 40,), "String(64)"),
        (("é" * 30,), "String(128)"),  # 60 bytes of UTF-8
        (("x" * 70000,), "Super()"),
        (([1, 2], []), "Super()"),
        ((1, "1"), "Integer()"),  # COPY converts "1"
        ((1, "1.50", ""), "Decimal(18, 1)"),  # 1.50 is 1.5: nothing cut
        ((True, "yes"), "Boolean()"),
        ((1, "many"), "Super()"),
        ((True, 1), "Super()"),
        (({"a": 1}, 2), "Super()"),
        (("a\x00b",), "None()"),  # no type loads U+0000
        (([float("nan")],), "String(32)"),  # SUPER refuses NaN; its text loads
    ],
)
def test_the_narrowest_type_that_loads_every_value(values: tuple[Any, ...], expected: str) -> None:
    assert chosen(*values) == expected


def test_a_key_only_ever_null_is_super() -> None:
    root = Node()
    root.add({"k": None})
    choice = choose(root.children["k"])
    assert (str(choice), root.children["k"].present) == ("Super()", 0)
    assert "no value" in choice.note


@pytest.mark.parametrize(
    ("longest", "length"),
    [(0, 32), (21, 32), (22, 64), (36, 64), (100, 256), (40000, 65535), (65535, 65535)],
)
def test_string_length_has_headroom(longest: int, length: int) -> None:
    assert string_length(longest) == length


def test_no_string_length_beyond_the_varchar_limit() -> None:
    assert string_length(65536) is None


def test_nodes_count_values_and_nested_keys() -> None:
    root = Node()
    root.add({"a": {"b": 1}, "c": None})
    root.add({"a": {"b": None, "d": "x"}})
    root.add([1, 2])  # a record that is not an object: a row of NULLs
    a = root.children["a"]
    assert (a.present, a.children["b"].present, a.children["d"].present) == (2, 1, 1)
    assert root.children["c"].present == 0
