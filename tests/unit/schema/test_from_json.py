"""``Schema.from_json`` reads JSON text as the loaders' JSON reader does."""

from __future__ import annotations

import decimal
from typing import Any

import pytest

from arbalest import Decimal, Double, LoadError, Real, Schema, String, Super


def make_doc(base: type[Schema]) -> Any:
    class Doc(base):  # type: ignore[misc, valid-type]
        __tablename__ = "doc"
        s = String(64)
        d = Double()
        r = Real()
        dec = Decimal(12, 2)
        wide = Decimal(38, 9)
        j = Super()

    return Doc


def outcome(doc: Any, text: str) -> Any:
    try:
        return doc.from_json(text).row()
    except LoadError as exc:
        return (exc.column, exc.code)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # of duplicate keys the first one counts, at the top and on the way to a value
        ('{"s": "first", "s": "second"}', ("first", None, None, None, None, None)),
        ('{"s": null, "s": "second"}', (None, None, None, None, None, None)),
        # an object with a key twice, into a VARCHAR, is its text as written
        ('{"s": {"k": 1, "k": 2}}', ('{"k":1,"k":2}', None, None, None, None, None)),
        # into a SUPER it is rejected, at any depth
        ('{"j": {"k": 1, "k": 2}}', ("j", 1224)),
        ('{"j": [0, {"a": {"k": 1, "k": 1}}]}', ("j", 1224)),
        ('{"j": {"k": 1, "K": 2}}', (None, None, None, None, None, {"k": 1, "K": 2})),
        # a number beyond a double keeps its text: each column's rule decides
        ('{"s": 1E400}', ("1E400", None, None, None, None, None)),
        ('{"d": 1E400}', ("d", 1204)),
        ('{"r": -1e400}', ("r", 1204)),
        ('{"dec": 1e400}', ("dec", 1204)),
        ('{"j": 1E400}', ("j", 1224)),
        ('{"j": [1, {"x": -1e400}]}', ("j", 1224)),
        # integers keep every digit, in a SUPER too
        (
            '{"j": 123456789012345678901234567890}',
            (None, None, None, None, None, 123456789012345678901234567890),
        ),
        ('{"s": ' + "1" * 5000 + "}", ("s", 1204)),
        # NaN and Infinity are numbers, as in the reader
        ('{"s": NaN, "d": 1}', ("NaN", 1.0, None, None, None, None)),
        ('{"d": Infinity}', ("d", 1208)),
        ('{"j": [NaN]}', ("j", 1224)),
        # what the reader refuses
        ('{"s": "\\ud800"}', (None, 1216)),
        ('{"s": oops}', (None, 1216)),
    ],
)
def test_from_json_reads_text_as_the_loaders_do(
    base: type[Schema], text: str, expected: tuple[Any, ...]
) -> None:
    assert outcome(make_doc(base), text) == expected


@pytest.mark.parametrize(
    "digits",
    [
        "99999999999999999999999999999.999999999",  # 38 digits: 29 before the point
        "-12345678901234567890123456789.123456789",
        "0.123456789",
        "12345678901234567890123456789.1234567899",  # the tenth decimal is cut
    ],
)
def test_decimals_of_up_to_38_digits_keep_every_digit(base: type[Schema], digits: str) -> None:
    doc = make_doc(base)
    with decimal.localcontext(decimal.Context(prec=3)):  # whatever the caller's context
        value = doc.from_json({"wide": digits}).wide
    point = digits.index(".")
    assert value == decimal.Decimal(digits[: point + 10])
    assert str(value) == digits[: point + 10]


def test_a_decimal_of_29_integer_digits_is_out_of_range_for_38_9(base: type[Schema]) -> None:
    with pytest.raises(LoadError) as info:
        make_doc(base).from_json({"wide": "1" + "0" * 29})
    assert (info.value.column, info.value.code) == ("wide", 1204)
