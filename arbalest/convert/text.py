"""Text rules: VARCHAR(n) in bytes of UTF-8 and CHAR(n) in ASCII, with truncation."""

from __future__ import annotations

from typing import ClassVar

from arbalest.convert._base import (
    BAD_CHARACTER,
    DEFAULT_OPTIONS,
    OUT_OF_RANGE,
    ConvertOptions,
    Rejected,
    Rule,
    _sql_code,
    _sql_either,
)

__all__ = ["CharRule", "VarcharRule"]


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # never inside a character
        cut -= 1
    return data[:cut].decode("utf-8")


class _TextRule(Rule):
    """What CHAR(n) and VARCHAR(n) share: n from 1 to a limit, the empty string kept as ''
    (a value, not NULL), a value too long for n (1204, unless ``truncate_columns``) or with a
    character the type cannot hold (1220), and DuckDB's VARCHAR for the converted value."""

    empty_is_null = False
    _name: ClassVar[str]
    _limit: ClassVar[int]
    _bad_character: ClassVar[str]  # the reason for 1220

    def __init__(self, length: int) -> None:
        if not 1 <= length <= self._limit:
            raise ValueError(f"{self._name} length is 1 to {self._limit} bytes, not {length}")
        self.length = length
        self.type_name = f"{self._name}({length})"

    @property
    def sql_type(self) -> str:
        return "VARCHAR"

    def _sql_bad_character(self, s: str) -> str:
        """SQL: text ``s`` has a character the type cannot hold."""
        raise NotImplementedError

    def sql_error(self, s: str, v: str, options: ConvertOptions = DEFAULT_OPTIONS) -> str:
        code = _sql_either(self._sql_bad_character(s), BAD_CHARACTER, OUT_OF_RANGE)
        return _sql_code(s, v, code, given=f"{s} IS NOT NULL")

    def reason(self, code: int) -> str:
        if code == OUT_OF_RANGE:
            return f"String length exceeds DDL length (type {self.type_name})"
        if code == BAD_CHARACTER:
            return f"{self._bad_character} (type {self.type_name})"
        return super().reason(code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.length})"


class VarcharRule(_TextRule):
    """VARCHAR(n): n is in bytes of UTF-8. Longer is 1204 unless ``truncate_columns``.

    The empty string stays ''. U+0000 cannot be stored by PostgreSQL or Redshift: 1220.
    """

    _name = "VARCHAR"
    _limit = 65535
    _bad_character = "String contains U+0000 (NUL), which cannot be stored"

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

    def _sql_bad_character(self, s: str) -> str:
        return f"contains({s}, chr(0))"


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


class CharRule(_TextRule):
    """CHAR(n): single-byte (ASCII) characters only (1220), padded with blanks to n."""

    _name = "CHAR"
    _limit = 4096
    _bad_character = "Multibyte character or NUL not supported for CHAR, use VARCHAR"

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

    def _sql_bad_character(self, s: str) -> str:
        return f"strlen({s}) <> length({s}) OR contains({s}, chr(0))"
