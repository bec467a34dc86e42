"""The shared grammar: error codes and reasons, options, the ``Rule`` base class.

Also the regular expressions for numbers, which the number rules and the epoch time formats
share, and ``convert_value``, which runs one decoded value through a rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from arbalest._typing import JSONValue
from arbalest.convert._json import json_text
from arbalest.errors import LoadError

__all__ = [
    "BAD_BOOLEAN",
    "BAD_CHARACTER",
    "BAD_DATE",
    "BAD_DIGIT",
    "BAD_FLOAT",
    "BAD_RECORD",
    "BAD_SUPER",
    "BAD_TIMESTAMP",
    "DEFAULT_OPTIONS",
    "INT_OVERFLOW",
    "MAX_RECORD_BYTES",
    "NOT_NULL",
    "OUT_OF_RANGE",
    "ConvertOptions",
    "Rejected",
    "Rule",
    "convert_value",
    "reason_for",
    "sql_literal",
]

#: Redshift's limit on one JSON record; a longer one is rejected (code 1216).
MAX_RECORD_BYTES: Final = 4 * 1024 * 1024

_TIME_FORMATS_NAMED: Final = ("auto", "epochsecs", "epochmillisecs")

# Error codes, as in Redshift's STL_LOAD_ERRORS.
OUT_OF_RANGE: Final = 1204
BAD_DATE: Final = 1205
BAD_TIMESTAMP: Final = 1206
BAD_DIGIT: Final = 1207
BAD_FLOAT: Final = 1208
BAD_BOOLEAN: Final = 1210
NOT_NULL: Final = 1213
BAD_RECORD: Final = 1216
BAD_CHARACTER: Final = 1220
INT_OVERFLOW: Final = 1222
BAD_SUPER: Final = 1224

_REASONS: Final[dict[int, str]] = {
    OUT_OF_RANGE: "Value out of range for the column's type",
    BAD_DATE: "Invalid date format",
    BAD_TIMESTAMP: "Invalid timestamp format",
    BAD_DIGIT: "Invalid digit",
    BAD_FLOAT: "Invalid float value",
    BAD_BOOLEAN: "Invalid boolean value",
    NOT_NULL: "Missing data for not-null field",
    BAD_RECORD: "Invalid JSON record",
    BAD_CHARACTER: "Invalid or unsupported character",
    INT_OVERFLOW: "Integer overflow",
    BAD_SUPER: "Not well-formed JSON for a SUPER value",
}


def reason_for(code: int, type_name: str | None = None) -> str:
    """Return the reject reason for an error ``code``, naming the column type if given."""
    base = _REASONS.get(code, "Conversion error")
    return f"{base} (type {type_name})" if type_name else base


class Rejected(Exception):
    """Raised by a rule's Python form: the value is rejected with ``code``.

    Internal and cheap; ``convert_value()`` turns it into a ``LoadError``.
    """

    def __init__(self, code: int, reason: str | None = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class ConvertOptions:
    """The COPY options that change conversions.

    Attributes:
        truncate_columns: Cut overlong CHAR/VARCHAR values to the column's byte length
            (never inside a UTF-8 character) instead of rejecting them (``TRUNCATECOLUMNS``).
        time_format: ``"auto"``, ``"epochsecs"``, ``"epochmillisecs"`` or a Redshift format
            string such as ``"YYYY-MM-DD HH:MI:SS"`` (``TIMEFORMAT``).
    """

    truncate_columns: bool = False
    time_format: str = "auto"

    def __post_init__(self) -> None:
        if self.time_format not in _TIME_FORMATS_NAMED:
            # (the time rules build on this module, so their format parser is imported here)
            from arbalest.convert.time import custom_time_format

            custom_time_format(self.time_format)  # raises ConfigurationError when bad


DEFAULT_OPTIONS: Final = ConvertOptions()


def sql_literal(text: str) -> str:
    """Quote ``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _match(pattern: str) -> Callable[[str], re.Match[str] | None]:
    return re.compile(pattern, re.ASCII | re.DOTALL).fullmatch


class Rule:
    """How one column type converts text (see the module docstring).

    Subclasses implement ``_python`` (one value, raising ``Rejected``), ``sql_value``
    and ``sql_error``. ``sql_type`` is the DuckDB type that ``sql_value`` produces.
    """

    #: The column type, as Redshift writes it (used in reject reasons).
    type_name: str = "VARCHAR"
    #: ``True`` when the rule takes the JSON value (text of JSON), not the extracted text.
    takes_json: ClassVar[bool] = False
    #: The empty string is NULL for every type but CHAR and VARCHAR.
    empty_is_null: ClassVar[bool] = True

    @property
    def sql_type(self) -> str:
        """The DuckDB type of the converted value."""
        return self.type_name

    def python(self, text: str | None, options: ConvertOptions = DEFAULT_OPTIONS) -> Any:
        """Convert one value's text; raise ``Rejected`` when it cannot be converted."""
        if text is None or (text == "" and self.empty_is_null):
            return None
        return self._python(text, options)

    def _python(self, text: str, options: ConvertOptions) -> Any:
        raise NotImplementedError

    def sql_value(self, s: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        """A DuckDB expression: the converted value of text column ``s``, or NULL."""
        raise NotImplementedError

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        """A DuckDB expression: the error code for text ``s`` whose value is ``v``, or NULL."""
        raise NotImplementedError

    def reason(self, code: int) -> str:
        """The reject reason for ``code`` from this rule."""
        return reason_for(code, self.type_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _present(s: str) -> str:
    """SQL: the text is a value to convert (not NULL, not an empty string)."""
    return f"({s} IS NOT NULL AND {s} <> '')"


def _sql_matches(s: str, pattern: str) -> str:
    """SQL: the whole text matches ``pattern``."""
    return f"regexp_full_match({s}, {sql_literal(pattern)})"


def _sql_code(s: str, v: str, code: int | str, *, given: str | None = None) -> str:
    """SQL for ``Rule.sql_error``: ``code`` where text ``s`` is given (``given``; by default
    ``_present(s)``) but its value ``v`` is NULL, else NULL."""
    return f"CASE WHEN {given or _present(s)} AND {v} IS NULL THEN {code} END"


def _sql_either(test: str, yes: int, no: int) -> str:
    """SQL: code ``yes`` where ``test`` holds, else code ``no``."""
    return f"CASE WHEN {test} THEN {yes} ELSE {no} END"


_RE_INT: Final = r"[+-]?[0-9]+"
_RE_DEC: Final = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_RE_EXP: Final = _RE_DEC + r"[eE][+-]?[0-9]+"
_RE_FLOAT: Final = _RE_DEC + r"(?:[eE][+-]?[0-9]+)?"
_is_int = _match(_RE_INT)
_is_dec = _match(_RE_DEC)
_is_exp = _match(_RE_EXP)
_is_float = _match(_RE_FLOAT)


def convert_value(
    rule: Rule,
    value: JSONValue,
    *,
    column: str,
    options: ConvertOptions = DEFAULT_OPTIONS,
) -> Any:
    """Convert one decoded JSON ``value`` for ``column`` under ``rule``.

    Raises:
        LoadError: With the column, the raw value as text, Redshift's code and a reason.
    """
    text: Any = value if rule.takes_json else json_text(value)
    try:
        return rule.python(text, options)
    except Rejected as rejected:
        raw = json_text(value)
        reason = rejected.reason or rule.reason(rejected.code)
        raise LoadError(column, raw, reason, rejected.code) from None
