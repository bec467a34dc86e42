"""Time series are exact in every time zone: partition names are UTC.

The machine's ``TZ``, the PostgreSQL session's ``TimeZone`` and DuckDB's zone (which follows
the machine's unless set) are drawn apart, so that no zone can stand in for another. Each
example loads the partition before a boundary, then the boundary's partition and the next
one, then rewinds the cursor and loads those two again: a boundary read in a zone east of
UTC deletes rows of the older partition that are not loaded again; one read west of UTC
keeps rows of the new partition that are then inserted a second time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

import duckdb
import pytest
import sqlalchemy as sa
from hypothesis import assume, example, given
from hypothesis import strategies as st

from arbalest import (
    ConfigurationError,
    Integer,
    Pipeline,
    PipelineError,
    SortedSources,
    String,
    Timestamp,
    TimestampTZ,
    journal,
)
from tests.fixtures.budgets import budget
from tests.fixtures.schemas import fresh_base
from tests.fixtures.servers import POSTGRES_URL

Kind = Literal["day", "hour"]

# Every zone Python, the machine and DuckDB (ICU) all know, in a fixed order (derandomised
# runs draw the same ones); PostgreSQL's own list is checked per example.
_DUCKDB_ZONES: Final = {
    name for (name,) in duckdb.connect().execute("SELECT name FROM pg_timezone_names()").fetchall()
}
ZONES: Final = sorted(zoneinfo.available_timezones() & _DUCKDB_ZONES)

# A session's own zone, or (one time in four) the warehouse's default: UTC for the PostgreSQL
# server here, the machine's zone for DuckDB.
SESSIONS: Final = st.integers(0, 3).flatmap(
    lambda n: st.none() if n == 0 else st.sampled_from(ZONES)
)

# Any hour from 1980 to 2037: zones' rules change over the years, and clocks change twice a
# year in many of them.
BOUNDARIES: Final = st.datetimes(
    min_value=dt.datetime(1980, 1, 2), max_value=dt.datetime(2037, 12, 30)
).map(lambda moment: moment.replace(minute=0, second=0, microsecond=0))


@contextmanager
def machine_zone(zone: str) -> Iterator[None]:
    """The process's local zone (``TZ``) set to ``zone``, restored afterwards."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def postgres_knows(postgres_server: sa.Engine, zone: str) -> bool:
    with postgres_server.connect() as conn:
        query = sa.text("SELECT count(*) FROM pg_timezone_names WHERE name = :zone")
        return bool(conn.scalar(query, {"zone": zone}))


@contextmanager
def warehouse_in(
    kind: str, zone: str | None, postgres_server: sa.Engine, folder: Path
) -> Iterator[sa.Engine]:
    """An empty warehouse whose sessions use ``zone`` (``None``: the warehouse's default,
    which for DuckDB is the machine's)."""
    if kind == "duckdb":
        engine = sa.create_engine(f"duckdb:///{folder / 'warehouse.duckdb'}")
        if zone is not None:

            @sa.event.listens_for(engine, "connect")
            def _zone(dbapi_connection: Any, _: Any) -> None:
                dbapi_connection.execute(f"SET TimeZone = '{zone}'")

        try:
            yield engine
        finally:
            engine.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_server.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    options = f"-csearch_path={schema}" + ("" if zone is None else f" -cTimeZone={zone}")
    engine = sa.create_engine(POSTGRES_URL, connect_args={"options": options})
    try:
        with engine.connect() as conn:  # the session really is in the zone drawn
            shown = conn.scalar(sa.text("SHOW TimeZone"))
        assert zone is None or shown == zone
        yield engine
    finally:
        engine.dispose()
        with postgres_server.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def partition_name(start: dt.datetime, kind: Kind) -> str:
    return f"{start:%Y-%m-%d}" + (f"/{start:%H}" if kind == "hour" else "")


def write_lake(root: Path, boundary: dt.datetime, kind: Kind) -> dict[str, dt.datetime]:
    """Three partitions: the one before ``boundary`` (UTC), the boundary's, the next one.

    Each holds a row at its first and at its last second, so the rows nearest the boundary
    are one second apart.
    """
    unit = dt.timedelta(days=1) if kind == "day" else dt.timedelta(hours=1)
    expected: dict[str, dt.datetime] = {}
    for number, start in enumerate((boundary - unit, boundary, boundary + unit)):
        folder = root / "events" / partition_name(start, kind)
        folder.mkdir(parents=True)
        lines = []
        for edge, moment in (("first", start), ("last", start + unit - dt.timedelta(seconds=1))):
            key = f"p{number}-{edge}"
            expected[key] = moment.replace(tzinfo=dt.UTC)
            lines.append(json.dumps({"id": key, "t": f"{moment:%Y-%m-%dT%H:%M:%S}Z"}))
        (folder / "part.json").write_text("\n".join(lines) + "\n")
    return expected


def held(engine: sa.Engine) -> list[tuple[str, dt.datetime]]:
    """The target's rows as (id, UTC instant); a naive value is UTC wall time."""
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT id, t FROM events")).all()
    return sorted(
        (key, t.astimezone(dt.UTC) if t.tzinfo else t.replace(tzinfo=dt.UTC)) for key, t in found
    )


def since_as(form: str, boundary: dt.datetime, zone: str) -> object:
    """``boundary`` (naive UTC) written as a ``since=`` argument of the given form."""
    instant = boundary.replace(tzinfo=dt.UTC)
    return {
        "none": None,
        "aware": instant.astimezone(zoneinfo.ZoneInfo(zone)),
        "naive": boundary,
        "text": boundary.isoformat(),
        "text-offset": instant.astimezone(zoneinfo.ZoneInfo(zone)).isoformat(),
        "date": boundary.date(),
    }[form]


Base = fresh_base()


class EventTZ(Base):  # type: ignore[misc, valid-type]
    __tablename__ = "events"
    id = String(10)
    t = TimestampTZ()


class EventTS(fresh_base()):  # type: ignore[misc]
    """The same table name as ``EventTZ``, in a MetaData of its own."""

    __tablename__ = "events"
    id = String(10)
    t = Timestamp()


@pytest.mark.parametrize("kind", ["day", "hour"])
@pytest.mark.parametrize(
    "warehouse_kind",
    [
        pytest.param("duckdb", marks=pytest.mark.duckdb),
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ],
)
@budget(6)
@given(
    machine=st.sampled_from(ZONES),
    session=SESSIONS,
    boundary=BOUNDARIES,
    column=st.sampled_from(["timestamptz", "timestamp"]),
    since_form=st.sampled_from(["none", "aware", "naive", "text", "text-offset", "date"]),
    since_zone=st.sampled_from(ZONES),
)
# UTC, a zone east of it (a half-hour one), one west of it on the night its clocks go back,
# DuckDB's default zone (the machine's) far east, and a session zone apart from the machine's
@example("UTC", "UTC", dt.datetime(2014, 11, 4), "timestamptz", "none", "UTC")
@example("Asia/Kolkata", "Asia/Kolkata", dt.datetime(2014, 11, 4), "timestamptz", "none", "UTC")
@example(
    "America/Los_Angeles",
    "America/Los_Angeles",
    dt.datetime(2014, 11, 2, 9),
    "timestamptz",
    "none",
    "UTC",
)
@example("Pacific/Auckland", None, dt.datetime(2014, 11, 4, 1), "timestamptz", "naive", "UTC")
@example(
    "UTC",
    "America/Los_Angeles",
    dt.datetime(2014, 3, 9, 10),
    "timestamp",
    "aware",
    "Asia/Kolkata",
)
def test_a_time_series_and_its_rewind_are_exact_in_every_zone(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: sa.Engine,
    warehouse_kind: str,
    kind: Kind,
    machine: str,
    session: str | None,
    boundary: dt.datetime,
    column: str,
    since_form: str,
    since_zone: str,
) -> None:
    if kind == "day":
        boundary = boundary.replace(hour=0)
    elif since_form == "date":
        since_form = "naive"  # a day is not where an hour partition starts
    if warehouse_kind == "postgresql":
        assume(session is None or postgres_knows(postgres_server, session))
    schema = EventTZ if column == "timestamptz" else EventTS
    since = since_as(since_form, boundary, since_zone)
    folder = tmp_path_factory.mktemp("zones")
    expected = write_lake(folder / "lake", boundary, kind)
    unit = dt.timedelta(days=1) if kind == "day" else dt.timedelta(hours=1)
    first = partition_name(boundary - unit, kind)
    with (
        machine_zone(machine),
        warehouse_in(warehouse_kind, session, postgres_server, folder) as engine,
    ):
        lake = folder / "lake"
        older = SortedSources(lake, "events", start=first, end=first, warehouse=engine)
        Pipeline(engine).time_series(schema, older, series_column="t").run()
        assert held(engine) == sorted((k, v) for k, v in expected.items() if k < "p1")

        sources = SortedSources(lake, "events", start=first, warehouse=engine)
        pipeline = Pipeline(engine).time_series(schema, sources, series_column="t", since=since)
        assert pipeline.run().rows_loaded == 4
        assert held(engine) == sorted(expected.items())
        assert sources.committed() == f"events/{partition_name(boundary + unit, kind)}"

        assert sources.rollback() == f"events/{first}"  # the rewind loads both again
        assert pipeline.run().rows_loaded == 4
        assert held(engine) == sorted(expected.items())


def test_a_since_that_is_not_a_time_is_refused_when_the_step_is_added(tmp_path: Path) -> None:
    (tmp_path / "events" / "2014-11-04").mkdir(parents=True)
    sources = SortedSources(tmp_path, "events")
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        with pytest.raises(ConfigurationError, match=r"since='yesterday'.*TIMESTAMP"):
            Pipeline(engine).time_series(EventTZ, sources, series_column="t", since="yesterday")
        with pytest.raises(ConfigurationError, match=r"since=7.*TIMESTAMP"):
            Pipeline(engine).time_series(EventTS, sources, series_column="t", since=7)
    finally:
        engine.dispose()


def test_a_numeric_series_keeps_its_numbers(tmp_path: Path) -> None:
    class Run(Base):  # type: ignore[misc, valid-type]
        __tablename__ = "runs"
        id = String(10)
        n = Integer()

    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    sources = SortedSources(tmp_path, "runs", warehouse=engine)
    for number in (2, 10):
        folder = tmp_path / "runs" / str(number)
        folder.mkdir(parents=True)
        (folder / "part.json").write_text(json.dumps({"id": f"r{number}", "n": number}) + "\n")
    try:
        pipeline = Pipeline(engine).time_series(Run, sources, series_column="n", since=2)
        assert pipeline.run().rows_loaded == 2
        with engine.connect() as conn:
            assert sorted(conn.execute(sa.text("SELECT id, n FROM runs")).all()) == [
                ("r10", 10),
                ("r2", 2),
            ]
    finally:
        engine.dispose()


def test_a_partition_that_names_no_time_fails_the_run_and_changes_nothing(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "events" / "7"
    folder.mkdir(parents=True)
    (folder / "part.json").write_text('{"id": "x", "t": "2014-11-04T00:00:00Z"}\n')
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    sources = SortedSources(tmp_path, "events", warehouse=engine)
    try:
        pipeline = Pipeline(engine).time_series(EventTZ, sources, series_column="t")
        with pytest.raises(PipelineError, match=r"partition 'events/7' \(which starts at 7\)"):
            pipeline.run()
        assert sources.committed() is None
        with engine.connect() as conn:
            assert not journal.table_exists(conn, EventTZ.__table__)
    finally:
        engine.dispose()
