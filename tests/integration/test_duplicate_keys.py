"""A duplicate primary key in an ``incremental`` or ``replace`` load names the object and the
line of the record that repeats it, in the same words on DuckDB and PostgreSQL, with the hint
that ``mode="merge"`` keeps the newest; the step commits nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import CopyError, Integer, Pipeline, Schema, String, journal
from tests.fixtures.lakes import put

HINT = 'mode="merge" keeps the newest record of each key'


def state(engine: sa.Engine, table: str = "events") -> tuple[list[Any], dict[str, int]]:
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1, 2"))]
        query = sa.select(journal.JOURNAL.c.key, journal.JOURNAL.c.rows_loaded).where(
            journal.JOURNAL.c.target == table
        )
        return rows, {str(k): int(n) for k, n in conn.execute(query)}


def failure(pipeline: Pipeline) -> str:
    with pytest.raises(CopyError) as caught:
        pipeline.run()
    return str(caught.value)


def test_a_key_repeated_within_the_load(warehouse: sa.Engine, tmp_path: Path, event: Any) -> None:
    put(tmp_path, "events/a.json", [{"id": "a1", "n": 1}])
    pipeline = Pipeline(warehouse, store=tmp_path).copy(event, "events")
    pipeline.run()
    before = state(warehouse)
    put(tmp_path, "events/b.json", [{"id": "b1"}, {"id": "b2"}, {"id": "b3"}, {"id": "b2"}])
    assert failure(pipeline) == (
        "step 'copy events (incremental)' failed: duplicate primary key (id)=('b2'): "
        f"events/b.json line 4 repeats the key of events/b.json line 2; {HINT}"
    )
    assert state(warehouse) == before


def test_a_key_the_table_already_holds(warehouse: sa.Engine, tmp_path: Path, event: Any) -> None:
    put(tmp_path, "events/a.json", [{"id": "a1", "n": 1}])
    pipeline = Pipeline(warehouse, store=tmp_path).copy(event, "events")
    pipeline.run()
    before = state(warehouse)
    put(tmp_path, "events/b.json", [{"id": "b1"}, {"id": "b2"}])
    put(tmp_path, "events/c.json", [{"id": "c1"}, {"id": "c2"}, {"id": "a1", "n": 2}])
    assert failure(pipeline) == (
        "step 'copy events (incremental)' failed: duplicate primary key (id)=('a1'): "
        f"events/c.json line 3 has a key the table events already holds; {HINT}"
    )
    assert state(warehouse) == before
    merged = Pipeline(warehouse, store=tmp_path).copy(event, "events", mode="merge")
    merged.run()
    assert state(warehouse)[0] == [
        ("a1", 2),
        ("b1", None),
        ("b2", None),
        ("c1", None),
        ("c2", None),
    ]


def test_replace_names_both_objects_and_a_composite_key(
    warehouse: sa.Engine, tmp_path: Path, base: type[Schema]
) -> None:
    class Reading(base):  # type: ignore[misc, valid-type]
        __tablename__ = "readings"
        sensor = String(10, primary_key=True)
        hour = Integer(primary_key=True)
        value = Integer()

    # a blank line and a pretty-printed record: lines are the object's own, and a record's
    # line is the line it ends on, as in rejects
    put(tmp_path, "r/1.json", [{"sensor": "s", "hour": 1}, {"sensor": "s", "hour": 2}])
    (tmp_path / "r/2.json").write_text(
        '{"sensor": "t", "hour": 2}\n\n{\n  "sensor": "s",\n  "hour": 2\n}\n'
    )
    pipeline = Pipeline(warehouse, store=tmp_path).copy(Reading, "r", mode="replace")
    assert failure(pipeline) == (
        "step 'copy readings (replace)' failed: duplicate primary key (sensor, hour)=('s', 2): "
        f"r/2.json line 6 repeats the key of r/1.json line 2; {HINT}"
    )
    with warehouse.connect() as conn:
        assert (
            not sa.inspect(conn).has_table("readings")
            or not conn.execute(sa.text("SELECT count(*) FROM readings")).scalar()
        )


def test_the_same_message_on_every_warehouse_and_as_many_times(
    warehouse: sa.Engine, tmp_path: Path, event: Any
) -> None:
    """The search for the duplicate runs on a connection of its own and leaves nothing:
    failing twice says the same, and the step's own transaction is rolled back as before."""
    put(tmp_path, "events/a.json", [{"id": "x"}, {"id": "x"}])
    pipeline = Pipeline(warehouse, store=tmp_path).copy(event, "events", mode="replace")
    first, second = failure(pipeline), failure(pipeline)
    assert first == second
    assert first.endswith(f"events/a.json line 2 repeats the key of events/a.json line 1; {HINT}")


def test_another_constraint_keeps_the_warehouses_own_words(
    warehouse: sa.Engine, tmp_path: Path, base: type[Schema]
) -> None:
    class Unique(base):  # type: ignore[misc, valid-type]
        __tablename__ = "uniques"
        __table_args__ = (sa.UniqueConstraint("n"),)
        id = String(10, primary_key=True)
        n = Integer()

    put(tmp_path, "u/a.json", [{"id": "a", "n": 1}, {"id": "b", "n": 1}])
    message = failure(Pipeline(warehouse, store=tmp_path).copy(Unique, "u"))
    assert "duplicate primary key" not in message
    assert "constraint" in message.lower()


def test_an_in_memory_duckdb_keeps_the_warehouses_own_words(tmp_path: Path, event: Any) -> None:
    """Its pool has one connection per thread, the failed one: the search is not tried."""
    engine = sa.create_engine("duckdb:///:memory:")
    put(tmp_path, "events/a.json", [{"id": "a"}, {"id": "a"}])
    pipeline = Pipeline(engine, store=tmp_path).copy(event, "events")
    assert "duplicate key" in failure(pipeline)
    put(tmp_path, "events/a.json", [{"id": "a"}, {"id": "b"}])
    assert pipeline.run().rows_loaded == 2
    engine.dispose()
