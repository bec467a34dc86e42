"""Number and boolean rules: SMALLINT, INTEGER, BIGINT, DECIMAL, REAL, DOUBLE, BOOLEAN."""

from __future__ import annotations

import ctypes
import decimal
import math
from typing import ClassVar, Final

from arbalest.convert._base import (
    _RE_DEC,
    _RE_EXP,
    _RE_FLOAT,
    _RE_INT,
    BAD_BOOLEAN,
    BAD_DIGIT,
    BAD_FLOAT,
    DEFAULT_OPTIONS,
    INT_OVERFLOW,
    OUT_OF_RANGE,
    ConvertOptions,
    Rejected,
    Rule,
    _is_dec,
    _is_exp,
    _is_float,
    _is_int,
    _sql_code,
    _sql_either,
    _sql_matches,
    sql_literal,
)

__all__ = [
    "BOOLEAN_FALSE",
    "BOOLEAN_TRUE",
    "BooleanRule",
    "DecimalRule",
    "FloatRule",
    "IntegerRule",
]

BOOLEAN_TRUE: Final = frozenset({"t", "true", "y", "yes", "1"})
BOOLEAN_FALSE: Final = frozenset({"f", "false", "n", "no", "0"})


class _NumberRule(Rule):
    """A number's errors, declared: text outside the type's grammar (``grammar``) is
    ``_bad``, a value in it that the type cannot hold ``_beyond``."""

    #: The text the rule reads (a regular expression, unanchored): the lanes that convert
    #: outside the rule match their own checks against it.
    grammar: ClassVar[str]
    _beyond: ClassVar[int] = OUT_OF_RANGE
    _bad: ClassVar[int] = BAD_DIGIT

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        matches = _sql_matches(s, self.grammar)
        return _sql_code(s, v, _sql_either(matches, self._beyond, self._bad))


class IntegerRule(_NumberRule):
    """SMALLINT, INTEGER, BIGINT: optional sign and digits only; out of range is 1222."""

    grammar = _RE_INT
    _beyond = INT_OVERFLOW
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
        canonical = f"CAST({cast} AS VARCHAR) = {s}"
        return f"CASE WHEN {canonical} OR {_sql_matches(s, _RE_INT)} THEN {cast} END"

    def __repr__(self) -> str:
        return f"IntegerRule(bits={self.bits})"


class DecimalRule(_NumberRule):
    """DECIMAL(p, s): digits beyond the scale are truncated (20.259 -> 20.25).

    Plain notation is truncated as text, exactly. Exponent notation (``1.5e2``, and JSON
    numbers the writer prints that way, below 1e-6 or from 1e21) is read as a double first.
    Too many integer digits is 1204; anything else that is not a number is 1207.
    """

    grammar = _RE_FLOAT

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
            f"WHEN {_sql_matches(s, _RE_DEC)} THEN {plain} "
            f"WHEN {_sql_matches(s, _RE_EXP)} THEN {exp} END"
        )

    def __repr__(self) -> str:
        return f"DecimalRule({self.precision}, {self.scale})"


class FloatRule(_NumberRule):
    """REAL (32 bits) and DOUBLE PRECISION (64 bits) from decimal or exponent notation.

    NaN and Infinity are not numbers here (1208); a value beyond the type's range is 1204.
    A REAL is rounded from the double, as a C cast does.
    """

    grammar = _RE_FLOAT
    _bad = BAD_FLOAT

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
        return f"CASE WHEN {_sql_matches(s, _RE_FLOAT)} AND NOT isinf({double}) THEN {value} END"

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
        return _sql_code(s, v, BAD_BOOLEAN)
