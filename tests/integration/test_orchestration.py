"""SortedSources and time-series imports, on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import (
    ConfigurationError,
    Integer,
    ObjectNotFoundError,
    Pipeline,
    PipelineError,
    Schema,
    SortedSources,
    String,
    TimeSeriesImport,
    Timestamp,
    TooManyRejectsError,
    journal,
)


def partition(root: Path, name: str, records: list[dict[str, Any]]) -> None:
    folder = root / "events" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part.json").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    partition(root, "2014-11-03", [{"id": "a", "t": "2014-11-03T10:00:00"}])
    partition(root, "2014-11-04/00", [{"id": "b0", "t": "2014-11-04T00:10:00"}])
    partition(root, "2014-11-04/01", [{"id": "b1", "t": "2014-11-04T01:10:00"}])
    partition(root, "2014-11-05/00", [{"id": "c", "t": "2014-11-05T00:30:00"}])
    partition(root, "2014-11-06", [{"id": "d", "t": "2014-11-06T12:00:00"}])
    return root


@pytest.fixture
def event(base: type[Schema]) -> Any:
    class Event(base):  # type: ignore[misc, valid-type]
        __tablename__ = "events"
        id = String(10)
        t = Timestamp()

    return Event


def test_hours_expand_between_bounds_as_in_the_original(lake: Path) -> None:
    sources = SortedSources(lake, "events", start="2014-11-04/01", end="2014-11-06")
    assert list(sources) == ["events/2014-11-04/01", "events/2014-11-05/00", "events/2014-11-06"]
    assert sources.get() == list(sources)


def test_days_unless_a_bound_names_an_hour(lake: Path) -> None:
    assert SortedSources(lake, "events/").get() == [
        "events/2014-11-03",
        "events/2014-11-04",
        "events/2014-11-05",
        "events/2014-11-06",
    ]
    assert SortedSources(lake, "events", start="2014-11-04", end="2014-11-05").get() == [
        "events/2014-11-04",
        "events/2014-11-05",
    ]
    assert SortedSources(lake, "events", end="2014-11-04/00").get() == [
        "events/2014-11-03",
        "events/2014-11-04/00",
    ]


def test_integers_sort_numerically(tmp_path: Path) -> None:
    for name in ("1", "2", "10", "9", "100"):
        (tmp_path / "runs" / name).mkdir(parents=True)
    sources = SortedSources(tmp_path, "runs", start="2", end="10")
    assert sources.get() == ["runs/2", "runs/9", "runs/10"]
    assert sources.value_of("runs/10") == 10


def test_values_of_partitions(lake: Path) -> None:
    sources = SortedSources(lake, "events")
    assert sources.value_of("events/2014-11-04") == dt.date(2014, 11, 4)
    assert sources.value_of("events/2014-11-04/01") == dt.datetime(2014, 11, 4, 1)
    assert sources.sort_key("events/2014-11-04/01") > sources.sort_key("events/2014-11-04")


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        ("2014-11-01", None, "start partition '2014-11-01'"),
        (None, "2014-12-01", "end partition '2014-12-01'"),
        ("2014-11-04/07", None, "partition '2014-11-04/07'"),
    ],
)
def test_a_missing_bound_is_reported(
    lake: Path, start: str | None, end: str | None, match: str
) -> None:
    with pytest.raises(ObjectNotFoundError, match=match):
        SortedSources(lake, "events", start=start, end=end).get()


def test_the_cursor_lives_in_the_journal(lake: Path, warehouse: sa.Engine) -> None:
    sources = SortedSources(lake, "events", warehouse=warehouse)
    assert sources.committed() is None
    sources.commit("events/2014-11-04")
    sources.commit("events/2014-11-05")
    assert sources.committed() == "events/2014-11-05"
    assert sources.rollback() == "events/2014-11-04"
    assert sources.committed() == "events/2014-11-04"
    assert SortedSources(lake, "events", warehouse=warehouse).committed() == "events/2014-11-04"
    assert SortedSources(lake, "events", warehouse=warehouse, name="other").committed() is None
    with pytest.raises(ConfigurationError, match="warehouse="):
        SortedSources(lake, "events").committed()


def rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT id, t FROM events ORDER BY t, id"))]


def test_time_series_imports_new_partitions_and_moves_the_cursor(
    lake: Path, warehouse: sa.Engine, event: Any
) -> None:
    sources = SortedSources(
        lake, "events", start="2014-11-04/01", end="2014-11-06", warehouse=warehouse
    )
    pipeline = Pipeline(warehouse).time_series(event, sources, series_column="t")
    plan = pipeline.plan().steps[0]
    assert plan.keys == [
        "events/2014-11-04/01/part.json",
        "events/2014-11-05/00/part.json",
        "events/2014-11-06/part.json",
    ]
    result = pipeline.run()
    assert result.steps[0].label == "time series events"
    assert (result.steps[0].objects_loaded, result.rows_loaded) == (3, 3)
    assert [r[0] for r in rows(warehouse)] == ["b1", "c", "d"]
    assert sources.committed() == "events/2014-11-06"
    # nothing new: nothing runs
    again = pipeline.run()
    assert again.rows_loaded == 0
    assert pipeline.plan().steps[0].keys == []
    # a new day: rows from it on are replaced, older ones kept
    partition(lake, "2014-11-07", [{"id": "e", "t": "2014-11-07T01:00:00"}])
    with warehouse.begin() as conn:  # a row that the import must replace
        conn.execute(sa.text("INSERT INTO events VALUES ('stale', '2014-11-07 05:00:00')"))
    later = SortedSources(lake, "events", start="2014-11-04/01", warehouse=warehouse)
    assert Pipeline(warehouse).time_series(event, later, series_column="t").run().rows_loaded == 1
    assert [r[0] for r in rows(warehouse)] == ["b1", "c", "d", "e"]
    assert later.committed() == "events/2014-11-07"


def test_since_deletes_from_an_earlier_point_and_union_all_keeps_duplicates(
    lake: Path, warehouse: sa.Engine, event: Any
) -> None:
    with warehouse.begin() as conn:
        conn.execute(sa.text("CREATE TABLE events (id VARCHAR(10), t TIMESTAMP)"))
        conn.execute(
            sa.text(
                "INSERT INTO events VALUES ('old', '2014-11-02 00:00:00'), "
                "('gone', '2014-11-03 23:00:00')"
            )
        )
    partition(
        lake,
        "2014-11-06",
        [{"id": "d", "t": "2014-11-06T12:00:00"}, {"id": "d", "t": "2014-11-06T12:00:00"}],
    )
    sources = SortedSources(lake, "events", start="2014-11-05", warehouse=warehouse)
    step = TimeSeriesImport(event, sources, series_column="t", since=dt.datetime(2014, 11, 3))
    step.add_to(Pipeline(warehouse)).run()
    assert [r[0] for r in rows(warehouse)] == ["old", "c", "d", "d"]


def test_a_failed_import_changes_nothing_and_keeps_the_cursor(
    lake: Path, warehouse: sa.Engine, event: Any
) -> None:
    sources = SortedSources(lake, "events", warehouse=warehouse)
    sources.commit("events/2014-11-03")
    partition(lake, "2014-11-06", [{"id": "d", "t": "not a time"}])
    pipeline = Pipeline(warehouse).time_series(event, sources, series_column="t")
    with pytest.raises(TooManyRejectsError) as info:
        pipeline.run()
    assert info.value.step == "time series events"
    assert sources.committed() == "events/2014-11-03"
    with warehouse.connect() as conn:
        assert not journal.table_exists(conn, event.__table__)
    # the seed's signature, with a budget for the reject
    result = (
        TimeSeriesImport(event, sources, series_column="t")
        .bulk_copy(Pipeline(warehouse), "metadata", 1, "t")
        .run()
    )
    assert (result.rows_loaded, result.rows_rejected) == (3, 1)
    assert sources.committed() == "events/2014-11-06"


def test_time_series_arguments_are_checked(lake: Path, warehouse: sa.Engine, event: Any) -> None:
    sources = SortedSources(lake, "events", warehouse=warehouse)
    with pytest.raises(ConfigurationError, match="series_column='nope'"):
        Pipeline(warehouse).time_series(event, sources, series_column="nope")
    with pytest.raises(ConfigurationError, match="sources="):
        Pipeline(warehouse).time_series(event, ["events/2014-11-03"], series_column="t")  # type: ignore[arg-type]


def test_validate_rolls_the_import_back(lake: Path, warehouse: sa.Engine, event: Any) -> None:
    sources = SortedSources(lake, "events", warehouse=warehouse)
    result = Pipeline(warehouse).time_series(event, sources, series_column="t").validate()
    assert result.rows_loaded == 5
    assert sources.committed() is None
    with warehouse.connect() as conn:
        assert not journal.table_exists(conn, event.__table__)


def test_a_step_error_names_the_time_series(
    lake: Path, warehouse: sa.Engine, base: type[Schema]
) -> None:
    class Wrong(base):  # type: ignore[misc, valid-type]
        __tablename__ = "events"
        id = Integer()
        t = Timestamp()

    with warehouse.begin() as conn:
        conn.execute(sa.text("CREATE TABLE events (id INTEGER, t VARCHAR(3))"))
    sources = SortedSources(lake, "events", warehouse=warehouse)
    with pytest.raises(PipelineError) as info:
        Pipeline(warehouse).time_series(Wrong, sources, series_column="t").run()
    assert info.value.step == "time series events"


def test_a_time_series_into_a_table_with_a_long_name_stages_each_partition_apart(
    lake: Path, warehouse: sa.Engine, base: type[Schema]
) -> None:
    class LongNamed(base):  # type: ignore[misc, valid-type]
        __tablename__ = "events_with_a_name_long_enough_to_fill_sixty_b"  # 47 bytes
        id = String(10)
        t = Timestamp()

    sources = SortedSources(lake, "events", start="2014-11-05", warehouse=warehouse)
    pipeline = Pipeline(warehouse).time_series(LongNamed, sources, series_column="t")
    assert pipeline.run().rows_loaded == 2  # two partitions, two staging tables
