"""CSV objects written by Python's ``csv`` module (``QUOTE_ALL`` and ``QUOTE_MINIMAL``, any
strings) loaded into DuckDB and PostgreSQL: every value arrives as ``CsvReader`` reads it
(``tests/unit/loading/test_csv_properties.py`` holds the dialect's expectations), and every
record with a wrong field count is a reject at the line the record starts on.
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import example, given
from hypothesis import strategies as st

from arbalest import Pipeline, String
from arbalest.loading.formats import CsvOptions
from arbalest.loading.tabular_feed import EXTRA_COLUMNS, MISSING_COLUMNS
from tests.fixtures.budgets import budget
from tests.fixtures.schemas import fresh_base
from tests.integration.test_bulk_write import engine
from tests.unit.loading.test_csv_properties import (
    SPECIAL,
    Dialect,
    characters,
    dialects,
    expected,
    written,
)

__all__ = ["engine"]  # the module's warehouses, one of each kind

# no NUL: a string holding one is rejected on every warehouse (test_bulk_write)
_text = characters.filter(lambda c: c != "\x00")
_pieces = st.one_of(st.sampled_from(SPECIAL), st.text(_text, max_size=3))
strings = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(_text, max_size=20),
    st.lists(_pieces, max_size=6).map("".join),
)
#: A record's three values, and how many fields it has besides (-1 or 1: a wrong count).
records = st.lists(
    st.tuples(st.lists(strings, min_size=3, max_size=3), st.sampled_from([0, 0, 0, 0, -1, 1])),
    min_size=1,
    max_size=10,
)


class Texts(fresh_base()):  # type: ignore[misc]
    __tablename__ = "csv_texts"
    n = String(16)
    a = String(65535)
    b = String(65535)
    c = String(65535)


def rows_of(records: list[tuple[list[str], int]]) -> list[list[str]]:
    """The rows written: the record's number, then its values (one fewer or one more for a
    wrong field count)."""
    rows = []
    for number, (values, extra) in enumerate(records):
        row = [str(number), *values]
        rows.append(row[:extra] if extra < 0 else row + ["extra"] * extra)
    return rows


@budget(40)
@given(dialect=dialects, records=records)
@example(
    dialect=Dialect(csv.QUOTE_MINIMAL, "\n", ",", "\\N"),
    records=[(["a\r", "\\N", "x\ny"], 0), (["", "\r\n", '"'], 1), (["\\N", "", "a\r"], 0)],
)
@example(
    dialect=Dialect(csv.QUOTE_ALL, "\r\n", "|", ""),
    records=[(["", "\r\n", "|"], -1), (["", "\\N", "東京\n"], 0), (["\r", "", " "], 1)],
)
def test_what_python_writes_loads_as_written(
    engine: sa.Engine,
    tmp_path_factory: pytest.TempPathFactory,
    dialect: Dialect,
    records: list[tuple[list[str], int]],
) -> None:
    rows = rows_of(records)
    text, starts = written(dialect, [["n", "a", "b", "c"], *rows])
    root = tmp_path_factory.mktemp("lake")
    key = f"in/{uuid.uuid4().hex}.csv"
    (root / key).parent.mkdir()
    (root / key).write_bytes(text.encode())
    options = CsvOptions(delimiter=dialect.delimiter, null_as=dialect.null_as)
    result = (
        Pipeline(engine, store=root)
        .copy(Texts, "in", mode="replace", format="csv", csv_options=options, max_errors=100)
        .run()
    )
    want_rows: list[tuple[Any, ...]] = []
    want_rejects = []
    for row, line, (_, extra) in zip(rows, starts[1:], records, strict=True):
        if extra:
            code = EXTRA_COLUMNS if extra > 0 else MISSING_COLUMNS
            want_rejects.append((key, line, code))
        else:
            values = expected(dialect, row, first=False)
            assert values is not None  # four fields are never an empty line
            want_rows.append(tuple(values))
    got_rejects = [(r.key, r.line, r.code) for r in result.steps[0].rejects]
    assert got_rejects == want_rejects
    table = Texts.__table__
    with engine.connect() as conn:
        got_rows = [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.n))]
    assert sorted(got_rows, key=lambda r: int(r[0])) == want_rows
    assert result.rows_loaded == len(want_rows)


def test_the_lake_is_written_as_given(tmp_path: Path) -> None:
    """The helper writes the header first and each record at the line counted for it."""
    dialect = Dialect(csv.QUOTE_MINIMAL, "\n", ",", "\\N")
    text, starts = written(dialect, [["n"], ["a\nb"], ["c"]])
    assert text == 'n\n"a\nb"\nc\n'
    assert starts == [1, 2, 4]
