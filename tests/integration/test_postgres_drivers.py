"""PostgreSQL through either driver: psycopg2 and psycopg 3 load the same rows with the same
COPY, and a bare ``postgresql://`` or ``postgres://`` URL loads through the one installed."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import ConcurrentRunError, Pipeline, String
from arbalest.backends.postgres import PostgresBackend

DRIVERS = ["psycopg2", "psycopg"]
TABLE = f"events_{uuid.uuid4().hex[:8]}"

# values COPY's CSV must carry exactly: quotes, separators, line breaks, the end-of-data
# marker, backslashes, '' apart from NULL, characters outside ASCII
NOTES = ['a "quoted", value', "two\nlines\r\nand a CR\r", "\\.", "\\N", "", None, "Zürich ☃ 𝄞"]


@pytest.fixture
def event(make_event: Callable[..., Any]) -> Any:
    # a name of its own: run locks are per database, and other tests load "events"
    return make_event(__tablename__=TABLE, note=String(40))


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    (root / "events").mkdir(parents=True)
    records = [{"id": f"r{i}", "n": i, "note": note} for i, note in enumerate(NOTES)]
    records.append({"id": "bad", "n": "x"})
    (root / "events/a.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def with_driver(url: str, drivername: str) -> str:
    return sa.make_url(url).set(drivername=drivername).render_as_string(hide_password=False)


def rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT id, n, note FROM {TABLE}"))]


EXPECTED = sorted((f"r{i}", i, note) for i, note in enumerate(NOTES))


@pytest.mark.parametrize("driver", DRIVERS)
def test_both_drivers_load_the_same_rows(
    postgres_url: str, lake: Path, event: Any, driver: str
) -> None:
    url = with_driver(postgres_url, f"postgresql+{driver}")
    pipeline = Pipeline(url, store=lake).copy(event, "events", max_errors=1)
    result = pipeline.run()
    assert (result.rows_loaded, result.rows_rejected) == (len(NOTES), 1)  # COPY's own count
    assert [(r.key, r.line, r.column) for r in result.steps[0].rejects] == [
        ("events/a.json", len(NOTES) + 1, "n")
    ]
    engine = sa.create_engine(postgres_url)
    try:
        assert sorted(rows(engine)) == EXPECTED
    finally:
        engine.dispose()
    assert pipeline.run().rows_loaded == 0  # journaled through this driver too


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
@pytest.mark.parametrize("hidden", [(), ("psycopg2",)])
def test_a_bare_url_loads_through_the_installed_driver(
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
    lake: Path,
    event: Any,
    scheme: str,
    hidden: tuple[str, ...],
) -> None:
    for module in hidden:
        monkeypatch.setitem(sys.modules, module, None)
    pipeline = Pipeline(with_driver(postgres_url, scheme), store=lake).copy(
        event, "events", max_errors=1
    )
    assert pipeline.engine.url.drivername == (
        "postgresql+psycopg" if hidden else "postgresql+psycopg2"
    )
    assert pipeline.run().rows_loaded == len(NOTES)
    assert sorted(rows(pipeline.engine)) == EXPECTED


@contextlib.contextmanager
def holding_run_lock(url: str) -> Iterator[None]:
    """Holds the run lock on ``TABLE``, taken as a run's step takes it on a connection to
    ``url``, from another thread until the block ends."""
    held, release = threading.Event(), threading.Event()
    engine = sa.create_engine(url)

    def hold() -> None:
        with engine.begin() as conn, PostgresBackend(engine).lock(conn, TABLE, 5):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        yield
    finally:
        release.set()
        holder.join()
        engine.dispose()


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_held_lock_is_a_concurrent_run_error_with_either_driver(
    postgres_url: str,
    postgres_server: sa.Engine,
    postgres_schema: str,
    lake: Path,
    event: Any,
    driver: str,
) -> None:
    pipeline = Pipeline(
        with_driver(postgres_url, f"postgresql+{driver}"), store=lake, lock_timeout=0.2
    ).copy(event, "events", max_errors=1)
    with holding_run_lock(postgres_url):
        with pytest.raises(ConcurrentRunError) as caught:
            pipeline.run()
        assert caught.value.retryable
    assert pipeline.run().rows_loaded == len(NOTES)


def test_a_lock_held_in_another_schema_does_not_wait(
    postgres_url: str, postgres_server: sa.Engine, lake: Path, event: Any
) -> None:
    # the same table name under another schema's journal is another target
    pipeline = Pipeline(postgres_url, store=lake, lock_timeout=0.2).copy(
        event, "events", max_errors=1
    )
    other = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_server.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{other}"')
    try:
        elsewhere = sa.make_url(postgres_url).update_query_dict(
            {"options": f"-csearch_path={other}"}
        )
        with holding_run_lock(elsewhere.render_as_string(hide_password=False)):
            assert pipeline.run().rows_loaded == len(NOTES)
    finally:
        with postgres_server.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{other}" CASCADE')
