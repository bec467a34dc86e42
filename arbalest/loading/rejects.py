"""Rejected records: data until ``max_errors`` is exceeded, then an exception."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Reject", "clip"]

#: STL_LOAD_ERRORS keeps the first 1024 characters of a rejected value.
MAX_VALUE_CHARS = 1024


@dataclass(frozen=True)
class Reject:
    """One rejected record, with the facts Redshift's STL_LOAD_ERRORS keeps.

    Attributes:
        key: The object key (``filename``).
        line: The line the record ends on (``line_number``); for CSV, the line it starts on;
            for Parquet, the row's number in the object (from 1).
        column: The column whose value failed, or ``None`` for a record that is not valid
            JSON (``colname``).
        value: The raw value, at most 1024 characters (``raw_field_value``).
        reason: What is wrong (``err_reason``).
        code: Redshift's error code (``err_code``).
    """

    key: str
    line: int
    column: str | None
    value: str | None
    reason: str
    code: int

    def __str__(self) -> str:
        where = f"{self.key}:{self.line}"
        column = f" column {self.column}" if self.column else ""
        value = "" if self.value is None else f" value {clip(self.value, 80)!r}"
        return f"{where}{column}: {self.reason}{value} [{self.code}]"


def clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """At most ``limit`` characters of ``text``."""
    return text if len(text) <= limit else text[:limit]
