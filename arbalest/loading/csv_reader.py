"""Redshift's CSV dialect, record by record: ``CsvReader`` reads a byte stream into records
of text values (or rejects), with the line each record starts on; runs of lines without a
quote character are split in bulk, in Python or by Arrow's CSV reader."""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final

import pyarrow as pa
import pyarrow.csv as pa_csv

from arbalest.convert import BAD_CHARACTER, BAD_RECORD, MAX_RECORD_BYTES
from arbalest.loading.formats import CsvOptions
from arbalest.loading.reader import BOM
from arbalest.loading.rejects import clip

__all__ = ["READ_BYTES", "Block", "CsvReader", "CsvRecord", "Lines", "shown"]

READ_BYTES: Final = 1024 * 1024
#: Arrow's CSV parsing of lines ``plain`` lets it split: no quoting and no escapes (a line
#: with a quote character is read in Python), one line a record, an empty line not skipped
#: (its field count is wrong: ``split`` then gives None, as ``rows_of`` rejects it).
_PLAIN_LINES: Final[dict[str, bool]] = {
    "quote_char": False,
    "escape_char": False,
    "newlines_in_values": False,
    "ignore_empty_lines": False,
}
_SURROGATES: Final = re.compile("[\ud800-\udfff]")
# (a regular expression finds a blank line in bytes faster than ``in``: 55 against 148 ms of
# CPU over the benchmark's 1M CSV rows, measured)
_BLANK_LINE: Final = re.compile(b"\n\n")


# -- records ------------------------------------------------------------------------------


@dataclass
class CsvRecord:
    line: int  # the line it starts on
    values: list[str | None]
    error: tuple[int, str] | None = None  # (code, reason) of a record that cannot be read
    text: str = ""  # the record as written, for a reject


@dataclass
class Block:
    """Complete lines as bytes (``data``) that Arrow's CSV reader may split (``split``) as
    ``rows_of`` would (no empty line, no CR but in CRLF; UTF-8, which Arrow's reader checks):
    ``plain``, the lines less each record that holds a quote character, read in Python
    (``values``); ``places`` says how many of plain's lines come before each, ``spans`` how
    many lines each spans; ``lines`` the lines of ``data`` (a last one without a line end
    counted)."""

    first: int  # the first line's number
    data: bytes
    plain: bytes
    places: list[int]
    values: list[list[str | None]]
    spans: list[int]
    lines: int = 0


@dataclass
class Lines:
    """Complete lines without a quote character: records one a line, read in bulk."""

    first: int  # the first line's number
    text: str  # the lines, each ended by a line end (the last one maybe not)


class CsvReader:
    """Reads CSV records from a byte stream, in Redshift's CSV dialect.

    Lines end with LF (a CR before it belongs to the line end); a lone CR is data. A field
    that starts with the quote character, after blanks, runs to the closing quote; a quote
    inside it is written twice, and line ends inside it are part of the value. Blanks between
    a closing quote and the delimiter are ignored; anything else there rejects the record.
    A quote inside an unquoted field is an ordinary character. Empty lines are skipped.
    An unquoted field equal to ``null_as`` is NULL, and so (with ``empty_as_null`` or
    ``blanks_as_null``) is one that is empty or blank; a quoted field is never NULL.

    Args:
        options: The CSV options.
        delimiter: The object's delimiter.
    """

    def __init__(self, options: CsvOptions, delimiter: str) -> None:
        self.options = options
        self.delimiter = delimiter
        self.quote = options.quote
        self._blanks = " \t".replace(delimiter, "")
        self._field_end = re.compile("[" + re.escape(delimiter) + "\n]")
        self._undecodable = False  # some bytes so far were not text in the encoding
        #: The fields per record once runs of lines may come as ``Block``s of bytes (the
        #: reader of the items sets it once it has the header, if any), else 0.
        self.blocks = 0
        self._bytes_plain = (
            codecs.lookup(options.codec).name == "utf-8"
            and not options.blanks_as_null
            and len(delimiter) == 1
            and delimiter.isascii()
            and delimiter not in "\r\n"
        )
        self._quote_byte = self.quote.encode("ascii")
        #: A record with a quote character whose fields are all plain, up to its line end,
        #: as text and as bytes (``_simple_record``), and each field of one that matched.
        self._plain_record: re.Pattern[str] | None = None
        self._plain_record_bytes: re.Pattern[bytes] | None = None
        self._plain_fields: re.Pattern[str] | None = None
        q, d = self.quote, delimiter
        if len(q) == len(d) == 1 and q != d and q not in "\r\n" and d not in "\r\n":
            # Plain: quoted from the field's first character to a quote right before the
            # delimiter or the line end (a quote inside written twice), or unquoted with no
            # quote, CR or LF. The careful parse reads such a record as one match does.
            # (Possessive: a field matches one way only, in linear time. The fields' pattern
            # has groups, which Python 3.11's re refuses inside a possessive repeat; it
            # only reads records the first matched, so it never backtracks either.)
            q, d = re.escape(q), re.escape(d)
            field = f"(?:{q}(?:[^{q}]|{q}{q})*+{q}|[^{q}{d}\r\n]*+)"
            record = f"(?:{field}{d})*+{field}\r?\n"
            # (each field: the opening quote or nothing, the quoted text, the unquoted text)
            self._plain_fields = re.compile(
                f"(?:({q})((?:[^{q}]|{q}{q})*){q}|([^{q}{d}\r\n]*))(?:{d}|\r?\n)"
            )
            self._plain_record = re.compile(record)
            self._plain_record_bytes = re.compile(record.encode("ascii"))

    def records(self, stream: IO[bytes]) -> Iterator[CsvRecord]:
        """The records of the object, header included (after ``ignore_header`` lines)."""
        for item in self.items(stream):
            if isinstance(item, CsvRecord):
                yield item
                continue
            assert isinstance(item, Lines)  # (never a Block: ``blocks`` is 0)
            numbers, rows, errors, texts = self.rows_of(item)
            records = [
                CsvRecord(n, r, None, t) for n, r, t in zip(numbers, rows, texts, strict=True)
            ]
            yield from sorted([*records, *errors], key=lambda r: r.line)

    def items(self, stream: IO[bytes]) -> Iterator[CsvRecord | Lines | Block]:
        """The records of the object, and runs of lines without a quote character (each a
        record, split by ``rows_of``, or as bytes: ``Block``, once ``blocks`` is set), in
        order."""
        decoder = codecs.getincrementaldecoder(self.options.codec)(errors="surrogateescape")
        buffer = ""
        at = 0  # where the next record starts in the buffer
        line = 1
        skip = self.options.ignore_header
        first = True
        final = False  # the stream is read to its end
        decoded = False  # and every byte of it decoded
        carry = b""  # bytes read but not decoded: the start of a line
        header = self.options.header  # the header line is still to come
        while not (decoded and at >= len(buffer)):
            if not decoded:
                read = b"" if final else stream.read(READ_BYTES)
                final = final or not read
                block, carry = carry + read, b""
                # (nothing pending: no text in the buffer, no bytes in the decoder)
                pending = at < len(buffer) or decoder.getstate()[0]
                # (and the object's first bytes tell whether it starts with a byte-order mark)
                early = first and len(block) < len(BOM) and not final
                if self._bytes_plain and not pending and not skip and not early:
                    if first and block:
                        block = block.removeprefix(BOM)
                        first = False
                    cut = len(block) if final else block.rfind(b"\n") + 1
                    head = block[:cut]
                    if head and header:  # the header, on its own, as text
                        header = False
                        end = head.find(b"\n") + 1
                        if (
                            end > 1
                            and self._quote_byte not in head[:end]
                            and self._plain_bytes(head[:end])
                        ):
                            yield Lines(line, self._decode(head[:end]))
                            line += 1
                            head = head[end:]
                    taken = self._block(line, head) if head and self.blocks else None
                    if taken is not None:
                        yield taken
                        data = taken.data  # (maybe cut before a record that goes on)
                        line += taken.lines
                        carry, head = head[len(data) :], b""
                    if not head and cut:  # taken, but the rest: kept for the next read
                        carry += block[cut:]
                        decoded = final and not carry
                        continue
                    block = head + block[cut:]  # (no line end yet: read as text)
                text = decoder.decode(block, final=final)
                decoded = final
                if first and text:
                    text = text.removeprefix("\ufeff")  # a byte-order mark is not data
                    first = False
                if not self._undecodable and _SURROGATES.search(text):
                    self._undecodable = True
                buffer = buffer[at:] + text
                at = 0
            while skip and at < len(buffer):
                end = buffer.find("\n", at)
                if end < 0 and not decoded:
                    break
                at = len(buffer) if end < 0 else end + 1
                line += 1
                skip -= 1
            if skip and not decoded:
                continue
            while at < len(buffer):
                run = self._run(buffer, at, decoded)
                if run > at:  # lines without a quote: split in bulk
                    text = buffer[at:run]
                    yield Lines(line, text)
                    line += text.count("\n") + (0 if text.endswith("\n") else 1)
                    at = run
                    continue
                parsed = self._record(buffer, at, line, decoded)
                if parsed is None:  # it goes on past the buffer: read more
                    if len(buffer) - at > 2 * MAX_RECORD_BYTES:
                        end = buffer.find("\n", at)
                        end = len(buffer) if end < 0 else end
                        reason = "Record is larger than 4 MB"
                        yield CsvRecord(line, [], (BAD_RECORD, reason), buffer[at:end])
                        line += 1
                        at = end + 1
                        continue
                    break
                record, at, line = parsed
                if record is not None:
                    yield record

    def _plain_bytes(self, data: bytes) -> bool:
        """Whether lines of bytes are split by Arrow's reader as ``rows_of`` splits them
        (``plain``), but for UTF-8, which Arrow's reader checks."""
        return not (
            data.startswith((b"\n", b"\r\n", BOM))  # (Arrow's reader drops a BOM)
            or _BLANK_LINE.search(data) is not None
            or (b"\r" in data and (data.count(b"\r") != data.count(b"\r\n") or b"\n\r\n" in data))
        )

    def _block(self, first: int, data: bytes) -> Block | None:
        """Whole lines of bytes as a ``Block``, each record with a quote character read in
        Python; ``None`` when they need reading as text (``_plain_bytes`` fails, a record is
        a reject or not UTF-8)."""
        if not self._plain_bytes(data):
            return None
        quote, expected = self._quote_byte, self.blocks
        at = data.find(quote)
        if at < 0:
            return Block(first, data, data, [], [], [], _lines(data, 0, 0))
        parts: list[bytes] = []
        block = Block(first, data, b"", [], [], [])
        plain = self._plain_record_bytes
        done = 0  # the bytes before this are in parts
        row = line = 0  # the line of plain and of data (from 0) at ``done``
        counted = 0  # (and ``line`` counts the line ends before this)
        while at >= 0:
            start = data.rfind(b"\n", done, at) + 1 or done
            skipped = data.count(b"\n", done, start)
            row, line, counted = row + skipped, line + skipped, start
            parsed = None
            found = None if plain is None else plain.match(data, start)
            if found is not None and found.end() - start <= MAX_RECORD_BYTES:
                # its fields all plain: the record's end found in one match
                end = found.end()
                with contextlib.suppress(UnicodeDecodeError):  # (else line by line)
                    text = data[start:end].decode("utf-8")
                    parsed = self._record(text, 0, first + line, False)
            end = start if parsed is None else end
            while parsed is None:  # a line more, until the record ends (a quoted field may go on)
                if end - start > MAX_RECORD_BYTES:
                    return None
                if end >= len(data):  # it goes on past these lines: the block ends before it
                    if not start:
                        return None
                    data = data[:start]
                    at = -1
                    break
                end = data.find(b"\n", end) + 1 or len(data)
                try:
                    text = data[start:end].decode("utf-8")
                except UnicodeDecodeError:
                    continue  # (maybe cut inside a character: else an error at the end)
                parsed = self._record(text, 0, first + line, not text.endswith("\n"))
            if at < 0:
                break
            assert parsed is not None
            record, after, next_line = parsed
            if record is None or record.error is not None or after < len(text):
                return None
            if len(record.values) != expected:
                return None
            parts.append(data[done:start])
            block.places.append(row)
            block.values.append(record.values)
            block.spans.append(next_line - first - line)
            done, line = end, next_line - first
            counted = done
            at = data.find(quote, done)
        parts.append(data[done:])
        block.data = data
        block.plain = b"".join(parts)
        block.lines = _lines(data, counted, line)
        return block

    def _decode(self, data: bytes) -> str:
        """Whole lines of UTF-8 as text, bytes that are not UTF-8 kept as surrogates."""
        text = data.decode("utf-8", errors="surrogateescape")
        if not self._undecodable and _SURROGATES.search(text):
            self._undecodable = True
        return text

    def lines_of(self, first: int, data: bytes) -> Lines:
        """Lines of a block without a quote character as text, for ``rows_of`` (when Arrow's
        reader cannot split them)."""
        return Lines(first, self._decode(data))

    def _run(self, buffer: str, at: int, final: bool) -> int:
        """Where the complete lines from ``at`` that hold no quote character end."""
        last = buffer.rfind("\n", at)
        end = len(buffer) if final else last + 1
        if end <= at:
            return at
        quote = buffer.find(self.quote, at, end)
        if quote < 0:
            return end
        return buffer.rfind("\n", at, quote) + 1 or at

    def rows_of(
        self, item: Lines
    ) -> tuple[list[int], list[list[str | None]], list[CsvRecord], list[str]]:
        """The records of a run of lines: their line numbers, their values, the lines that
        are not text in the encoding (rejects), and the records' texts."""
        text = item.text
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        if "\r" in text:
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        first = item.first
        if all(lines):
            numbers = list(range(first, first + len(lines)))
        else:  # empty lines are skipped, and counted
            kept = [i for i, line in enumerate(lines) if line]
            numbers = [first + i for i in kept]
            lines = [lines[i] for i in kept]
        errors: list[CsvRecord] = []
        if self._undecodable and _SURROGATES.search(text):
            bad = [i for i, line in enumerate(lines) if _SURROGATES.search(line)]
            errors = [
                CsvRecord(numbers[i], [], self._encoding_error(lines[i]), lines[i]) for i in bad
            ]
            good = sorted(set(range(len(lines))) - set(bad))
            numbers = [numbers[i] for i in good]
            lines = [lines[i] for i in good]
        rows: list[list[str | None]] = [line.split(self.delimiter) for line in lines]  # type: ignore[misc]
        options = self.options
        if options.empty_as_null or options.blanks_as_null:
            rows = [[self._unquoted(v) for v in row] for row in rows]  # type: ignore[arg-type]
        elif options.null_as in text:
            null = options.null_as
            rows = [
                [None if v == null else v for v in row] if null in line else row
                for row, line in zip(rows, lines, strict=True)
            ]
        return numbers, rows, errors, lines

    def table_of(self, item: Lines, expected: int) -> pa.Table | None:
        """The records of a run of lines as a table of ``expected`` text columns, split by
        Arrow's CSV reader, or ``None`` when the run needs ``rows_of`` (``plain``, ``split``).
        The records' line numbers are the run's first line plus their row numbers."""
        return self.split(item.text, expected) if self.plain(item, expected) else None

    def plain(self, item: Lines, expected: int) -> bool:
        """Whether Arrow's CSV reader (in C++, with quoting off: the run holds no quote
        character) splits the run as ``rows_of`` does, one record a line: not when the run
        has an empty line (skipped, and counted), a lone CR, or bytes that are not text, or
        the options ask what Arrow's reader cannot do (blanks as NULL, a delimiter that is
        not one ASCII character)."""
        text = item.text
        return not (
            expected < 1
            or not text
            or self.options.blanks_as_null
            or self._undecodable
            or not (len(self.delimiter) == 1 and self.delimiter.isascii())
            or self.delimiter in "\r\n"
            or text.startswith(("\n", "\r\n"))
            or "\n\n" in text
            or ("\r" in text and (text.count("\r") != text.count("\r\n") or "\n\r\n" in text))
        )

    def split(self, text: str | bytes, expected: int) -> pa.Table | None:
        """Lines ``plain`` says Arrow's reader splits as ``rows_of`` does, as a table of
        ``expected`` text columns (``f0``, ...), a row a line; ``None`` when a line has
        another field count (``rows_of`` rejects it) or bytes that are not UTF-8."""
        options = self.options
        data = text.encode("utf-8") if isinstance(text, str) else text
        names = [f"f{i}" for i in range(expected)]
        invalid: list[object] = []

        def wrong_count(row: object) -> str:
            invalid.append(row)
            return "skip"

        nulls = [options.null_as, ""] if options.empty_as_null else [options.null_as]
        try:
            table = pa_csv.read_csv(
                pa.py_buffer(data),
                read_options=pa_csv.ReadOptions(
                    column_names=names, use_threads=False, block_size=len(data) + 1
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=self.delimiter, invalid_row_handler=wrong_count, **_PLAIN_LINES
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    null_values=nulls,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                    check_utf8=not data.isascii(),  # (ASCII is UTF-8)
                ),
            )
        except pa.ArrowInvalid:
            return None
        if invalid:
            return None
        return table

    def _record(
        self, buffer: str, at: int, line: int, final: bool
    ) -> tuple[CsvRecord | None, int, int] | None:
        """Parse the record at ``at``: (the record, or None for a blank line; where the next
        starts; its line), or None when the buffer ends before the record does."""
        end = buffer.find("\n", at)
        if end < 0 and not final:
            return None
        stop = len(buffer) if end < 0 else end
        raw = buffer[at:stop]
        if raw.endswith("\r"):
            raw = raw[:-1]
        if self.quote not in raw:  # the common case: a line of unquoted fields
            if not raw:
                return None, stop + 1, line + 1
            values = [self._unquoted(v) for v in raw.split(self.delimiter)]
            return CsvRecord(line, values, self._encoding_error(raw), raw), stop + 1, line + 1
        return self._quoted_record(buffer, at, line, final)

    def _unquoted(self, value: str) -> str | None:
        options = self.options
        if value == options.null_as:
            return None
        if options.empty_as_null and value == "":
            return None
        if options.blanks_as_null and value.strip(" \t") == "":
            return None
        return value

    def _encoding_error(self, text: str) -> tuple[int, str] | None:
        if not self._undecodable or _SURROGATES.search(text) is None:
            return None
        return BAD_CHARACTER, f"Invalid {self.options.encoding.upper()} byte sequence"

    def _quoted_record(
        self, buffer: str, at: int, line: int, final: bool
    ) -> tuple[CsvRecord | None, int, int] | None:
        """The careful parse, field by field, of a record that holds a quote character; in
        one match when all its fields are plain (``_simple_record``)."""
        simple = self._simple_record(buffer, at, line)
        if simple is not None:
            return simple
        q, d = self.quote, self.delimiter
        values: list[str | None] = []
        pos = at
        breaks = 0  # line ends inside quoted fields
        size = len(buffer)
        while True:
            start = pos
            while pos < size and buffer[pos] in self._blanks:
                pos += 1
            if pos < size and buffer[pos] == q:
                parts = []
                scan = pos + 1
                while True:  # to the closing quote; a doubled quote is one quote
                    close = buffer.find(q, scan)
                    if close < 0 or (close + 1 >= size and not final):
                        if not final:
                            return None
                        text = buffer[at:]
                        reason = "Quoted field not closed before the end of the object"
                        record = CsvRecord(line, [], (BAD_RECORD, reason), text)
                        return record, size, line + text.count("\n") + 1
                    parts.append(buffer[scan:close])
                    if close + 1 < size and buffer[close + 1] == q:
                        parts.append(q)
                        scan = close + 2
                        continue
                    pos = close + 1
                    break
                value = "".join(parts)
                breaks += value.count("\n")
                while pos < size and buffer[pos] in self._blanks:
                    pos += 1
                if pos >= size and not final:
                    return None
                if pos + 1 == size and buffer[pos] == "\r" and not final:
                    return None  # a CR that the next read may show is a line end's
                if buffer.startswith("\r\n", pos):
                    pos += 1
                if pos < size and buffer[pos] not in (d, "\n"):
                    end = buffer.find("\n", pos)
                    end = size if end < 0 else end
                    text = buffer[at:end].removesuffix("\r")
                    reason = f"Unexpected {buffer[pos]!r} after a closing quote"
                    record = CsvRecord(line, [], (BAD_RECORD, reason), text)
                    return record, end + 1, line + breaks + 1
                values.append(value)
            else:  # unquoted: to the delimiter or the line end
                found = self._field_end.search(buffer, pos)
                if found is None and not final:
                    return None
                stop = size if found is None else found.start()
                raw = buffer[start:stop]
                if stop < size and buffer[stop] == "\n":
                    raw = raw.removesuffix("\r")
                values.append(self._unquoted(raw))
                pos = stop
            if pos >= size or buffer[pos] == "\n":
                text = buffer[at:pos].removesuffix("\r")
                record = CsvRecord(line, values, self._encoding_error(text), text)
                return record, pos + 1, line + breaks + 1
            pos += 1  # past the delimiter

    def _simple_record(self, buffer: str, at: int, line: int) -> tuple[CsvRecord, int, int] | None:
        """The record at ``at``, as the careful parse reads it, when its fields are all plain
        and its line end is in the buffer (``_plain_record``), in one match; else ``None``.
        (The careful parse took 35 µs a record: 0.35 of the 2.0 CPU seconds reading the
        benchmark's 1M CSV rows took, for its 1% of records with a quoted field; measured.)"""
        pattern, fields = self._plain_record, self._plain_fields
        if pattern is None or fields is None:
            return None
        found = pattern.match(buffer, at)
        if found is None:
            return None
        end = found.end()  # (after the line end)
        q = self.quote
        values = [
            value.replace(q + q, q) if opened else self._unquoted(raw)
            for opened, value, raw in fields.findall(buffer, at, end)
        ]
        text = buffer[at : end - 1].removesuffix("\r")
        record = CsvRecord(line, values, self._encoding_error(text), text)
        return record, end, line + 1 + text.count("\n")  # (and the line ends inside values)


def _lines(data: bytes, done: int, lines: int) -> int:
    """The lines of ``data``, ``lines`` of them before ``done`` (a line start)."""
    rest = data.count(b"\n", done)
    return lines + rest + (0 if done == len(data) or data.endswith(b"\n") else 1)


def shown(text: str) -> str:
    """A record's text as a reject's value: bytes that were not text shown as U+FFFD."""
    return clip(_SURROGATES.sub("\ufffd", text))
