"""Runs of CSV lines without a quote character are split by Arrow's CSV reader
(``CsvReader.table_of``) when it reads them exactly as ``rows_of`` does, and else left to
``rows_of``: differential property tests of the two, on the run and on whole objects read into
chunk files (values, line numbers, rejects).
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from arbalest import Integer, String
from arbalest.loading import csv_feed, csv_reader
from arbalest.loading.csv_reader import CsvReader, Lines
from arbalest.loading.formats import CsvOptions
from tests.fixtures import budgets
from tests.fixtures.feeds import object_chunks
from tests.fixtures.schemas import fresh_base

budget = budgets.budget(300, [HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

#: Field values without a quote character: the null strings, blanks, CRs, non-ASCII text.
_values = st.sampled_from(["", " ", "  x ", "\\N", "NULL", "a", "naïve", "東京", "1.5", "a\rb"])


@st.composite
def runs(draw: st.DrawFn) -> tuple[str, str, int]:
    """A run of lines without a quote (some with another field count, some empty, some
    ending in CRLF or a lone CR), its delimiter and the field count expected."""
    delimiter = draw(st.sampled_from([",", "|", "\t"]))
    expected = draw(st.integers(1, 4))
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        count = draw(st.sampled_from([expected] * 6 + [expected - 1, expected + 1, 0]))
        fields = draw(st.lists(_values, min_size=count, max_size=count))
        end = draw(st.sampled_from(["\n"] * 5 + ["\r\n", "\r"]))
        lines.append(delimiter.join(fields) + end)
    text = "".join(lines)
    if draw(st.booleans()):
        text = text.removesuffix("\n")  # the object's last line needs no line end
    return text, delimiter, expected


options_ = st.builds(
    CsvOptions,
    header=st.just(False),
    null_as=st.sampled_from(["\\N", "NULL", ""]),
    empty_as_null=st.booleans(),
    blanks_as_null=st.booleans(),
)


@budget
@given(run=runs(), options=options_, first=st.integers(1, 1000))
def test_arrow_splits_a_run_as_rows_of_does(
    run: tuple[str, str, int], options: CsvOptions, first: int
) -> None:
    text, delimiter, expected = run
    reader = CsvReader(options, delimiter)
    item = Lines(first, text)
    numbers, rows, errors, _ = reader.rows_of(item)
    table = reader.table_of(item, expected)
    count = text.count("\n") + (0 if text.endswith("\n") else 1)
    exact = (
        not errors
        and numbers == list(range(first, first + count))
        and all(len(row) == expected for row in rows)
    )
    if table is None:  # only when rows_of sees what Arrow's reader cannot do
        lone_cr = text.replace("\r\n", "").count("\r") > 0
        assert not exact or lone_cr or options.blanks_as_null
        return
    assert exact, (numbers, rows)
    got = [list(row.values()) for row in table.to_pylist()]
    assert got == rows


def test_a_plain_run_is_split_by_arrow() -> None:
    reader = CsvReader(CsvOptions(header=False, empty_as_null=True), ",")
    table = reader.table_of(Lines(5, "a,\\N\r\n,x\nnaïve,東京"), 2)
    assert table is not None
    assert [list(r.values()) for r in table.to_pylist()] == [
        ["a", None],
        [None, "x"],
        ["naïve", "東京"],
    ]


@pytest.mark.parametrize(
    "text",
    ["a,b\n\nc,d\n", "\na,b\n", "a,b\r\nc\rd,e\n", "a,b\nc\n", "a,b\nc,d,e\n", "a,b\n\r\nc,d\n"],
)
def test_runs_arrow_cannot_split_exactly_are_left_to_rows_of(text: str) -> None:
    """Empty lines, a lone CR, another field count."""
    assert CsvReader(CsvOptions(header=False), ",").table_of(Lines(1, text), 2) is None


class Row(fresh_base()):  # type: ignore[misc]
    __tablename__ = "rows"
    a = String(20)
    b = Integer()
    c = String(20)


def _chunks(folder: Path, work: Path, key: str, csv: CsvOptions) -> list[list[object]]:
    """What reading the object gives: each chunk file's rows, and each chunk's rejects."""
    # the rows as read, in chunk files (the lane: test_csv_lane)
    chunks = object_chunks(
        folder, key, Row.__fields__, fmt="csv", csv=csv, workdir=work, lane=False
    )
    out: list[list[object]] = []
    for chunk in chunks:
        out.append(pq.read_table(chunk.path).to_pylist())
        out.append([(r.line, r.value, r.reason) for r in chunk.read_rejects])
        chunk.discard()
    return out


_line = st.one_of(
    st.lists(_values, min_size=3, max_size=3).map(",".join),
    st.lists(_values, min_size=1, max_size=5).map(",".join),  # maybe another field count
    st.sampled_from(['x,1,"a ""q"", b"', '"multi\nline",2,z', "", "\r", "a,b,\udcff"]),
)


@budget
@given(
    lines=st.lists(_line, max_size=40),
    header=st.sampled_from(["a,b,c", "c,x,a", "\ufeffb,a,c"]),
    ignore=st.integers(0, 2),
    rows=st.sampled_from([3, 7, 100_000]),
    block=st.sampled_from([16, 64, 1 << 20]),
)
def test_objects_read_the_same_with_and_without_arrow(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[str],
    header: str,
    ignore: int,
    rows: int,
    block: int,
) -> None:
    """Chunk files and rejects are the same whether runs are split by Arrow or in Python,
    however the object is cut into reads and chunks."""
    folder = tmp_path_factory.mktemp("lake")
    text = "\n".join(["skipped"] * ignore + [header, *lines]) + "\n"
    (folder / "o.csv").write_bytes(text.encode("utf-8", "surrogateescape"))
    csv = CsvOptions(ignore_header=ignore)
    with (
        mock.patch.object(csv_reader, "READ_BYTES", block),
        mock.patch.object(csv_feed, "CSV_CHUNK_ROWS", rows),
    ):
        fast = _chunks(folder, tmp_path_factory.mktemp("work"), "o.csv", csv)
        with (
            mock.patch.object(CsvReader, "plain", return_value=False),
            mock.patch.object(CsvReader, "_plain_bytes", return_value=False),
        ):
            slow = _chunks(folder, tmp_path_factory.mktemp("work"), "o.csv", csv)

    # the same rows and rejects (where chunks are cut may differ: the rows gathered for
    # Arrow's reader are counted before their rejects are known; and a block of bytes puts
    # its records with quoted fields after the others, so rows are compared by line)
    def by_line(chunks: list[list[object]]) -> list[object]:
        return sorted((r for rows in chunks for r in rows), key=lambda r: r["line"])  # type: ignore[index]

    assert by_line(fast[0::2]) == by_line(slow[0::2])
    assert [r for rows in fast[1::2] for r in rows] == [r for rows in slow[1::2] for r in rows]


def test_arrow_reads_an_object_in_one_call_quoted_records_read_in_python(tmp_path: Path) -> None:
    """The header apart, the records of an object (up to a chunk's worth) go through Arrow's
    reader in one call, those with quoted fields read in Python (and put after the others,
    with their own lines)."""
    lines = [f"x{i},{i},\\N" for i in range(50)]
    lines[10] = '"q,""10""",10,"multi\nline"'
    lines[20] = "x20,2"  # a reject
    (tmp_path / "o.csv").write_text("a,b,c\n" + "".join(line + "\n" for line in lines))
    calls = []
    real = CsvReader.split

    def spy(self: CsvReader, text: str, expected: int) -> object:
        table = real(self, text, expected)
        calls.append(table is not None)
        return table

    with mock.patch.object(CsvReader, "split", spy):
        out = _chunks(tmp_path, tmp_path, "o.csv", CsvOptions())
    # one split call fails on the wrong field count, and the object is read in Python; then
    # without it, one call
    assert calls == [False]
    (tmp_path / "o.csv").write_text(
        "a,b,c\n" + "".join(line + "\n" for i, line in enumerate(lines) if i != 20)
    )
    calls.clear()
    with mock.patch.object(CsvReader, "split", spy):
        out = _chunks(tmp_path, tmp_path, "o.csv", CsvOptions())
    assert calls == [True]
    rows = out[0]
    assert rows[1] == {"line": 3, "c1": "x1", "c2": "1", "c3": None}
    assert rows[10] == {"line": 14, "c1": "x11", "c2": "11", "c3": None}
    assert rows[-1] == {"line": 12, "c1": 'q,"10"', "c2": "10", "c3": "multi\nline"}
    assert sorted(row["line"] for row in rows) == [*range(2, 13), *range(14, 52)]  # type: ignore[index]
