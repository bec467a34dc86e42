"""Redshift COPY's conversion rules, in one place and in two forms that agree.

Every value Arbalest converts goes through exactly one ``Rule`` (one per column type):

* ``Rule.python(text, options)`` converts one value in Python. ``Schema.from_json`` uses it,
  and the tests use it as the reference for the SQL form.
* ``Rule.sql_value(s, options)`` and ``Rule.sql_error(s, v, options)`` are DuckDB SQL
  expressions that convert a whole column of values at once; the transform
  (``arbalest.loading.transform``) runs them in a private in-memory DuckDB for DuckDB and
  PostgreSQL alike (Redshift's ``COPY`` applies its own rules, which these reproduce), so
  per-value work is vectorised.

Both forms take a value's *text*: what Redshift's JSONPath extraction yields, and what
DuckDB's ``json_extract_string`` gives: a JSON string's characters, a number or ``true`` /
``false`` as written by the JSON writer, an object or array as compact JSON text, and
``None`` / NULL for a JSON null or a missing key. ``json_text()`` turns a decoded Python
value into that text. ``Super`` columns take the JSON value itself instead.

The grammar each rule accepts is written as regular expressions shared by both forms (RE2 in
DuckDB, ``re`` with ``re.ASCII`` in Python), so that the two cannot drift: a value either
matches the grammar, and both forms convert it the same way, or it is rejected with the same
code. The choices made where Redshift's guide is loose are listed in ``docs/loading.md``.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from arbalest._typing import JSONValue
from arbalest.errors import ConfigurationError, LoadError

__all__ = [
    "BOOLEAN_FALSE",
    "BOOLEAN_TRUE",
    "MAX_RECORD_BYTES",
    "BooleanRule",
    "CharRule",
    "ConvertOptions",
    "DateRule",
    "DecimalRule",
    "DuplicateKeys",
    "FloatRule",
    "IntegerRule",
    "JSONNumber",
    "Rejected",
    "Rule",
    "SuperRule",
    "TimestampRule",
    "VarcharRule",
    "convert_value",
    "format_double",
    "json_dumps",
    "json_loads",
    "json_text",
    "reason_for",
    "sql_literal",
]

#: Redshift's limit on one JSON record; a longer one is rejected (code 1216).
MAX_RECORD_BYTES: Final = 4 * 1024 * 1024

BOOLEAN_TRUE: Final = frozenset({"t", "true", "y", "yes", "1"})
BOOLEAN_FALSE: Final = frozenset({"f", "false", "n", "no", "0"})

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
            _custom_time_format(self.time_format)  # raises ConfigurationError when bad


DEFAULT_OPTIONS: Final = ConvertOptions()


def sql_literal(text: str) -> str:
    """Quote ``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _match(pattern: str) -> Callable[[str], re.Match[str] | None]:
    return re.compile(pattern, re.ASCII | re.DOTALL).fullmatch


# ---------------------------------------------------------------------------------------
# Text of a decoded JSON value, as the JSON extraction gives it


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


# ---------------------------------------------------------------------------------------
# The rules


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


_RE_INT: Final = r"[+-]?[0-9]+"
_RE_DEC: Final = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_RE_EXP: Final = _RE_DEC + r"[eE][+-]?[0-9]+"
_RE_FLOAT: Final = _RE_DEC + r"(?:[eE][+-]?[0-9]+)?"
_is_int = _match(_RE_INT)
_is_dec = _match(_RE_DEC)
_is_exp = _match(_RE_EXP)
_is_float = _match(_RE_FLOAT)


class IntegerRule(Rule):
    """SMALLINT, INTEGER, BIGINT: optional sign and digits only; out of range is 1222."""

    _TYPES: ClassVar[dict[int, str]] = {16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}

    def __init__(self, bits: int) -> None:
        if bits not in self._TYPES:
            raise ValueError(f"integer columns have 16, 32 or 64 bits, not {bits}")
        self.bits = bits
        self.type_name = self._TYPES[bits]
        self.low = -(2 ** (bits - 1))
        self.high = 2 ** (bits - 1) - 1

    def _python(self, text: str, options: ConvertOptions) -> int:
        if not _is_int(text):
            raise Rejected(BAD_DIGIT)
        if len(text.lstrip("+-").lstrip("0")) > 19:
            raise Rejected(INT_OVERFLOW)  # (and int() refuses strings of 4,300+ digits)
        value = int(text)
        if not self.low <= value <= self.high:
            raise Rejected(INT_OVERFLOW)
        return value

    def sql_value(self, s: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        # The grammar check only where the text is not the value's own canonical text
        # (-?[0-9]+, which the grammar accepts): a cast and a comparison cost less than the
        # regular expression, and '+5' or '007' still go through it.
        cast = f"TRY_CAST({s} AS {self.type_name})"
        return (
            f"CASE WHEN CAST({cast} AS VARCHAR) = {s} "
            f"OR regexp_full_match({s}, {sql_literal(_RE_INT)}) THEN {cast} END"
        )

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        return (
            f"CASE WHEN {_present(s)} AND {v} IS NULL THEN "
            f"CASE WHEN regexp_full_match({s}, {sql_literal(_RE_INT)}) "
            f"THEN {INT_OVERFLOW} ELSE {BAD_DIGIT} END END"
        )

    def __repr__(self) -> str:
        return f"IntegerRule(bits={self.bits})"


class DecimalRule(Rule):
    """DECIMAL(p, s): digits beyond the scale are truncated (20.259 -> 20.25).

    Plain notation is truncated as text, exactly. Exponent notation (``1.5e2``, and JSON
    numbers the writer prints that way, below 1e-6 or from 1e21) is read as a double first.
    Too many integer digits is 1204; anything else that is not a number is 1207.
    """

    def __init__(self, precision: int, scale: int) -> None:
        if not 1 <= precision <= 38 or not 0 <= scale <= precision:
            raise ValueError(
                f"DECIMAL needs 1 <= precision <= 38 and 0 <= scale <= precision, "
                f"not ({precision}, {scale})"
            )
        self.precision = precision
        self.scale = scale
        self._quantum = decimal.Decimal(1).scaleb(-scale)
        self._limit = decimal.Decimal(10) ** (precision - scale)
        self._context = decimal.Context(prec=80)
        self.type_name = f"DECIMAL({precision},{scale})"

    def _python(self, text: str, options: ConvertOptions) -> decimal.Decimal:
        ctx = self._context
        if _is_dec(text):
            point = text.find(".")
            cut = text if point < 0 else text[: point + 1 + self.scale]
            value = ctx.create_decimal(cut + "0" if cut.endswith(".") else cut)
        elif _is_exp(text):
            number = float(text)
            if not math.isfinite(number):
                raise Rejected(OUT_OF_RANGE)
            shifted = number * 10.0**self.scale
            if not math.isfinite(shifted):
                raise Rejected(OUT_OF_RANGE)
            scaled = math.trunc(shifted)
            value = ctx.create_decimal(scaled).scaleb(-self.scale, ctx)
        else:
            raise Rejected(BAD_DIGIT)
        # (copy_abs, not abs(): abs() rounds to the global context's 28 digits)
        if value.copy_abs() >= self._limit:
            raise Rejected(OUT_OF_RANGE)
        value = value.quantize(self._quantum, context=ctx)
        return value.copy_abs() if value == 0 else value

    def sql_value(self, s: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        p, sc = self.precision, self.scale
        # Truncation as text: keep `scale` digits after the point ("5." + "0" for scale 0).
        keep = f"left({s}, instr({s}, '.') + {sc})" + (" || '0'" if sc == 0 else "")
        plain = (
            f"TRY_CAST(CASE WHEN instr({s}, '.') > 0 THEN {keep} ELSE {s} END AS DECIMAL({p},{sc}))"
        )
        # Exponent notation: the double times 10^scale, truncated to an integer (exact),
        # written back as text with the decimal point put in, then cast (exact).
        scaled = f"TRY_CAST(trunc(TRY_CAST({s} AS DOUBLE) * {10.0**sc!r}) AS HUGEINT)"
        if sc:
            raw = f"CAST(abs({scaled}) AS VARCHAR)"
            digits = f"(repeat('0', greatest(0, {sc + 1} - strlen({raw}))) || {raw})"
            text = (
                f"CASE WHEN {scaled} < 0 THEN '-' ELSE '' END || "
                f"substr({digits}, 1, strlen({digits}) - {sc}) || '.' || "
                f"substr({digits}, strlen({digits}) - {sc - 1})"
            )
            exp = f"TRY_CAST({text} AS DECIMAL({p},{sc}))"
        else:
            exp = f"TRY_CAST({scaled} AS DECIMAL({p},0))"
        # First the value's canonical text (-?[0-9]+ with exactly `scale` digits after the
        # point: plain notation with nothing to truncate), without a regular expression.
        cast = f"TRY_CAST({s} AS DECIMAL({p},{sc}))"
        return (
            f"CASE WHEN CAST({cast} AS VARCHAR) = {s} THEN {cast} "
            f"WHEN regexp_full_match({s}, {sql_literal(_RE_DEC)}) THEN {plain} "
            f"WHEN regexp_full_match({s}, {sql_literal(_RE_EXP)}) THEN {exp} END"
        )

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        return (
            f"CASE WHEN {_present(s)} AND {v} IS NULL THEN "
            f"CASE WHEN regexp_full_match({s}, {sql_literal(_RE_FLOAT)}) "
            f"THEN {OUT_OF_RANGE} ELSE {BAD_DIGIT} END END"
        )

    def __repr__(self) -> str:
        return f"DecimalRule({self.precision}, {self.scale})"


class FloatRule(Rule):
    """REAL (32 bits) and DOUBLE PRECISION (64 bits) from decimal or exponent notation.

    NaN and Infinity are not numbers here (1208); a value beyond the type's range is 1204.
    A REAL is rounded from the double, as a C cast does.
    """

    def __init__(self, bits: int) -> None:
        if bits not in (32, 64):
            raise ValueError(f"floating point columns have 32 or 64 bits, not {bits}")
        self.bits = bits
        self.type_name = "REAL" if bits == 32 else "DOUBLE"

    def _python(self, text: str, options: ConvertOptions) -> float:
        if not _is_float(text):
            raise Rejected(BAD_FLOAT)
        value = float(text)
        if self.bits == 32 and math.isfinite(value):
            value = ctypes.c_float(value).value
        if not math.isfinite(value):
            raise Rejected(OUT_OF_RANGE)
        return value

    def sql_value(self, s: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        double = f"TRY_CAST({s} AS DOUBLE)"
        value = double if self.bits == 64 else f"TRY_CAST({double} AS REAL)"
        return (
            f"CASE WHEN regexp_full_match({s}, {sql_literal(_RE_FLOAT)}) "
            f"AND NOT isinf({double}) THEN {value} END"
        )

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        return (
            f"CASE WHEN {_present(s)} AND {v} IS NULL THEN "
            f"CASE WHEN regexp_full_match({s}, {sql_literal(_RE_FLOAT)}) "
            f"THEN {OUT_OF_RANGE} ELSE {BAD_FLOAT} END END"
        )

    def __repr__(self) -> str:
        return f"FloatRule(bits={self.bits})"


class BooleanRule(Rule):
    """BOOLEAN from true/false and, in any case, t/true/y/yes/1 and f/false/n/no/0."""

    type_name = "BOOLEAN"

    def _python(self, text: str, options: ConvertOptions) -> bool:
        lowered = text.lower()
        if lowered in BOOLEAN_TRUE:
            return True
        if lowered in BOOLEAN_FALSE:
            return False
        raise Rejected(BAD_BOOLEAN)

    def sql_value(self, s: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        yes = ", ".join(sql_literal(t) for t in sorted(BOOLEAN_TRUE))
        no = ", ".join(sql_literal(f) for f in sorted(BOOLEAN_FALSE))
        return (
            f"CASE WHEN {s} = 'true' THEN true WHEN {s} = 'false' THEN false "
            f"WHEN lower({s}) IN ({yes}) THEN true WHEN lower({s}) IN ({no}) THEN false END"
        )

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        return f"CASE WHEN {_present(s)} AND {v} IS NULL THEN {BAD_BOOLEAN} END"


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # never inside a character
        cut -= 1
    return data[:cut].decode("utf-8")


class VarcharRule(Rule):
    """VARCHAR(n): n is in bytes of UTF-8. Longer is 1204 unless ``truncate_columns``.

    The empty string stays ''. U+0000 cannot be stored by PostgreSQL or Redshift: 1220.
    """

    empty_is_null = False

    def __init__(self, length: int) -> None:
        if not 1 <= length <= 65535:
            raise ValueError(f"VARCHAR length is 1 to 65535 bytes, not {length}")
        self.length = length
        self.type_name = f"VARCHAR({length})"

    @property
    def sql_type(self) -> str:
        return "VARCHAR"

    def _python(self, text: str, options: ConvertOptions) -> str:
        if "\x00" in text:
            raise Rejected(BAD_CHARACTER, "String contains U+0000 (NUL)")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise Rejected(BAD_CHARACTER, "String is not valid UTF-8") from None
        if size > self.length:
            if not options.truncate_columns:
                raise Rejected(OUT_OF_RANGE, "String length exceeds DDL length")
            return _truncate_utf8(text, self.length)
        return text

    def sql_value(self, s: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        n = self.length
        if not options.truncate_columns:
            return f"CASE WHEN strlen({s}) <= {n} AND NOT contains({s}, chr(0)) THEN {s} END"
        return (
            f"CASE WHEN contains({s}, chr(0)) THEN NULL WHEN strlen({s}) <= {n} THEN {s} "
            f"ELSE {_sql_truncate_utf8(s, n)} END"
        )

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        return (
            f"CASE WHEN {s} IS NOT NULL AND {v} IS NULL THEN "
            f"CASE WHEN contains({s}, chr(0)) THEN {BAD_CHARACTER} ELSE {OUT_OF_RANGE} END END"
        )

    def reason(self, code: int) -> str:
        if code == OUT_OF_RANGE:
            return f"String length exceeds DDL length (type {self.type_name})"
        if code == BAD_CHARACTER:
            return f"String contains U+0000 (NUL), which cannot be stored (type {self.type_name})"
        return super().reason(code)

    def __repr__(self) -> str:
        return f"VarcharRule({self.length})"


def _sql_truncate_utf8(s: str, n: int) -> str:
    # Cut the UTF-8 bytes at n, then step back over continuation bytes (10xxxxxx) so that no
    # character is split: hex digits 8, 9, A, B start a continuation byte.
    h = f"hex(encode({s}))"

    def cont(byte: str | int) -> str:
        return f"substr({h}, 2 * ({byte}) - 1, 1) IN ('8', '9', 'A', 'B')"

    cut = (
        f"CASE WHEN NOT {cont(f'{n} + 1')} THEN {n} WHEN NOT {cont(n)} THEN {n} - 1 "
        f"WHEN NOT {cont(f'{n} - 1')} THEN {n} - 2 ELSE {n} - 3 END"
    )
    return f"decode(unhex(left({h}, 2 * ({cut}))))"


class CharRule(Rule):
    """CHAR(n): single-byte (ASCII) characters only (1220), padded with blanks to n."""

    empty_is_null = False

    def __init__(self, length: int) -> None:
        if not 1 <= length <= 4096:
            raise ValueError(f"CHAR length is 1 to 4096 bytes, not {length}")
        self.length = length
        self.type_name = f"CHAR({length})"

    @property
    def sql_type(self) -> str:
        return "VARCHAR"

    def _python(self, text: str, options: ConvertOptions) -> str:
        if not text.isascii() or "\x00" in text:
            raise Rejected(BAD_CHARACTER)
        if len(text) > self.length:
            if not options.truncate_columns:
                raise Rejected(OUT_OF_RANGE)
            text = text[: self.length]
        return text.ljust(self.length)

    def sql_value(self, s: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        n = self.length
        fits = f"strlen({s}) <= {n}"
        body = (
            f"rpad(left({s}, {n}), {n}, ' ')"
            if options.truncate_columns
            else (f"CASE WHEN {fits} THEN rpad({s}, {n}, ' ') END")
        )
        return f"CASE WHEN strlen({s}) = length({s}) AND NOT contains({s}, chr(0)) THEN {body} END"

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        return (
            f"CASE WHEN {s} IS NOT NULL AND {v} IS NULL THEN "
            f"CASE WHEN strlen({s}) <> length({s}) OR contains({s}, chr(0)) "
            f"THEN {BAD_CHARACTER} ELSE {OUT_OF_RANGE} END END"
        )

    def reason(self, code: int) -> str:
        if code == OUT_OF_RANGE:
            return f"String length exceeds DDL length (type {self.type_name})"
        if code == BAD_CHARACTER:
            return (
                f"Multibyte character or NUL not supported for CHAR, use VARCHAR "
                f"(type {self.type_name})"
            )
        return super().reason(code)

    def __repr__(self) -> str:
        return f"CharRule({self.length})"


# --- dates and timestamps ---------------------------------------------------------------

_HOUR = r"(?:[01]?[0-9]|2[0-3])"
_MINUTE = r"[0-5][0-9]"
_TIME = rf"{_HOUR}:{_MINUTE}(?::{_MINUTE}(?:\.[0-9]{{1,9}})?)?"
_OFFSET = rf"[+-](?:0[0-9]|1[0-4])(?::?{_MINUTE})?"
_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"  # 0001 to 9999
_DATE = rf"{_YEAR}-[0-9]{{1,2}}-[0-9]{{1,2}}"
# ISO 8601 without an offset (UTC designator Z allowed) and with one.
_RE_ISO_NAIVE: Final = rf"{_DATE}(?:[T ]{_TIME}Z?)?"
_RE_ISO_OFFSET: Final = rf"{_DATE}[T ]{_TIME}{_OFFSET}"
# YYYYMMDD HHMISS, and MM/DD/YYYY HH:MI:SS.
_RE_COMPACT: Final = rf"{_YEAR}[0-9]{{4}}(?: (?:[01][0-9]|2[0-3]){_MINUTE}{_MINUTE})?"
_RE_US: Final = rf"[0-9]{{1,2}}/[0-9]{{1,2}}/{_YEAR}(?: {_HOUR}:{_MINUTE}(?::{_MINUTE})?)?"
_is_iso_naive = _match(_RE_ISO_NAIVE)
_is_iso_offset = _match(_RE_ISO_OFFSET)
_is_compact = _match(_RE_COMPACT)
_is_us = _match(_RE_US)
_ISO_PARTS = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[T ]([0-9]{1,2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?(Z|[+-]([0-9]{2}):?([0-9]{2})?)?",
    re.ASCII,
)
_MIN_TS: Final = dt.datetime(1, 1, 1)
_MAX_TS: Final = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
_EPOCH: Final = dt.datetime(1970, 1, 1)
_RE_EPOCH: Final = _RE_DEC

_CUSTOM_TOKENS: Final = (
    ("YYYY", f"({_YEAR})", "y"),
    ("HH24", "([01][0-9]|2[0-3])", "h"),
    ("HH", "([01][0-9]|2[0-3])", "h"),
    ("MM", "(0[1-9]|1[0-2])", "mo"),
    ("DD", "(0[1-9]|[12][0-9]|3[01])", "d"),
    ("MI", "([0-5][0-9])", "mi"),
    ("SS", "([0-5][0-9])", "s"),
)


_REGEX_SPECIAL: Final = frozenset("\\.^$|?*+()[]{}")


@dataclass(frozen=True)
class _CustomFormat:
    pattern: str  # the whole value; one group per part, in `parts` order
    parts: tuple[str, ...]  # names: y, mo, d, h, mi, s, f


def _custom_time_format(fmt: str) -> _CustomFormat:
    """Translate a Redshift TIMEFORMAT string into a regular expression.

    Supported: YYYY, MM, DD, HH24 (or HH), MI, SS, optionally followed by a fraction
    written as ``.S...`` (one S per digit, up to 6), and literal separators.
    """
    pattern: list[str] = []
    parts: list[str] = []
    i = 0
    while i < len(fmt):
        if fmt.startswith("SS.S", i):
            j = i + 3
            while j < len(fmt) and fmt[j] == "S":
                j += 1
            digits = j - (i + 3)
            if digits > 6:
                raise ConfigurationError(
                    f"time_format {fmt!r}: at most 6 fractional digits (SS.SSSSSS)"
                )
            pattern.append(f"([0-5][0-9])\\.([0-9]{{1,{digits}}})")
            parts += ["s", "f"]
            i = j
            continue
        for token, regex, part in _CUSTOM_TOKENS:
            if fmt.startswith(token, i):
                if part in parts:
                    raise ConfigurationError(f"time_format {fmt!r} repeats {token}")
                pattern.append(regex)
                parts.append(part)
                i += len(token)
                break
        else:
            ch = fmt[i]
            if ch.isalnum() and ch not in "TZ":
                raise ConfigurationError(
                    f"time_format {fmt!r}: unsupported part at {fmt[i:]!r}; use 'auto', "
                    "'epochsecs', 'epochmillisecs' or YYYY, MM, DD, HH24, MI, SS, SS.SSS"
                )
            pattern.append("\\" + ch if ch in _REGEX_SPECIAL else ch)
            i += 1
    if not {"y", "mo", "d"} <= set(parts):
        raise ConfigurationError(f"time_format {fmt!r} needs YYYY, MM and DD")
    return _CustomFormat("".join(pattern), tuple(parts))


# ISO 8601 in UTC as most JSON writers put it (JavaScript's toISOString, Java's Instant), by
# length: the text of a timestamp in years 1000 to 9999 written in one of these formats always
# matches _RE_ISO_NAIVE. Each format costs planning time in every batch, so only these three.
_ISO_CANONICAL: Final[dict[int, str]] = {
    20: "%Y-%m-%dT%H:%M:%SZ",
    24: "%Y-%m-%dT%H:%M:%S.%gZ",
    27: "%Y-%m-%dT%H:%M:%S.%fZ",
}


def _sql_iso_canonical(s: str) -> str:
    """SQL: text ``s`` is a timestamp written back exactly in one of the common ISO 8601
    formats, so it matches the naive ISO grammar and its value is ``TRY_CAST(s AS
    TIMESTAMP)``. Cheaper than the regular expression, which the other texts still meet."""
    value = f"TRY_CAST({s} AS TIMESTAMP)"
    whens = " ".join(
        f"WHEN {length} THEN strftime({value}, {sql_literal(fmt)}) = {s}"
        for length, fmt in _ISO_CANONICAL.items()
    )
    return (
        f"({value} BETWEEN TIMESTAMP '1000-01-01 00:00:00' "
        f"AND TIMESTAMP '9999-12-31 23:59:59.999999' "
        f"AND CASE strlen({s}) {whens} ELSE false END)"
    )


def _in_range(value: str) -> str:
    return (
        f"(CASE WHEN {value} BETWEEN TIMESTAMP '0001-01-01 00:00:00' "
        f"AND TIMESTAMP '9999-12-31 23:59:59.999999' THEN {value} END)"
    )


class _TemporalRule(Rule):
    """Shared by DATE, TIMESTAMP and TIMESTAMPTZ: the TIMEFORMAT grammar."""

    code: ClassVar[int] = BAD_TIMESTAMP

    # -- Python --------------------------------------------------------------------------

    def _instant(self, text: str, options: ConvertOptions) -> dt.datetime:
        """Parse ``text`` into a naive datetime in UTC; raise Rejected when it is not one."""
        fmt = options.time_format
        try:
            if fmt == "auto":
                value = self._auto(text)
            elif fmt in ("epochsecs", "epochmillisecs"):
                value = self._epoch(text, millis=fmt == "epochmillisecs")
            else:
                value = self._custom(text, _custom_time_format(fmt))
        except (ValueError, OverflowError):
            raise Rejected(self.code) from None
        if value is None or not _MIN_TS <= value <= _MAX_TS:
            raise Rejected(self.code)
        return value

    @staticmethod
    def _auto(text: str) -> dt.datetime | None:
        if _is_iso_naive(text) or _is_iso_offset(text):
            m = _ISO_PARTS.fullmatch(text)
            assert m is not None
            y, mo, d, h, mi, s, f, tz, tzh, tzm = m.groups()
            value = dt.datetime(
                int(y),
                int(mo),
                int(d),
                int(h or 0),
                int(mi or 0),
                int(s or 0),
                int((f or "")[:6].ljust(6, "0")),
            )
            if tz and tz != "Z":
                offset = dt.timedelta(hours=int(tzh), minutes=int(tzm or 0))
                value = value - offset if tz[0] == "+" else value + offset
            return value
        if _is_compact(text):
            date, _, time = text.partition(" ")
            return dt.datetime(
                int(date[:4]),
                int(date[4:6]),
                int(date[6:8]),
                int(time[:2] or 0),
                int(time[2:4] or 0),
                int(time[4:6] or 0),
            )
        if _is_us(text):
            date, _, time = text.partition(" ")
            mo, d, y = date.split("/")
            h, mi, s = ([*time.split(":"), "0", "0"][:3]) if time else ("0", "0", "0")
            return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
        return None

    @staticmethod
    def _epoch(text: str, *, millis: bool) -> dt.datetime | None:
        if not _is_dec(text):
            return None
        point = text.find(".")
        cut = text if point < 0 else text[: point + 1 + (3 if millis else 6)]
        ctx = decimal.Context(prec=80)  # never the global context's 28 digits
        amount = ctx.create_decimal(cut + "0" if cut.endswith(".") else cut)
        micros = int(ctx.multiply(amount, 1_000 if millis else 1_000_000))
        if abs(micros) > 10**18:
            return None
        return _EPOCH + dt.timedelta(microseconds=micros)

    @staticmethod
    def _custom(text: str, fmt: _CustomFormat) -> dt.datetime | None:
        m = re.fullmatch(fmt.pattern, text, re.ASCII)
        if m is None:
            return None
        part = dict(zip(fmt.parts, m.groups(), strict=True))
        return dt.datetime(
            int(part["y"]),
            int(part["mo"]),
            int(part["d"]),
            int(part.get("h", 0)),
            int(part.get("mi", 0)),
            int(part.get("s", 0)),
            int(part.get("f", "").ljust(6, "0")),
        )

    # -- SQL -------------------------------------------------------------------------------

    def _sql_instant(self, s: str, options: ConvertOptions) -> str:
        """SQL: the TIMESTAMP (UTC, naive) that text ``s`` denotes, or NULL."""
        fmt = options.time_format
        if fmt == "auto":
            # Only a value with an offset can leave years 1 to 9999 (the grammar keeps the
            # others inside), so only that branch checks the range.
            shifted = f"timezone('UTC', TRY_CAST({s} AS TIMESTAMPTZ))"
            return (
                f"CASE WHEN {_sql_iso_canonical(s)} THEN TRY_CAST({s} AS TIMESTAMP) "
                f"WHEN regexp_full_match({s}, {sql_literal(_RE_ISO_NAIVE)}) "
                f"THEN TRY_CAST({s} AS TIMESTAMP) "
                f"WHEN regexp_full_match({s}, {sql_literal(_RE_ISO_OFFSET)}) "
                f"THEN {_in_range(shifted)} "
                f"WHEN regexp_full_match({s}, {sql_literal(_RE_COMPACT)}) "
                f"THEN TRY_CAST(substr({s}, 1, 4) || '-' || substr({s}, 5, 2) || '-' || "
                f"substr({s}, 7, 2) || CASE WHEN strlen({s}) > 8 THEN ' ' || "
                f"substr({s}, 10, 2) || ':' || substr({s}, 12, 2) || ':' || "
                f"substr({s}, 14, 2) ELSE '' END AS TIMESTAMP) "
                f"WHEN regexp_full_match({s}, {sql_literal(_RE_US)}) "
                f"THEN TRY_CAST(regexp_replace({s}, "
                f"'^([0-9]+)/([0-9]+)/([0-9]+)', '\\3-\\1-\\2') AS TIMESTAMP) END"
            )
        elif fmt in ("epochsecs", "epochmillisecs"):
            digits, unit = (6, 1_000_000) if fmt == "epochsecs" else (3, 1_000)
            cut = (
                f"CASE WHEN instr({s}, '.') > 0 "
                f"THEN left({s}, instr({s}, '.') + {digits}) ELSE {s} END"
            )
            micros = f"TRY_CAST(TRY_CAST({cut} AS DECIMAL(38,6)) * {unit} AS BIGINT)"
            return (
                f"CASE WHEN regexp_full_match({s}, {sql_literal(_RE_DEC)}) "
                f"AND abs({micros}) <= 1000000000000000000 "
                f"THEN {_in_range(f'make_timestamp({micros})')} END"
            )
        else:
            custom = _custom_time_format(fmt)
            group = {name: i + 1 for i, name in enumerate(custom.parts)}

            def part(name: str, default: str) -> str:
                if name not in group:
                    return sql_literal(default)
                return (
                    f"regexp_extract({s}, {sql_literal('^' + custom.pattern + '$')}, {group[name]})"
                )

            iso = (
                f"{part('y', '')} || '-' || {part('mo', '')} || '-' || {part('d', '')} || ' ' "
                f"|| {part('h', '00')} || ':' || {part('mi', '00')} || ':' || {part('s', '00')}"
                f" || '.' || {part('f', '0')}"
            )
            return (
                f"CASE WHEN regexp_full_match({s}, {sql_literal(custom.pattern)}) "
                f"THEN TRY_CAST({iso} AS TIMESTAMP) END"
            )

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        return f"CASE WHEN {_present(s)} AND {v} IS NULL THEN {self.code} END"

    def reason(self, code: int) -> str:
        if code == self.code:
            return (
                f"Invalid {'date' if code == BAD_DATE else 'timestamp'} format "
                f"(type {self.type_name})"
            )
        return super().reason(code)


class TimestampRule(_TemporalRule):
    """TIMESTAMP (an offset is applied, then dropped: UTC) or TIMESTAMPTZ (the instant).

    TIMEFORMAT 'auto' accepts ISO 8601 (``2019-02-11T05:09:12.195Z``,
    ``1996-01-08 04:05:06.789``, ``1997-12-17 07:37:16-08``, ``2019-02-11``),
    ``YYYYMMDD HHMISS`` and ``MM/DD/YYYY HH:MI:SS``; fractions beyond microseconds are
    truncated. Anything else is 1206.
    """

    def __init__(self, *, timezone: bool = False) -> None:
        self.timezone = timezone
        self.type_name = "TIMESTAMPTZ" if timezone else "TIMESTAMP"

    def _python(self, text: str, options: ConvertOptions) -> dt.datetime:
        value = self._instant(text, options)
        return value.replace(tzinfo=dt.UTC) if self.timezone else value

    def sql_value(self, s: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        instant = self._sql_instant(s, options)
        # (from epoch microseconds: the same instant as timezone('UTC', ...), at half the cost)
        return f"make_timestamptz(epoch_us({instant}))" if self.timezone else instant

    def __repr__(self) -> str:
        return f"TimestampRule(timezone={self.timezone})"


class DateRule(_TemporalRule):
    """DATE: the TIMEFORMAT grammar, then the time part (in UTC) is dropped; bad is 1205."""

    type_name = "DATE"
    code = BAD_DATE

    def _python(self, text: str, options: ConvertOptions) -> dt.date:
        return self._instant(text, options).date()

    def sql_value(self, s: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        return f"CAST({self._sql_instant(s, options)} AS DATE)"


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
        return (
            f"CASE WHEN {s} IS NOT NULL AND {v} IS NULL AND {text} <> 'null' THEN "
            f"CASE WHEN regexp_matches({text}, {sql_literal(_RE_JSON_NUL)}) "
            f"THEN {BAD_CHARACTER} ELSE {BAD_SUPER} END END"
        )

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
