"""Read-only verbs write nothing: ``plan()``, ``arbalest plan``, ``arbalest status`` and
``arbalest drift`` create no file, table or journal, ``validate()`` leaves none behind, and a
DuckDB path with no database there is said to be missing rather than created. ``arbalest
drift`` does not even connect to the warehouse."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import Integer, Pipeline, Schema, String, WarehouseAccessError
from arbalest.cli import main
from arbalest.pipeline import runner

JOBS = """\
import sqlalchemy as sa

from arbalest import Integer, Pipeline, Schema, String


class Base(Schema):
    __abstract__ = True
    metadata = sa.MetaData()


class Event(Base):
    __tablename__ = "events"
    id = String(36, primary_key=True)
    n = Integer()


pipeline = Pipeline({warehouse!r}, store={store!r}).copy(Event, "events")
"""


@pytest.fixture
def event(base: type[Schema]) -> Any:
    class Event(base):  # type: ignore[misc, valid-type]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        n = Integer()

    return Event


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    (root / "events").mkdir(parents=True)
    (root / "events/a.json").write_text(
        "".join(json.dumps({"id": f"a{i}", "n": i}) + "\n" for i in range(3))
    )
    return root


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_plan_and_validate_create_no_duckdb_file(
    tmp_path: Path, lake: Path, event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    path = folder / "warehuose.duckdb"  # a typo: there is no database there
    pipeline = Pipeline(f"duckdb:///{path}", store=lake).copy(event, "events")
    with caplog.at_level(logging.INFO, logger="arbalest"):
        plan = pipeline.plan()
    # planned as for an empty database: the table to create and every object
    assert plan.steps[0].ddl
    assert "CREATE TABLE events" in plan.steps[0].ddl[0]
    assert plan.steps[0].keys == ["events/a.json"]
    assert f"there is no DuckDB database at {path}" in caplog.text
    validated = pipeline.validate()
    assert (validated.validated, validated.rows_loaded) == (True, 3)
    assert files(folder) == set()  # no database, no .wal
    # run() still makes the database: the quick start's first run
    assert pipeline.run().rows_loaded == 3
    assert path.exists()


def test_connect_for_reading_says_a_duckdb_file_is_missing(tmp_path: Path, lake: Path) -> None:
    path = tmp_path / "missing.duckdb"
    pipeline = Pipeline(f"duckdb:///{path}", store=lake)
    with pytest.raises(WarehouseAccessError) as caught, runner.connect(pipeline, create=False):
        pass
    assert f"there is no DuckDB database at {str(path)!r}" in str(caught.value)
    assert not caught.value.retryable
    assert not path.exists()


def write_jobs(tmp_path: Path, warehouse: str, lake: Path) -> Path:
    jobs = tmp_path / "jobs.py"
    jobs.write_text(JOBS.format(warehouse=warehouse, store=str(lake)))
    return jobs


def test_cli_status_on_a_missing_duckdb_file_says_so_and_creates_none(
    tmp_path: Path, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "warehuose.duckdb"
    jobs = write_jobs(tmp_path, f"duckdb:///{path}", lake)
    assert main(["status", str(jobs)]) == 2
    err = capsys.readouterr().err
    assert f"there is no DuckDB database at {str(path)!r}" in err
    assert "check the path of the warehouse URL" in err
    assert not path.exists()


def test_cli_plan_creates_no_duckdb_file(
    tmp_path: Path, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "warehouse.duckdb"
    jobs = write_jobs(tmp_path, f"duckdb:///{path}", lake)
    assert main(["plan", str(jobs)]) == 0
    out = capsys.readouterr().out
    assert "create: CREATE TABLE events" in out
    assert "events/a.json" in out
    assert not path.exists()
    assert main(["run", "-q", str(jobs)]) == 0
    assert main(["status", str(jobs)]) == 0
    assert "events" in capsys.readouterr().out


def tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "duckdb":
            query = "SELECT table_name FROM information_schema.tables"
        else:
            query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        return {str(name) for (name,) in conn.exec_driver_sql(query)}


def test_read_only_verbs_create_no_table_or_journal(
    warehouse: sa.Engine, tmp_path: Path, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    with warehouse.connect():
        pass  # the database exists (a DuckDB file is made), with no table in it
    before = tables(warehouse)
    jobs = write_jobs(tmp_path, url, lake)
    assert main(["plan", str(jobs)]) == 0
    assert main(["status", str(jobs)]) == 0
    assert main(["validate", str(jobs)]) == 0
    assert main(["drift", str(jobs)]) == 0
    assert tables(warehouse) == before
    assert "_arbalest_journal" not in before
    # the same after a run: drift adds nothing to the journal or the table
    assert main(["run", "-q", str(jobs)]) == 0
    with warehouse.connect() as conn:
        journaled = conn.exec_driver_sql("SELECT count(*) FROM _arbalest_journal").scalar()
    after_run = tables(warehouse)
    (lake / "events/b.json").write_text(json.dumps({"id": "b", "n": 1, "new": 2}) + "\n")
    capsys.readouterr()
    assert main(["drift", str(jobs)]) == 0
    assert "unmapped  new  1 record(s)  25%" in capsys.readouterr().out
    assert tables(warehouse) == after_run
    with warehouse.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM _arbalest_journal").scalar() == (
            journaled
        )
        assert conn.exec_driver_sql("SELECT count(*) FROM events").scalar() == 3


def tree(folder: Path) -> list[Path]:
    """Every path under ``folder`` (bar the bytecode that importing jobs.py may write)."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if "__pycache__" not in p.parts)


@pytest.mark.parametrize(
    "warehouse",
    [
        "duckdb:///{tmp}/db/warehouse.duckdb",  # no database file there
        "postgresql+psycopg2://loader@127.0.0.1:1/dw",  # nothing listens on port 1
    ],
)
def test_cli_drift_never_opens_the_warehouse_and_writes_no_file(
    tmp_path: Path, lake: Path, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "db").mkdir()
    jobs = write_jobs(tmp_path, warehouse.format(tmp=tmp_path), lake)
    before = tree(tmp_path)
    assert main(["drift", str(jobs)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("copy events (incremental): 3 record(s) from 1 of 1 object(s)")
    assert tree(tmp_path) == before  # no database, no .wal, nothing in the lake
