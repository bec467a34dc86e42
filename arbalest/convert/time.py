"""Date and timestamp rules: the TIMEFORMAT grammar ('auto', epoch, custom formats),
then DATE, TIMESTAMP and TIMESTAMPTZ."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass
from typing import ClassVar, Final

from arbalest.convert._base import (
    _RE_DEC,
    BAD_DATE,
    BAD_TIMESTAMP,
    DEFAULT_OPTIONS,
    ConvertOptions,
    Rejected,
    Rule,
    _is_dec,
    _match,
    _sql_code,
    _sql_matches,
    sql_literal,
)
from arbalest.errors import ConfigurationError

__all__ = ["DateRule", "TimestampRule", "custom_time_format"]

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


def custom_time_format(fmt: str) -> _CustomFormat:
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
                value = self._custom(text, custom_time_format(fmt))
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
                f"WHEN {_sql_matches(s, _RE_ISO_NAIVE)} "
                f"THEN TRY_CAST({s} AS TIMESTAMP) "
                f"WHEN {_sql_matches(s, _RE_ISO_OFFSET)} "
                f"THEN {_in_range(shifted)} "
                f"WHEN {_sql_matches(s, _RE_COMPACT)} "
                f"THEN TRY_CAST(substr({s}, 1, 4) || '-' || substr({s}, 5, 2) || '-' || "
                f"substr({s}, 7, 2) || CASE WHEN strlen({s}) > 8 THEN ' ' || "
                f"substr({s}, 10, 2) || ':' || substr({s}, 12, 2) || ':' || "
                f"substr({s}, 14, 2) ELSE '' END AS TIMESTAMP) "
                f"WHEN {_sql_matches(s, _RE_US)} "
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
                f"CASE WHEN {_sql_matches(s, _RE_DEC)} "
                f"AND abs({micros}) <= 1000000000000000000 "
                f"THEN {_in_range(f'make_timestamp({micros})')} END"
            )
        else:
            custom = custom_time_format(fmt)
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
                f"CASE WHEN {_sql_matches(s, custom.pattern)} THEN TRY_CAST({iso} AS TIMESTAMP) END"
            )

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        return _sql_code(s, v, self.code)

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
