"""The SUPER rule: a JSON value kept as JSON, refused where the warehouses would differ."""

from __future__ import annotations

import math
from typing import Any, Final

from arbalest.convert._base import (
    BAD_CHARACTER,
    BAD_SUPER,
    DEFAULT_OPTIONS,
    ConvertOptions,
    Rejected,
    Rule,
    _sql_code,
    _sql_either,
    sql_literal,
)
from arbalest.convert._json import DuplicateKeys, JSONNumber

__all__ = ["SuperRule"]


class SuperRule(Rule):
    """SUPER: the JSON value itself (JSON null is NULL), the same on every warehouse.

    A string holding U+0000 is 1220. A value that the warehouses would store differently is
    1224: ``NaN`` or ``Infinity`` (which the JSON reader accepts but no warehouse stores as
    JSON), a number beyond a double (``1e400``: DuckDB's JSON reads it back as infinity,
    PostgreSQL's JSONB keeps 10**400), and an object with a key twice (DuckDB keeps both,
    PostgreSQL's JSONB the last, Redshift's SUPER refuses it).

    Takes the value as JSON text in SQL (``json_extract``) and the decoded value in Python.
    """

    type_name = "SUPER"
    takes_json = True
    empty_is_null = False

    @property
    def sql_type(self) -> str:
        return "JSON"

    def python(self, text: Any, options: ConvertOptions = DEFAULT_OPTIONS) -> Any:
        """Check one decoded JSON value (not its text) and return it; null gives None."""
        if text is None:
            return None
        if _has_nul(text):
            raise Rejected(BAD_CHARACTER)
        if _not_storable(text):
            raise Rejected(BAD_SUPER)
        return text

    def sql_value(self, s: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        text = f"CAST({s} AS VARCHAR)"
        return (
            f"CASE WHEN {s} IS NULL OR {text} = 'null' THEN NULL "
            f"WHEN regexp_matches({text}, {sql_literal(_RE_JSON_NUL)}) THEN NULL "
            f"WHEN {_sql_not_storable(s, text)} THEN NULL "
            f"ELSE {s} END"
        )

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        text = f"CAST({s} AS VARCHAR)"
        nul = f"regexp_matches({text}, {sql_literal(_RE_JSON_NUL)})"
        given = f"{s} IS NOT NULL AND {text} <> 'null'"
        return _sql_code(s, v, _sql_either(nul, BAD_CHARACTER, BAD_SUPER), given=given)

    def reason(self, code: int) -> str:
        if code == BAD_CHARACTER:
            return "JSON string contains U+0000 (NUL), which cannot be stored (type SUPER)"
        if code == BAD_SUPER:
            return (
                "NaN or Infinity, a number beyond a double, or a key twice in one object: "
                "not stored alike by every warehouse (type SUPER)"
            )
        return super().reason(code)


# An escaped NUL in JSON text: \u0000 preceded by an even number of backslashes.
_RE_JSON_NUL: Final = r"(?:^|[^\\])(?:\\\\)*\\u0000"

# Outside any string of the JSON text: NaN or Infinity, or a number that may be beyond a
# double (an exponent of three digits, or 309 digits in a row); the last two are checked
# exactly, number by number.
_STRINGS_BEFORE: Final = r'^(?:[^"]|"(?:[^"\\]|\\.)*")*?'
_RE_NON_FINITE: Final = _STRINGS_BEFORE + r"(?i:nan|inf)"
_RE_HUGE: Final = _STRINGS_BEFORE + r"(?:[eE]\+?[0-9]{3}|[0-9]{309})"
# Every string (group 1 empty) and every number (group 1) of JSON text, in order.
_RE_TOKENS: Final = r'"(?:[^"\\]|\\.)*"|(-?[0-9][-+.0-9eE]*)'


def _sql_not_storable(s: str, text: str) -> str:
    """SQL: JSON ``s`` (text ``text``) holds NaN, Infinity, a number beyond a double, or an
    object with a key twice."""
    huge = (
        f"list_bool_or(list_transform(regexp_extract_all({text}, {sql_literal(_RE_TOKENS)}, 1), "
        "lambda t: t <> '' AND isinf(TRY_CAST(t AS DOUBLE))))"
    )
    twice = "lambda k: len(k) > 1 AND len(list_distinct(k)) <> len(k)"
    duplicate = (
        f"(json_type({s}) IN ('OBJECT', 'ARRAY') AND ("
        f"coalesce(list_bool_or(list_transform([json_keys({s})], {twice})), false) OR "
        f"coalesce(list_bool_or(list_transform(json_keys({s}, '$..*'), {twice})), false)))"
    )
    return (
        f"(regexp_matches({text}, {sql_literal(_RE_NON_FINITE)}) OR "
        f"(regexp_matches({text}, {sql_literal(_RE_HUGE)}) AND {huge}) OR {duplicate})"
    )


def _not_storable(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, JSONNumber):
        return True  # (only numbers beyond a double are kept as text)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return True
        return False
    if isinstance(value, list):
        return any(_not_storable(v) for v in value)
    if isinstance(value, DuplicateKeys):
        return True
    if isinstance(value, dict):
        return any(_not_storable(v) for v in value.values())
    return False


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        members = value.written if isinstance(value, DuplicateKeys) else value.items()
        return any("\x00" in k or _has_nul(v) for k, v in members)
    return False
