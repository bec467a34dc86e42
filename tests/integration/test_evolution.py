"""The target table against its class, on DuckDB and PostgreSQL: refused without evolve=True,
new columns added and VARCHARs widened with it, in the step's transaction, in every mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import (
    BigInt,
    Integer,
    Pipeline,
    PipelineError,
    SchemaError,
    SortedSources,
    String,
    TableMismatchError,
    Timestamp,
    TooManyRejectsError,
    journal,
)
from arbalest.backends import backend_for
from tests.fixtures.lakes import put
from tests.fixtures.schemas import fresh_base


def version_1() -> Any:
    class Event(fresh_base()):  # type: ignore[misc]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        n = Integer()
        note = String(20)

    return Event


def version_2(*, nullable: bool = True) -> Any:
    """Version 1 plus a new field, and a wider ``note``."""

    class Event(fresh_base()):  # type: ignore[misc]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        n = Integer()
        note = String(64)
        referrer = String(100, nullable=nullable)

    return Event


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    root.mkdir()
    return root


def columns(engine: sa.Engine, table: str = "events") -> dict[str, str]:
    """The table's columns with their types, as information_schema spells them."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT column_name, data_type, character_maximum_length "
                "FROM information_schema.columns WHERE table_name = :t "
                "AND table_schema = current_schema() ORDER BY ordinal_position"
            ),
            {"t": table},
        )
        return {
            str(name): f"{kind}({length})" if length else str(kind) for name, kind, length in found
        }


def rows(engine: sa.Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def keeps_lengths(engine: sa.Engine) -> bool:
    return backend_for(engine).capabilities.varchar_lengths


def load_version_1(warehouse: sa.Engine, lake: Path) -> None:
    put(lake, "events/a.json", [{"id": "a", "n": 1, "note": "first"}])
    Pipeline(warehouse, store=lake).copy(version_1(), "events").run()


def test_a_new_column_is_refused_without_evolve(warehouse: sa.Engine, lake: Path) -> None:
    load_version_1(warehouse, lake)
    before = columns(warehouse)
    put(lake, "events/b.json", [{"id": "b", "n": 2, "referrer": "x"}])
    with pytest.raises(TableMismatchError) as info:
        Pipeline(warehouse, store=lake).copy(version_2(), "events").run()
    error = info.value
    assert isinstance(error, SchemaError)
    assert isinstance(error, PipelineError)
    assert error.step == "copy events (incremental)"
    # every differing column is named; DuckDB's VARCHAR has no length to differ
    expected = ["note", "referrer"] if keeps_lengths(warehouse) else ["referrer"]
    assert error.columns == expected
    assert "evolve=True" in str(error)
    assert "column referrer (VARCHAR(100)) is not in the table" in str(error)
    assert columns(warehouse) == before
    with warehouse.connect() as conn:
        assert set(journal.loaded(conn, "events")) == {"events/a.json"}


@pytest.mark.parametrize("mode", ["incremental", "replace", "merge"])
def test_evolve_adds_new_columns_and_widens_varchar(
    warehouse: sa.Engine, lake: Path, mode: str
) -> None:
    load_version_1(warehouse, lake)
    long_note = "n" * 50  # longer than version 1's VARCHAR(20)
    put(lake, "events/b.json", [{"id": "b", "n": 2, "note": long_note, "referrer": "web"}])
    result = (
        Pipeline(warehouse, store=lake).copy(version_2(), "events", mode=mode, evolve=True).run()
    )
    assert result.steps[0].rows_loaded == (2 if mode == "replace" else 1)
    after = columns(warehouse)
    assert list(after) == ["id", "n", "note", "referrer"]
    if keeps_lengths(warehouse):
        assert after["note"] == "character varying(64)"
        assert after["referrer"] == "character varying(100)"
    assert rows(warehouse, "SELECT id, note, referrer FROM events ORDER BY id") == [
        ("a", "first", None),
        ("b", long_note, "web"),
    ]
    # the table now matches the class: without evolve, the next run passes
    put(lake, "events/c.json", [{"id": "c", "referrer": "app"}])
    Pipeline(warehouse, store=lake).copy(version_2(), "events", mode=mode).run()
    assert rows(warehouse, "SELECT referrer FROM events WHERE id = 'c'") == [("app",)]


def test_a_step_that_fails_after_its_alter_leaves_the_table_as_it_was(
    warehouse: sa.Engine, lake: Path
) -> None:
    load_version_1(warehouse, lake)
    before = columns(warehouse)
    put(lake, "events/b.json", [{"id": "b", "n": "not a number", "referrer": "web"}])
    pipeline = Pipeline(warehouse, store=lake).copy(version_2(), "events", evolve=True)
    with pytest.raises(TooManyRejectsError):
        pipeline.run()
    assert columns(warehouse) == before  # the ALTERs were rolled back with the step
    assert rows(warehouse, "SELECT id FROM events") == [("a",)]
    with warehouse.connect() as conn:
        assert set(journal.loaded(conn, "events")) == {"events/a.json"}


def test_a_new_not_null_field_is_added_nullable_and_enforced_on_loads(
    warehouse: sa.Engine, lake: Path
) -> None:
    load_version_1(warehouse, lake)
    put(lake, "events/b.json", [{"id": "b", "referrer": "web"}, {"id": "c"}])
    result = (
        Pipeline(warehouse, store=lake)
        .copy(version_2(nullable=False), "events", evolve=True, max_errors=1)
        .run()
    )
    assert result.steps[0].rows_loaded == 1
    assert [r.column for r in result.steps[0].rejects] == ["referrer"]
    # nullable in the table (row "a" has no value), NOT NULL in the class: no difference
    assert rows(warehouse, "SELECT id, referrer FROM events ORDER BY id") == [
        ("a", None),
        ("b", "web"),
    ]
    plan = Pipeline(warehouse, store=lake).copy(version_2(nullable=False), "events").plan()
    assert plan.steps[0].changes == []


def test_other_differences_are_refused_even_with_evolve(warehouse: sa.Engine, lake: Path) -> None:
    load_version_1(warehouse, lake)
    before = columns(warehouse)

    class Event(fresh_base()):  # type: ignore[misc]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        n = BigInt()  # INTEGER in the table
        note = String(10)  # VARCHAR(20) in the table: narrower
        added = Timestamp()  # evolvable, but not made while anything else is refused
        # no "legacy" column... the table's "note" stays; the class dropped nothing else

    with pytest.raises(TableMismatchError) as info:
        Pipeline(warehouse, store=lake).copy(Event, "events", evolve=True).run()
    message = str(info.value)
    assert "column n is INTEGER in the table, BIGINT in the class" in message
    assert "Alembic" in message
    assert "evolve=True adds" not in message.split("To fix:")[1]  # evolve is already on
    if keeps_lengths(warehouse):
        assert "column note is VARCHAR(20) in the table, VARCHAR(10) in the class" in message
    assert columns(warehouse) == before


def test_a_column_the_class_no_longer_has_is_refused(warehouse: sa.Engine, lake: Path) -> None:
    load_version_1(warehouse, lake)

    class Event(fresh_base()):  # type: ignore[misc]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        n = Integer()

    with pytest.raises(TableMismatchError) as info:
        Pipeline(warehouse, store=lake).copy(Event, "events", evolve=True).run()
    assert info.value.columns == ["note"]
    assert "column note (VARCHAR" in str(info.value)
    assert "is in the table but not in the class" in str(info.value)


def test_plan_shows_the_difference_and_the_alter_and_runs_none(
    warehouse: sa.Engine, lake: Path
) -> None:
    load_version_1(warehouse, lake)
    before = columns(warehouse)
    put(lake, "events/b.json", [{"id": "b", "referrer": "web"}])
    refused = Pipeline(warehouse, store=lake).copy(version_2(), "events").plan().steps[0]
    assert [c.column for c in refused.changes][-1] == "referrer"
    assert refused.alter == []
    assert refused.refused is not None
    assert "evolve=True" in refused.refused
    plan = Pipeline(warehouse, store=lake).copy(version_2(), "events", evolve=True).plan()
    step = plan.steps[0]
    assert step.refused is None
    assert step.alter[-1] == "ALTER TABLE events ADD COLUMN referrer VARCHAR(100)"
    if keeps_lengths(warehouse):
        assert step.alter[0] == "ALTER TABLE events ALTER COLUMN note TYPE VARCHAR(64)"
    text = str(plan)
    assert "the table differs from the class:" in text
    assert "alter: ALTER TABLE events ADD COLUMN referrer VARCHAR(100)" in text
    document = plan.to_dict()["steps"][0]
    assert document["alter"] == step.alter
    assert document["changes"][-1] == {
        "column": "referrer",
        "change": "add",
        "table": None,
        "class": "VARCHAR(100)",
        "evolvable": True,
    }
    assert "run() refuses" in str(
        Pipeline(warehouse, store=lake).copy(version_2(), "events").plan()
    )
    assert columns(warehouse) == before  # read-only


def test_validate_with_evolve_changes_nothing(warehouse: sa.Engine, lake: Path) -> None:
    load_version_1(warehouse, lake)
    before = columns(warehouse)
    put(lake, "events/b.json", [{"id": "b", "referrer": "web"}])
    result = Pipeline(warehouse, store=lake).copy(version_2(), "events", evolve=True).validate()
    assert result.rows_loaded == 1
    assert columns(warehouse) == before


def test_time_series_steps_are_checked_and_evolved(warehouse: sa.Engine, lake: Path) -> None:
    def partition(name: str, records: list[dict[str, Any]]) -> None:
        put(lake, f"events/{name}/part.json", records)

    class V1(fresh_base()):  # type: ignore[misc]
        __tablename__ = "series"
        id = String(36, primary_key=True)
        t = Timestamp()

    class V2(fresh_base()):  # type: ignore[misc]
        __tablename__ = "series"
        id = String(36, primary_key=True)
        t = Timestamp()
        extra = Integer()

    partition("2014-11-04", [{"id": "a", "t": "2014-11-04 01:00:00"}])
    sources = SortedSources(lake, "events", warehouse=warehouse)
    Pipeline(warehouse).time_series(V1, sources, series_column="t").run()
    partition("2014-11-05", [{"id": "b", "t": "2014-11-05 01:00:00", "extra": 7}])
    sources = SortedSources(lake, "events", warehouse=warehouse)
    with pytest.raises(TableMismatchError):
        Pipeline(warehouse).time_series(V2, sources, series_column="t").run()
    assert "extra" not in columns(warehouse, "series")
    Pipeline(warehouse).time_series(V2, sources, series_column="t", evolve=True).run()
    assert rows(warehouse, "SELECT id, extra FROM series ORDER BY id") == [
        ("a", None),
        ("b", 7),
    ]
