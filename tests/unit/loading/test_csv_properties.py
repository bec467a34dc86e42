"""Property tests of ``CsvReader``: whatever strings Python's ``csv`` module writes (quotes,
delimiters, CR and LF, line ends inside values, non-ASCII text, empty strings, the null
string), read back in Redshift's CSV dialect they are the same values, each record at the line
it starts on, however the bytes are cut into reads.

What the dialect changes, and the test expects: an unquoted field equal to ``null_as`` is
NULL (a quoted one never is); a CR just before a line end belongs to the line end (Python
writes a lone CR unquoted when the line terminator is ``"\\n"``), so a row written as a lone
CR is an empty line, which is skipped; a byte-order mark at the start of the object is not
data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal
from unittest import mock

from hypothesis import example, given
from hypothesis import strategies as st

from arbalest.loading import csv_reader
from arbalest.loading.csv_reader import Block, CsvReader, Lines
from arbalest.loading.formats import CsvOptions
from tests.fixtures import budgets

#: Strings that mean something to a CSV reader or writer.
SPECIAL: Final = (
    "",
    " ",
    "\t",
    "  x  ",
    "\\N",
    "NULL",
    "\\",
    '"',
    '""',
    '"a"',
    ' "a" ',
    ",",
    "|",
    "a,b",
    "\r",
    "\n",
    "\r\n",
    "\n\r",
    "a\rb",
    "a\r",
    "\ufeff",
    "\u2028",
    "\u0085",
    "naïve",
    "東京",
    "\U0001f680",
)

# no lone surrogates: they are not text, and cannot be written as UTF-8
characters: Final = st.characters(exclude_categories=["Cs"])
_pieces = st.one_of(st.sampled_from(SPECIAL), st.text(characters, max_size=3))
strings: Final = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(characters, max_size=20),
    st.lists(_pieces, max_size=6).map("".join),
)


@dataclass(frozen=True)
class Dialect:
    """How Python's ``csv`` module writes the object, and Arbalest's options to read it."""

    quoting: Literal[0, 1, 2, 3]  # csv.QUOTE_*
    lineterminator: str
    delimiter: str
    null_as: str

    @property
    def options(self) -> CsvOptions:
        return CsvOptions(header=False, delimiter=self.delimiter, null_as=self.null_as)


dialects: Final = st.builds(
    Dialect,
    quoting=st.sampled_from([csv.QUOTE_ALL, csv.QUOTE_MINIMAL]),
    lineterminator=st.sampled_from(["\r\n", "\n"]),
    delimiter=st.sampled_from([",", "|", "\t"]),
    null_as=st.sampled_from(["\\N", "NULL", ""]),
)


def written(dialect: Dialect, rows: Sequence[Sequence[str]]) -> tuple[str, list[int]]:
    """The CSV text of ``rows`` and the line each row starts on (from 1)."""
    out = io.StringIO()
    writer = csv.writer(
        out,
        quoting=dialect.quoting,
        lineterminator=dialect.lineterminator,
        delimiter=dialect.delimiter,
    )
    starts = []
    for row in rows:
        starts.append(out.getvalue().count("\n") + 1)
        writer.writerow(row)
    return out.getvalue(), starts


def expected(dialect: Dialect, row: Sequence[str], *, first: bool) -> list[str | None] | None:
    """The values Redshift's dialect reads from a row Python wrote (``first``: the object's
    first), or None for a row read as an empty line."""
    values: list[str | None] = []
    for place, value in enumerate(row):
        quoted = dialect.quoting == csv.QUOTE_ALL or _quoted_by_python(dialect, value, row)
        if quoted:
            values.append(value)
            continue
        if first and place == 0:
            value = value.removeprefix("\ufeff")  # a byte-order mark
        if place == len(row) - 1 and value.endswith("\r") and dialect.lineterminator == "\n":
            value = value[:-1]  # "...\r\n": the CR belongs to the line end
        if len(row) == 1 and value == "":
            return None
        values.append(None if value == dialect.null_as else value)
    return values


def _quoted_by_python(dialect: Dialect, value: str, row: Sequence[str]) -> bool:
    """Whether ``csv.QUOTE_MINIMAL`` quotes ``value`` (a lone empty field is written ``""``,
    so that the row is not an empty line)."""
    if value == "" and len(row) == 1:
        return True
    specials = {dialect.delimiter, '"', *dialect.lineterminator}
    return any(c in specials for c in value)


def read(dialect: Dialect, text: str, block: int) -> list[tuple[int, list[str | None]]]:
    reader = CsvReader(dialect.options, dialect.delimiter)
    # read ``block`` bytes at a time: records and characters cut across reads
    with mock.patch.object(csv_reader, "READ_BYTES", block):
        records = list(reader.records(io.BytesIO(text.encode())))
    assert [r.error for r in records] == [None] * len(records), records
    return [(r.line, r.values) for r in records]


budget = budgets.budget(300)


@budget
@given(
    dialect=dialects,
    rows=st.lists(st.lists(strings, min_size=1, max_size=4), min_size=1, max_size=8),
    block=st.sampled_from([1, 2, 3, 7, 64, 1 << 20]),
)
@example(
    dialect=Dialect(csv.QUOTE_MINIMAL, "\n", ",", "\\N"),
    rows=[["a\r", "\\N"], ["\\N", "a\r"], ["", "x\ny"]],
    block=1,
)
# a CR ending a read just after a closing quote: the LF that makes it a line end comes next
@example(dialect=Dialect(csv.QUOTE_ALL, "\r\n", ",", ""), rows=[[""], ["", "\r\n"]], block=3)
@example(
    dialect=Dialect(csv.QUOTE_MINIMAL, "\n", ",", "\\N"),
    rows=[["\ufeffa", "\ufeff"], ["\r"], ["\ufeff"]],
    block=1,
)
def test_what_python_writes_is_read_back(
    dialect: Dialect, rows: list[list[str]], block: int
) -> None:
    text, starts = written(dialect, rows)
    want = [
        (line, values)
        for number, (line, row) in enumerate(zip(starts, rows, strict=True))
        if (values := expected(dialect, row, first=number == 0)) is not None
    ]
    assert read(dialect, text, block) == want


#: Text of the characters that decide how a record is read, malformed quoting included.
_TRICKY: Final = st.text(st.sampled_from(['"', ",", "|", "\r", "\n", " ", "\t", "a", "é"]))


def _careful(reader: CsvReader) -> CsvReader:
    """``reader`` without the one-match reading of plain records: every record with a quote
    character parsed field by field."""
    reader._plain_record = reader._plain_fields = reader._plain_record_bytes = None
    return reader


@budgets.budget(500)
@given(
    text=_TRICKY,
    delimiter=st.sampled_from([",", "|"]),
    header=st.booleans(),
    block=st.sampled_from([1, 3, 1 << 20]),
)
@example(text='a,"b""c"\r\n"x\ny",\n', delimiter=",", header=True, block=1 << 20)
@example(text='a,b\n "c",d\n"e" ,f\n"g"h,i\n', delimiter=",", header=True, block=1 << 20)
def test_plain_records_read_in_one_match_as_the_careful_parse_reads_them(
    text: str, delimiter: str, header: bool, block: int
) -> None:
    """The same records, values, rejects and lines, whether records with a quote character
    are read in one match when plain or always field by field; as text and, once the
    header gives the field count, as blocks of bytes."""
    options = CsvOptions(header=header, delimiter=delimiter)

    def records(reader: CsvReader) -> list[csv_reader.CsvRecord | Lines | Block]:
        reader.blocks = 2 if header else 0  # (after the header: blocks of bytes, 2 fields)
        with mock.patch.object(csv_reader, "READ_BYTES", block):
            return list(reader.items(io.BytesIO(text.encode())))

    fast = CsvReader(options, delimiter)
    assert records(fast) == records(_careful(CsvReader(options, delimiter)))
