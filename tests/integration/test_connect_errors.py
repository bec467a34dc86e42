"""Retryable means retryable: what ``run()``, ``validate()`` and ``plan()`` raise when the
warehouse cannot be opened, or gives up on a statement, on the real PostgreSQL and DuckDB.

A failed sign-in, a missing database, role or folder is a mistake to fix: a
``WarehouseAccessError`` (not retryable) that says what to fix. A refused connection or a
lock that times out may pass later: retryable. Neither is blamed on a step named ``connect``.
"""

from __future__ import annotations

import pickle
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import (
    ConfigurationError,
    Pipeline,
    PipelineError,
    SQLStepError,
    WarehouseAccessError,
    WarehouseUnavailableError,
)

VERBS: dict[str, Callable[[Pipeline], Any]] = {
    "run": lambda p: p.run(),
    "validate": lambda p: p.validate(),
    "plan": lambda p: p.plan(),
}


def closed_port() -> int:
    """A local port nothing listens on (so a connection to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def pipeline_on(url: sa.URL | str, tmp_path: Path) -> Pipeline:
    return Pipeline(url, store=tmp_path).sql("SELECT 1")


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    assert "step 'connect'" not in text
    return text


@pytest.mark.postgres
@pytest.mark.parametrize("verb", VERBS)
def test_a_missing_postgresql_database_is_a_mistake_to_fix(
    postgres_server: sa.Engine, tmp_path: Path, verb: str
) -> None:
    url = postgres_server.url.set(database="arbalest_no_such_database")
    with pytest.raises(WarehouseAccessError) as caught:
        VERBS[verb](pipeline_on(url, tmp_path))
    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert not error.retryable
    assert error.warehouse == url.render_as_string(hide_password=True)
    assert one_line(error) == (
        f"cannot open the warehouse {error.warehouse}: connection to server at "
        '"127.0.0.1", port 5432 failed: FATAL:  database "arbalest_no_such_database" does '
        "not exist; check the database name of the warehouse URL, or create that database"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.retryable) == (WarehouseAccessError, str(error), False)


@pytest.mark.postgres
def test_a_missing_postgresql_role_is_a_mistake_to_fix(
    postgres_server: sa.Engine, tmp_path: Path
) -> None:
    url = postgres_server.url.set(username="arbalest_no_such_role")
    with pytest.raises(WarehouseAccessError) as caught:
        pipeline_on(url, tmp_path).run()
    assert not caught.value.retryable
    text = one_line(caught.value)
    assert 'role "arbalest_no_such_role" does not exist' in text
    assert text.endswith("; check the user name of the warehouse URL, or create that role")


@pytest.mark.postgres
@pytest.mark.parametrize("verb", VERBS)
def test_a_refused_connection_is_retryable_and_names_no_step(
    postgres_server: sa.Engine, tmp_path: Path, verb: str
) -> None:
    url = postgres_server.url.set(port=closed_port())
    with pytest.raises(WarehouseUnavailableError) as caught:
        VERBS[verb](pipeline_on(url, tmp_path))
    error = caught.value
    assert isinstance(error, PipelineError)  # as before: `except PipelineError` still sees it
    assert error.retryable
    assert error.step == ""
    where = url.render_as_string(hide_password=True)
    assert one_line(error).startswith(f"cannot open the warehouse {where}: connection to server")
    assert "Connection refused; Is the server running" in str(error)


@pytest.mark.duckdb
@pytest.mark.parametrize("verb", VERBS)
def test_a_duckdb_file_in_a_missing_folder_is_a_mistake_to_fix(tmp_path: Path, verb: str) -> None:
    folder = tmp_path / "no" / "such"
    with pytest.raises(WarehouseAccessError) as caught:
        VERBS[verb](pipeline_on(f"duckdb:///{folder / 'w.duckdb'}", tmp_path))
    assert not caught.value.retryable
    assert one_line(caught.value).endswith(
        f"; the folder {str(folder)!r} does not exist: create it, or check the path of the "
        "warehouse URL"
    )
    assert not (tmp_path / "no").exists()


@pytest.mark.postgres
def test_a_lock_timeout_in_a_step_is_retryable(postgres_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE busy (a INTEGER)"))
    pipeline = Pipeline(postgres_url, store=tmp_path).sql(
        "SET LOCAL lock_timeout = '100ms'", "LOCK TABLE busy IN ACCESS EXCLUSIVE MODE"
    )
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE"))
            held.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(SQLStepError) as caught:
            pipeline.run()
    finally:
        done.set()
        holder.join()
    assert caught.value.retryable
    assert "lock timeout" in str(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).retryable
    pipeline.run()  # and once the lock is free, it passes
    engine.dispose()


@pytest.mark.postgres
def test_a_failed_statement_is_not_retryable(postgres_url: str, tmp_path: Path) -> None:
    with pytest.raises(SQLStepError) as caught:
        Pipeline(postgres_url, store=tmp_path).sql("SELECT * FROM no_such_table").run()
    assert not caught.value.retryable
