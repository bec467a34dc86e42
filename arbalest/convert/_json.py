"""JSON as the loaders read and write it, and the text the JSON extraction gives.

``json_loads`` decodes as the loaders' JSON reader does (``JSONNumber`` for a number beyond
a double, ``DuplicateKeys`` for an object with a key twice), ``json_dumps`` writes compact
JSON as the JSON writer does (``format_double`` for doubles), and ``json_text`` gives a
decoded value's text, which is what every rule but ``SuperRule`` converts.
"""

from __future__ import annotations

import decimal
import json
import math
import re
from typing import Any, Final

from arbalest._typing import JSONValue

__all__ = [
    "DuplicateKeys",
    "JSONNumber",
    "format_double",
    "json_dumps",
    "json_loads",
    "json_text",
]


def format_double(value: float) -> str:
    """Write a double the way the JSON writer does (shortest round-trip digits).

    Plain notation with at least one fractional digit when the decimal exponent is between
    -6 and 20 (``100.0``, ``0.000001``), scientific notation otherwise (``1e-7``,
    ``1.2345678901234568e29``).
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    sign, digits, exponent = decimal.Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + exponent  # position of the decimal point within `text`
    if value == 0:
        body = "0.0"
    elif -6 < point <= 21:
        if point <= 0:
            body = "0." + "0" * -point + text
        elif point >= len(text):
            body = text + "0" * (point - len(text)) + ".0"
        else:
            body = text[:point] + "." + text[point:]
    else:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        body = f"{mantissa}e{point - 1}"
    return ("-" if sign else "") + body


class JSONNumber(str):
    """A JSON number no double or Python ``int`` holds, kept as written (``1E400``).

    The loaders' JSON reader keeps such a number's text, so the rules see ``1E400``, not
    ``Infinity``: a ``str`` whose text is the number's, written without quotes as JSON.
    """

    __slots__ = ()


class DuplicateKeys(dict[str, Any]):
    """A JSON object that had a key more than once: the first one counts, as in the reader.

    ``written`` holds every member as written, so that its JSON text is the reader's
    (``{"k":1,"k":2}``); a ``Super`` column rejects such a value (see ``SuperRule``).
    """

    __slots__ = ("written",)

    def __init__(self, written: list[tuple[str, Any]]) -> None:
        super().__init__()
        for key, value in written:
            self.setdefault(key, value)
        self.written = written


def _first_key_counts(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    return value if len(value) == len(pairs) else DuplicateKeys(pairs)


def _parse_float(text: str) -> float | JSONNumber:
    value = float(text)
    return JSONNumber(text) if math.isinf(value) else value


def _parse_int(text: str) -> int | JSONNumber:
    # (Python refuses to convert integers of more than 4,300 digits)
    return int(text) if len(text) <= 4000 else JSONNumber(text)


_CONSTANTS: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_MAY_HOLD_SURROGATE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def json_loads(text: str | bytes) -> Any:
    """Decode one JSON value as the loaders' JSON reader reads it.

    Of duplicate keys the first one counts (``DuplicateKeys`` keeps them all for the
    value's text); ``NaN``, ``Infinity`` and ``-Infinity`` are numbers; integers keep all
    their digits; a number beyond a double is kept as written (``JSONNumber``). An
    escaped lone surrogate (``"\\ud800"``) is not JSON.

    Raises:
        ValueError: The text is not JSON (the message says where).
    """
    value = json.loads(
        text,
        object_pairs_hook=_first_key_counts,
        parse_float=_parse_float,
        parse_int=_parse_int,
        parse_constant=_CONSTANTS.__getitem__,
    )
    raw = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
    if _MAY_HOLD_SURROGATE.search(raw) and _has_surrogate(value):
        raise ValueError("a lone surrogate (\\ud800 to \\udfff) is not a character")
    return value


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    if isinstance(value, dict):
        members = value.written if isinstance(value, DuplicateKeys) else value.items()
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in members)
    return False


def _json_number(value: int | float) -> str:
    # Integers keep all their digits, however large (the JSON reader keeps big ones as
    # written); other numbers are doubles.
    if isinstance(value, int):
        return str(value)
    return format_double(value)


def _json_dump(value: JSONValue, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int | float):
        out.append(_json_number(value))
    elif isinstance(value, JSONNumber):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_json_string(value))
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _json_dump(item, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        members = value.written if isinstance(value, DuplicateKeys) else value.items()
        for i, (key, item) in enumerate(members):
            if i:
                out.append(",")
            out.append(_json_string(str(key)))
            out.append(":")
            _json_dump(item, out)
        out.append("}")
    else:
        raise TypeError(f"not a JSON value: {type(value).__name__}")


_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_NEEDS_ESCAPE: Final = re.compile(r'["\\\x00-\x1f]')


def _json_string(text: str) -> str:
    def escape(m: re.Match[str]) -> str:
        ch = m.group()
        return _ESCAPES.get(ch) or f"\\u{ord(ch):04X}"

    return '"' + _NEEDS_ESCAPE.sub(escape, text) + '"'


def json_dumps(value: JSONValue) -> str:
    """Write a decoded value as compact JSON, the way the JSON writer does."""
    out: list[str] = []
    _json_dump(value, out)
    return "".join(out)


def json_text(value: JSONValue) -> str | None:
    """Return the text the JSON extraction gives for a decoded value.

    ``None`` for null; a string's own characters; ``true`` / ``false``; an integer with all
    its digits; any other number as the JSON writer prints a double; an object or array as
    compact JSON.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)  # (a JSONNumber as its text)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return _json_number(value)
    return json_dumps(value)
