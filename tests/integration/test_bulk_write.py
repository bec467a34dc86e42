"""The bulk write on PostgreSQL and DuckDB: every string arrives exactly as it was in the
JSON, and a write that stores fewer rows than it was sent fails the step.

PostgreSQL's ``COPY ... CSV`` has its own grammar (a line holding only ``\\.`` ends the data
unless quoted; an unquoted empty field is NULL; CR and LF end a row outside quotes), so the
strings are chosen to hit it, and then drawn at random by Hypothesis through the real
pipeline.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import example, given
from hypothesis import strategies as st

from arbalest import (
    Boolean,
    CopyError,
    Date,
    Integer,
    Pipeline,
    Schema,
    String,
    TooManyRejectsError,
    journal,
)
from arbalest.loading.transform import Batch, Transform
from tests.fixtures.budgets import budget
from tests.fixtures.schemas import fresh_base

#: Strings that mean something to COPY's CSV or text formats, or to a CSV writer.
SPECIAL: Final = (
    "\\.",
    "\\.\n",
    "\n\\.",
    "a\n\\.\nb",
    "a\r\n\\.\r\nb",
    "\\",
    "\\\\",
    "\\N",
    "\\n",
    "\\r",
    "\\t",
    "",
    " ",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "a\rb",
    '"',
    '""',
    '"\\."',
    ",",
    "a,b",
    '"a","b"',
    "\\.,",
    "NULL",
    "null",
    "\u2028",
    "\u0085",
    "日本",
    "\U0001f600",
)


Base = fresh_base()


class One(Base):  # type: ignore[misc, valid-type]
    """A schema of one text column: a row of CSV is the value alone."""

    __tablename__ = "one_text"
    s = String(65535)


class Many(Base):  # type: ignore[misc, valid-type]
    """Several text columns, the row number between them."""

    __tablename__ = "many_text"
    a = String(65535)
    b = String(65535)
    n = String(16)
    c = String(65535)


MANY_TEXT: Final = ("a", "b", "c")

# No NUL (a string holding one is rejected, the same on every warehouse: see the conformance
# table) and no lone surrogates (not text: json.dumps writes them as escapes that are not
# UTF-8).
_characters = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_pieces = st.one_of(st.sampled_from(SPECIAL), st.text(_characters, max_size=3))
strings: Final = st.one_of(
    st.none(),
    st.text(_characters, max_size=40),
    st.sampled_from(SPECIAL),
    st.lists(_pieces, max_size=6).map("".join),
)


@pytest.fixture(scope="module")
def engine(module_warehouse_url: str) -> Iterator[sa.Engine]:
    """A warehouse of each kind, kept for the module: each load replaces its table."""
    made = sa.create_engine(module_warehouse_url)
    yield made
    made.dispose()


def load(
    engine: sa.Engine, root: Path, schema: type[Schema], records: Sequence[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """Write ``records`` as one JSON object, load it (replacing the table) and return the
    table's rows in file order."""
    folder = root / schema.__tablename__
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    (folder / f"{uuid.uuid4().hex}.json").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    result = Pipeline(engine, store=root).copy(schema, schema.__tablename__, mode="replace").run()
    assert result.rows_rejected == 0
    assert result.rows_loaded == len(records)
    columns = [c.name for c in schema.__table__.columns]
    with engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(sa.select(*(schema.__table__.c[c] for c in columns)))
        ]


def many_rows(values: Sequence[str | None]) -> list[dict[str, Any]]:
    """Records of the ``Many`` schema holding ``values``, three to a record."""
    cut = [list(values[i : i + 3]) for i in range(0, len(values), 3)] or [[]]
    records = []
    for number, part in enumerate(cut):
        part += [None] * (3 - len(part))
        records.append({"a": part[0], "b": part[1], "n": str(number), "c": part[2]})
    return records


def expected_many(records: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["a"], r["b"], r["n"], r["c"]) for r in records]


def by_number(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda r: int(r[2]))


def test_one_column_strings_copy_reads_specially_arrive_intact(
    engine: sa.Engine, tmp_path: Path
) -> None:
    values: list[str | None] = ["first", *SPECIAL, None, "last"]
    rows = load(engine, tmp_path, One, [{"s": v} for v in values])
    assert sorted(rows, key=repr) == sorted(((v,) for v in values), key=repr)


def test_end_of_data_marker_alone_does_not_end_the_load(engine: sa.Engine, tmp_path: Path) -> None:
    rows = load(engine, tmp_path, One, [{"s": "a"}, {"s": "\\."}, {"s": "b"}])
    assert sorted(r[0] for r in rows) == ["\\.", "a", "b"]


def test_many_column_strings_copy_reads_specially_arrive_intact(
    engine: sa.Engine, tmp_path: Path
) -> None:
    records = many_rows([*SPECIAL, None, ""])
    assert by_number(load(engine, tmp_path, Many, records)) == expected_many(records)


@budget(60)
@given(values=st.lists(strings, min_size=1, max_size=12))
@example(values=["\\."])
@example(values=["a", "\\.", "b"])
@example(values=["", None, "\r", "a\n\\.\nb"])
def test_any_text_round_trips_in_one_column(
    engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory, values: list[str | None]
) -> None:
    root = tmp_path_factory.mktemp("lake")
    rows = load(engine, root, One, [{"s": v} for v in values])
    assert sorted(rows, key=repr) == sorted(((v,) for v in values), key=repr)


@budget(60)
@given(values=st.lists(strings, min_size=1, max_size=12))
@example(values=["\\.", None, None])
@example(values=["a\n\\.\nb", "", "\r"])
def test_any_text_round_trips_in_many_columns(
    engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory, values: list[str | None]
) -> None:
    root = tmp_path_factory.mktemp("lake")
    records = many_rows(values)
    assert by_number(load(engine, root, Many, records)) == expected_many(records)


# -- a short write -----------------------------------------------------------------------


def drop_last_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, every exported batch loses its last row after it was counted, whatever
    form the warehouse takes it in."""
    original = Transform.export

    def export(self: Transform, batch: Batch, path: Path, fmt: str, **kw: Any) -> None:
        original(self, batch, path, fmt, **kw)
        if batch.table is not None:
            table: pa.Table = batch.table
            batch.table = table.slice(0, table.num_rows - 1)
        elif batch.path is not None:
            lines = batch.path.read_bytes().splitlines(keepends=True)
            batch.path.write_bytes(b"".join(lines[:-1]))

    monkeypatch.setattr(Transform, "export", export)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    (root / "events").mkdir(parents=True)
    return root


class Event(Base):  # type: ignore[misc, valid-type]
    __tablename__ = "events"
    id = String(8, primary_key=True)


def snapshot(engine: sa.Engine) -> tuple[list[Any], list[Any]]:
    """The table's ids and the journal's keys and counts."""
    with engine.connect() as conn:
        ids = sorted(conn.execute(sa.select(Event.__table__.c.id)).scalars())
        j = journal.JOURNAL.c
        entries = [tuple(r) for r in conn.execute(sa.select(j.key, j.rows_loaded).order_by(j.key))]
    return ids, entries


@pytest.mark.parametrize("mode", ["incremental", "replace", "merge"])
def test_a_short_write_fails_the_step_and_changes_nothing(
    warehouse: sa.Engine, lake: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (lake / "events" / "a.json").write_text('{"id": "a1"}\n{"id": "a2"}\n')
    Pipeline(warehouse, store=lake).copy(Event, "events", mode=mode).run()
    before = snapshot(warehouse)
    assert before[0] == ["a1", "a2"]

    (lake / "events" / "b.json").write_text('{"id": "b1"}\n{"id": "b2"}\n{"id": "b3"}\n')
    drop_last_rows(monkeypatch)
    pipeline = Pipeline(warehouse, store=lake).copy(Event, "events", mode=mode)
    with pytest.raises(CopyError) as caught:
        pipeline.run()
    sent = 5 if mode == "replace" else 3
    message = str(caught.value)
    assert f"reports {sent - 1} row(s) written" in message
    assert f"for {sent} row(s) sent from " in message
    assert "'events/b.json'" in message
    assert caught.value.step == pipeline.steps[0].label
    assert snapshot(warehouse) == before


def test_a_string_holding_nul_is_rejected_on_duckdb_and_postgresql(
    warehouse: sa.Engine, lake: Path
) -> None:
    (lake / "events" / "a.json").write_text('{"id": "a1"}\n{"id": "a\\u0000"}\n')
    with pytest.raises(TooManyRejectsError) as caught:
        Pipeline(warehouse, store=lake).copy(Event, "events").run()
    (reject,) = caught.value.rejects
    assert (reject.key, reject.line, reject.column) == ("events/a.json", 2, "id")
    assert "NUL" in reject.reason


class Untexted(Base):  # type: ignore[misc, valid-type]
    """No text column: nothing for the bulk format to quote."""

    __tablename__ = "untexted"
    n = Integer()
    b = Boolean()
    d = Date()


def test_a_schema_without_text_columns_loads(engine: sa.Engine, tmp_path: Path) -> None:
    records: list[dict[str, Any]] = [
        {"n": 1, "b": True, "d": "2026-01-02"},
        {"n": None, "b": None, "d": None},
    ]
    rows = load(engine, tmp_path, Untexted, records)
    assert sorted(rows, key=repr) == sorted(
        [(1, True, dt.date(2026, 1, 2)), (None, None, None)], key=repr
    )


# -- a session that does not speak UTF-8 --------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_text_arrives_intact_through_a_session_in_another_encoding(
    postgres_module_url: str, tmp_path: Path, driver: str
) -> None:
    # Binary COPY's text is read in the session's client_encoding: a LATIN1 session gets
    # the batches as CSV declared UTF-8 instead, and text outside LATIN1 arrives intact.
    url = sa.make_url(postgres_module_url).set(drivername=f"postgresql+{driver}")
    latin1 = sa.create_engine(url.update_query_dict({"client_encoding": "latin1"}))
    utf8 = sa.create_engine(url)
    values = ["naïve façade", "東京の天気", "rocket \U0001f680", SPECIAL[0], "", None]
    records = many_rows(values)
    folder = tmp_path / Many.__tablename__
    folder.mkdir()
    (folder / "a.json").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    try:
        with latin1.connect() as conn:
            encoding = conn.exec_driver_sql("SHOW client_encoding").scalar_one()
        assert encoding.upper() == "LATIN1"
        result = (
            Pipeline(latin1, store=tmp_path).copy(Many, Many.__tablename__, mode="replace").run()
        )
        assert (result.rows_loaded, result.rows_rejected) == (len(records), 0)
        with utf8.connect() as conn:
            rows = [tuple(r) for r in conn.execute(sa.select(*Many.__table__.columns))]
        assert by_number(rows) == expected_many(records)
    finally:
        latin1.dispose()
        utf8.dispose()
