"""Finding JSON records in lines that are not one record each.

The fast path takes every line that is one JSON object (or array) by itself, which is all of
newline-delimited JSON. This module handles the rest, exactly and in Python: records that
span lines (pretty-printed), several records on one line, and malformed stretches.

The rules (docs/loading.md, "Objects and records"):

* An object holds JSON values one after another, separated by whitespace. Each top-level
  object or array is one record; its line is the line it ends on.
* A line may be a record by itself (the fast path's rule) only when no record is open
  before it: an open record goes on through any line, so a nested object alone on a line
  of a pretty-printed record stays part of it.
* A record that spans lines and turns out not to be valid JSON (found bad as it is read,
  when it closes, or when the object ends with it still open) is rejected from where it
  starts to the end of the line before the first line after its start that could start a
  record (one beginning with ``{`` or ``[``), and reading resumes at that line; with no
  such line, to where it was found bad. So one truncated line of newline-delimited JSON
  does not swallow the records after it, and valid JSON is never cut.
* A malformed stretch (a top-level value that is not an object or array, stray text, a
  string broken by a line end) is one rejected record, from where it starts to the end of
  the line where it is found bad; reading resumes on the next line.
* A record over 4 MB is read on to its end without being kept and rejected once, on the
  line it ends on (unless it was already not valid JSON: then as above).

This module finds where records start and end; whether a record's text is valid JSON is
decided by the same JSON reader as on the fast path (DuckDB's), so that both paths accept
exactly the same records. To find where a record spanning lines goes wrong, Python's JSON
reader is used, made at least as lenient as DuckDB's (``_json_error``), so that it never
calls bad what DuckDB reads.
"""

from __future__ import annotations

import itertools
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
    of its text (the reject's value), ``skip_open`` the brackets open where the next chunk
    begins, and ``skip_last`` the last character before it that is not whitespace.
    """

    start_line: int
    lines: tuple[str, ...]
    skip_open: str | None = None
    skip_last: str = ""

    @property
    def skip_depth(self) -> int | None:
        """How deeply nested the next chunk begins inside a record over 4 MB."""
        return None if self.skip_open is None else len(self.skip_open)


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


_DECODER: Final = json.JSONDecoder(strict=False)
#: What DuckDB's JSON reader accepts beyond standard JSON, outside strings: a trailing
#: comma, and NaN and infinities in any case, with a sign.
_EXTENSIONS: Final = re.compile(
    r'"(?:[^"\\]|\\.)*"|,(?=[ \t\r\n]*[}\]])|-?(?i:nan|infinity|inf)(?![A-Za-z0-9_])'
)


def _standard(match: re.Match[str]) -> str:
    """A DuckDB extension replaced by standard JSON of the same length (strings kept)."""
    text = match.group()
    if text[0] == '"':
        return text
    return " " if text == "," else "0".ljust(len(text))


def _json_error(text: str) -> json.JSONDecodeError | None:
    """Where ``text`` stops being valid JSON or the start of valid JSON; ``None`` when it is
    either, or starts with a whole JSON value (what follows it is not judged here). Never an
    error where DuckDB's reader reads on (its extensions are taken as standard JSON first);
    too deep to say is taken as valid."""
    try:
        _DECODER.raw_decode(text)
        return None
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip(" \t\r\n")):  # it only ends too soon
            return None
    except RecursionError:
        return None
    standard = _EXTENSIONS.sub(_standard, text)  # positions stay where they were
    try:
        _DECODER.raw_decode(standard)
        return None
    except json.JSONDecodeError as exc:
        return None if exc.pos >= len(standard.rstrip(" \t\r\n")) else exc
    except RecursionError:
        return None


def _could_start_a_record(line: str) -> bool:
    """Whether a line could start a record (the fast path's test of a line's start)."""
    return line[:1] in ("{", "[")


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

        While it spans lines, it is checked for being valid JSON (or the start of it) at
        lines that could start a record, as its size doubles (so the checks cost about two
        reads of it), and once more when it closes; at none of these when no line after its
        start could start a record, as in pretty-printed JSON with nested values indented.
        """
        opened: list[str] = []  # brackets counted, not matched: validity is decided later
        j, pos = i, col
        size = 0
        candidate: int | None = None  # the first line after its start that could start one
        checked = 0  # its size when last checked
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
                if char in "{[":
                    opened.append(char)
                else:
                    opened.pop()
                if not opened:
                    if candidate is not None:
                        error = _json_error(self.text((i, col), (j, pos)))
                        if error is not None:
                            return self.abandon((i, col), candidate, error)
                    return (j, pos)
            size += len(line) + 1 - (col if j == i else 0)  # from where the record starts
            if size > MAX_RECORD_BYTES:
                text = self.text((i, col), (j, len(line)))
                if _too_large(text):
                    if candidate is not None and (error := _json_error(text)) is not None:
                        return self.abandon((i, col), candidate, error)
                    state = _Open("".join(opened), _last_char(text))
                    return self.skip_oversized(self.number(i), text[:1024], state, j + 1, i)
            if j + 1 >= len(self.lines):
                if not self.last:
                    self.result.carry = Carry(
                        self.number(i), (self.lines[i][col:], *self.lines[i + 1 :])
                    )
                    self.consume(i, j)
                    return None
                if candidate is not None:
                    return self.abandon((i, col), candidate, None)
                return self.malformed((i, col), j, "Unexpected end of data in a record")
            j, pos = j + 1, 0
            if _could_start_a_record(self.lines[j]):
                if candidate is None:
                    candidate = j
                if size >= 2 * checked:
                    checked = size
                    error = _json_error(self.text((i, col), (j, len(self.lines[j]))))
                    if error is not None:
                        return self.abandon((i, col), candidate, error)

    def text(self, start: tuple[int, int], end: tuple[int, int]) -> str:
        """The text from (line, column) ``start`` to ``end`` (exclusive)."""
        (i, col), (j, end_col) = start, end
        if i == j:
            return self.lines[i][col:end_col]
        return "\n".join([self.lines[i][col:], *self.lines[i + 1 : j], self.lines[j][:end_col]])

    def abandon(
        self, start: tuple[int, int], resume: int, error: json.JSONDecodeError | None
    ) -> int:
        """Reject an open record that is not valid JSON, from ``start`` to the end of the
        line before ``resume`` (the first line after its start that could start a record),
        and resume there. ``error`` says where it went wrong (``None``: it never closed)."""
        i, col = start
        reason = "Record is not complete (truncated?)"
        if error is not None and error.pos < len(self.text(start, (resume, 0))):
            # it went wrong before the line reading resumes at: say where
            line = self.number(i) + error.lineno - 1
            column = error.colno + (col if error.lineno == 1 else 0)
            reason = f"Invalid JSON: {error.msg} (line {line}, column {column})"
        return self.malformed(start, resume - 1, reason)

    def skip_oversized(
        self, start: int, value: str, state: _Open, j: int, first: int
    ) -> _Resume | int | None:
        """Read on to the end of a record already over 4 MB and reject it once, on the line
        it ends on (docs/loading.md), without keeping its text.

        ``start`` is the record's first line number, ``value`` the start of its text,
        ``state`` where it is at the start of line ``j``, and ``first`` the index of its
        first line here (for the lines taken over from the fast path). Returns where reading
        goes on, a line to resume at, or ``None`` when the record runs past the chunk.

        A line that could start a record where no value can come next (after a value, or
        where a key must) shows that the record was cut short before it: reading resumes
        there.
        """
        opened, last = list(state.brackets), state.last

        def reject(end: int, resume: int, how: str = "") -> int:
            # the reason gives where it starts: the reject may stand for many lines
            reason = f"Record is larger than 4 MB{how}, from line {start}"
            self.result.malformed.append(Malformed(self.number(end), value, reason))
            self.consume(first, end)
            return resume

        while j < len(self.lines):
            line = self.lines[j]
            if _could_start_a_record(line) and not _value_may_follow(opened, last):
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
                if m.group() in "{[":
                    opened.append(m.group())
                else:
                    opened.pop()
                if not opened:
                    reject(j, j + 1)
                    return _Resume(j, pos)
            last = _last_char(line) or last
            j += 1
        if self.last:
            return reject(j - 1, j, " and still open at the end of the object")
        self.result.carry = Carry(start, (value,), "".join(opened), last)
        self.consume(first, len(self.lines) - 1)
        return None


@dataclass(frozen=True)
class _Open:
    """Where an open record is: its open brackets, and its last character that is not
    whitespace."""

    brackets: str
    last: str


def _last_char(text: str) -> str:
    """The last character of ``text`` that is not whitespace ("" if none)."""
    return text.rstrip(" \t\r\n")[-1:]


def _value_may_follow(opened: Sequence[str], last: str) -> bool:
    """Whether a value may come next in a record with these brackets open, after ``last``
    (its last character that is not whitespace): after a colon, or at the start of an
    array or after a comma in one."""
    return last == ":" or (opened[-1:] == ["["] and last in ("[", ","))


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
    if carry is not None and carry.skip_open is not None:
        # a record over 4 MB continues here: skip to its end
        scanner = _Scanner(lines, first_line, None, last)
        state = _Open(carry.skip_open, carry.skip_last)
        outcome = scanner.skip_oversized(carry.start_line, carry.lines[0], state, 0, 0)
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
    # Lines carried from the previous chunk are read again here if the carried record turns
    # out not to be valid JSON and reading resumes inside it (its chunk took them over).
    carried = range(1, scanner.carried)
    for index in itertools.chain(carried, (number - scanner.first for number in starts)):
        if index < done or scanner.number(index) in scanner.result.consumed:
            continue
        done = scanner.run_from(index)
    return scanner.result
