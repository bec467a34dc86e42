"""Rejected records: data until ``max_errors`` is exceeded, then an exception."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from arbalest.convert import BAD_CHARACTER

if TYPE_CHECKING:
    from arbalest.loading.reader import Chunk

__all__ = ["Reject", "blank_invalid_utf8", "clip"]

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


def blank_invalid_utf8(chunks: Sequence[Chunk], workdir: Path) -> list[Reject]:
    """Blank the lines of ``chunks`` that are not UTF-8, in copies written to ``workdir``
    (line numbers stay); a reject for each."""
    rejects = []
    for chunk in chunks:
        data = chunk.path.read_bytes()
        try:
            data.decode("utf-8")
            continue
        except UnicodeDecodeError:
            pass
        lines = data.split(b"\n")
        for index, raw in enumerate(lines):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                rejects.append(
                    Reject(
                        chunk.info.key,
                        chunk.first_line + index,
                        None,
                        clip(raw.decode("utf-8", errors="replace")),
                        f"Invalid UTF-8 byte sequence at byte {exc.start + 1}",
                        BAD_CHARACTER,
                    )
                )
                lines[index] = b""
        fixed = workdir / f"utf8-{chunk.seq}.ndjson"
        fixed.write_bytes(b"\n".join(lines))
        chunk.discard()
        chunk.path, chunk.temporary = fixed, True
    return rejects
