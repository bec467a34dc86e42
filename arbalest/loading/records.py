"""Finding JSON records in lines that are not one record each.

The fast path takes every line that is one JSON object (or array) by itself, which is all of
newline-delimited JSON. This module handles the rest, exactly and in Python: records that
span lines (pretty-printed), several records on one line, and malformed stretches.

The rules (REDSHIFT_COPY.md, "Source objects"):

* An object holds JSON values one after another, separated by whitespace. Each top-level
  object or array is one record; its line is the line it ends on.
* A record may span lines, but a line that is a whole JSON object by itself always starts a
  new record: a record still open when one comes is malformed (truncated), and reading
  resumes at that line. This keeps one truncated line of newline-delimited JSON from
  swallowing the records after it.
* A malformed stretch (a top-level value that is not an object or array, stray text, a
  string broken by a line end) is one rejected record, from where it starts to the end of
  the line where it is found bad; reading resumes on the next line.
* A record over 4 MB is read on to its end without being kept (or to a line that is a whole
  JSON object by itself) and rejected once, on the line it ends on.

This module finds where records start and end; whether a record's text is valid JSON is
decided by the same JSON reader as on the fast path (DuckDB's), so that both paths accept
exactly the same records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from arbalest.convert import BAD_RECORD, MAX_RECORD_BYTES

__all__ = ["Carry", "Malformed", "Record", "ScanResult", "scan", "strict_loads"]

_WS: Final = re.compile(r"[ \t\r\n]*")
_STRUCTURE: Final = re.compile(r'["{}\[\]]')
_STRING_REST: Final = re.compile(r'(?:[^"\\]|\\.)*"')
_SCALAR: Final = re.compile(r'[^ \t\r\n{}\[\]",:]+')


@dataclass(frozen=True)
class Record:
    """A complete JSON object or array, and the line it ends on."""

    line: int
    text: str


@dataclass(frozen=True)
class Malformed:
    """A stretch that is not a valid record, and the line where it was found bad."""

    line: int
    text: str
    reason: str
    code: int = BAD_RECORD


@dataclass(frozen=True)
class Carry:
    """A record still open at the end of a chunk: its lines so far, from where it starts.

    A record already known to be over 4 MB is not kept: ``lines`` then holds only the start
    of its text (the reject's value), and ``skip_depth`` how deeply nested the next chunk
    begins inside it.
    """

    start_line: int
    lines: tuple[str, ...]
    skip_depth: int | None = None


@dataclass(frozen=True)
class _Resume:
    """A rejected record ended at (line, col) of the scan, and reading goes on there."""

    line: int
    col: int


@dataclass
class ScanResult:
    """What a scan found, and the lines it took over from the fast path."""

    records: list[Record] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    consumed: set[int] = field(default_factory=set)
    carry: Carry | None = None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def strict_loads(text: str) -> object:
    """Parse JSON text strictly: no NaN or Infinity, no control characters in strings."""
    return json.loads(text, parse_constant=_reject_constant)


def _is_standalone_object(line: str) -> bool:
    stripped = line.strip(" \t\r")
    if not stripped.startswith("{"):
        return False
    try:
        return isinstance(strict_loads(stripped), dict)
    except (ValueError, RecursionError):
        return False


class _Scanner:
    def __init__(
        self, lines: Sequence[str], first_line: int, carry: Carry | None, last: bool
    ) -> None:
        self.carried = len(carry.lines) if carry else 0
        self.lines: list[str] = [*(carry.lines if carry else ()), *lines]
        self.first = carry.start_line if carry else first_line
        self.chunk_first = first_line
        self.last = last
        self.result = ScanResult()

    def number(self, index: int) -> int:
        return self.first + index

    def consume(self, start: int, end: int) -> None:
        for index in range(max(start, self.carried), end + 1):
            self.result.consumed.add(self.number(index))

    def malformed(self, start: tuple[int, int], end: int, reason: str) -> int:
        """Reject from ``start`` to the end of line ``end``; return where reading resumes."""
        i, col = start
        text = "\n".join([self.lines[i][col:], *self.lines[i + 1 : end + 1]])
        self.result.malformed.append(Malformed(self.number(end), text[:1024], reason))
        self.consume(i, end)
        return end + 1

    def run_from(self, index: int) -> int:
        """Scan from the start of line ``index`` to a line end outside any value."""
        return self.run_from_column(index, 0)

    def run_from_column(self, index: int, col: int) -> int:
        """Scan from column ``col`` of line ``index`` to a line end outside any value."""
        i = index
        while i < len(self.lines):
            line = self.lines[i]
            col = _WS.match(line, col).end()  # type: ignore[union-attr]
            if col >= len(line):
                self.consume(i, i)
                return i + 1
            if _too_large(line[col:].rstrip(" \t\r")):
                return self.malformed((i, col), i, "Record is larger than 4 MB")
            outcome = self.value(i, col)
            if outcome is None:  # carried into the next chunk
                return len(self.lines)
            end_line, end_col, resume = outcome
            if resume is not None:
                return resume
            i, col = end_line, end_col
        return i

    def value(self, i: int, col: int) -> tuple[int, int, int | None] | None:
        """Read one top-level value starting at (i, col).

        Returns ``(line, column)`` after it and ``None``, or a line to resume at after a
        malformed stretch; ``None`` when the value continues past the chunk.
        """
        line = self.lines[i]
        char = line[col]
        if char in "{[":
            end = self.container_end(i, col)
            if end is None:
                return None
            if isinstance(end, int):  # malformed; resume there
                return (end, 0, end)
            if isinstance(end, _Resume):  # rejected whole; read on after it
                return (end.line, end.col, None)
            j, end_col = end
        elif char == '"':
            m = _STRING_REST.match(line, col + 1)
            if m is None:
                return (i, 0, self.malformed((i, col), i, "Unterminated string"))
            j, end_col = i, m.end()
        else:
            m = _SCALAR.match(line, col)
            if m is None:
                return (i, 0, self.malformed((i, col), i, f"Unexpected {char!r}"))
            j, end_col = i, m.end()
        if j > i:
            text = "\n".join([line[col:], *self.lines[i + 1 : j], self.lines[j][:end_col]])
        else:
            text = line[col:end_col]
        if char not in "{[":
            return (j, 0, self.malformed((i, col), j, "Record is not a JSON object or array"))
        if _too_large(text):
            return (j, 0, self.malformed((i, col), j, "Record is larger than 4 MB"))
        self.result.records.append(Record(self.number(j), text))
        self.consume(i, j)
        return (j, end_col, None)

    def container_end(self, i: int, col: int) -> tuple[int, int] | int | _Resume | None:
        """Where the object or array opened at (i, col) closes.

        Returns ``(line, column after it)``; a line number to resume at when the record is
        malformed (already rejected); a `_Resume` when it was rejected whole for its size;
        ``None`` when it runs past the chunk (carried).
        """
        depth = 0
        j, pos = i, col
        size = 0
        while True:
            line = self.lines[j]
            while (m := _STRUCTURE.search(line, pos)) is not None:
                char = m.group()
                if char == '"':
                    rest = _STRING_REST.match(line, m.end())
                    if rest is None:
                        return self.malformed((i, col), j, "String broken by a line end")
                    pos = rest.end()
                    continue
                pos = m.end()
                depth += 1 if char in "{[" else -1
                if depth == 0:
                    return (j, pos)
            size += len(line) + 1 - (col if j == i else 0)  # from where the record starts
            if size > MAX_RECORD_BYTES:
                text = "\n".join([self.lines[i][col:], *self.lines[i + 1 : j + 1]])
                if _too_large(text):
                    return self.skip_oversized(self.number(i), text[:1024], depth, j + 1, i)
            if j + 1 >= len(self.lines):
                if self.last:
                    return self.malformed((i, col), j, "Unexpected end of data in a record")
                self.result.carry = Carry(
                    self.number(i), (self.lines[i][col:], *self.lines[i + 1 :])
                )
                self.consume(i, j)
                return None
            if _is_standalone_object(self.lines[j + 1]):
                self.malformed((i, col), j, "Record is not complete (truncated?)")
                return j + 1
            j, pos = j + 1, 0

    def skip_oversized(
        self, start: int, value: str, depth: int, j: int, first: int
    ) -> _Resume | int | None:
        """Read on to the end of a record already over 4 MB and reject it once, on the line
        it ends on (REDSHIFT_COPY.md), without keeping its text.

        ``start`` is the record's first line number, ``value`` the start of its text,
        ``depth`` the nesting at the start of line ``j``, and ``first`` the index of its
        first line here (for the lines taken over from the fast path). Returns where reading
        goes on, a line to resume at, or ``None`` when the record runs past the chunk.
        """

        def reject(end: int, resume: int, how: str = "") -> int:
            # the reason gives where it starts: the reject may stand for many lines
            reason = f"Record is larger than 4 MB{how}, from line {start}"
            self.result.malformed.append(Malformed(self.number(end), value, reason))
            self.consume(first, end)
            return resume

        while j < len(self.lines):
            line = self.lines[j]
            if _is_standalone_object(line):  # it was cut short before this line
                return reject(j - 1, j, " and not complete (truncated?)")
            pos = 0
            while (m := _STRUCTURE.search(line, pos)) is not None:
                if m.group() == '"':
                    rest = _STRING_REST.match(line, m.end())
                    if rest is None:
                        return reject(j, j + 1, " and has a string broken by a line end")
                    pos = rest.end()
                    continue
                pos = m.end()
                depth += 1 if m.group() in "{[" else -1
                if depth == 0:
                    reject(j, j + 1)
                    return _Resume(j, pos)
            j += 1
        if self.last:
            return reject(j - 1, j, " and still open at the end of the object")
        self.result.carry = Carry(start, (value,), skip_depth=depth)
        self.consume(first, len(self.lines) - 1)
        return None


def _too_large(text: str) -> bool:
    """Whether a record's text is over the 4 MB limit, in bytes of UTF-8."""
    return len(text) > MAX_RECORD_BYTES // 4 and len(text.encode()) > MAX_RECORD_BYTES


def scan(
    lines: Sequence[str],
    first_line: int,
    starts: Sequence[int],
    *,
    carry: Carry | None = None,
    last: bool = True,
) -> ScanResult:
    """Read the records that start on ``starts`` (line numbers) and continue a carry.

    Args:
        lines: The chunk's lines, without line ends.
        first_line: The line number of ``lines[0]``.
        starts: Line numbers the fast path could not take, in order.
        carry: A record left open at the end of the previous chunk of the same object.
        last: Whether this is the object's last chunk (an open record then is malformed).
    """
    done = 0  # lines before this index are handled
    if carry is not None and carry.skip_depth is not None:
        # a record over 4 MB continues here: skip to its end
        scanner = _Scanner(lines, first_line, None, last)
        outcome = scanner.skip_oversized(carry.start_line, carry.lines[0], carry.skip_depth, 0, 0)
        if isinstance(outcome, _Resume):
            done = scanner.run_from_column(outcome.line, outcome.col)
        elif outcome is None:
            done = len(lines)
        else:
            done = outcome
    else:
        scanner = _Scanner(lines, first_line, carry, last)
        if carry is not None:
            done = scanner.run_from(0)
    for number in starts:
        index = number - scanner.first
        if index < done or number in scanner.result.consumed:
            continue
        done = scanner.run_from(index)
    return scanner.result
