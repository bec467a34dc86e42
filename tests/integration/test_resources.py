"""A pipeline lets go of the warehouse when a verb returns; ``close()`` and ``with`` dispose of
the engine it made from a URL, never of one the caller passed."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from arbalest import Pipeline, SortedSources
from tests.fixtures.lakes import put


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    put(tmp_path / "lake", "events/a.json", [{"id": f"a{i}", "n": i} for i in range(3)])
    return tmp_path / "lake"


_COUNT_IN_ANOTHER_PROCESS = """
import sys, duckdb
with duckdb.connect(sys.argv[1]) as con:
    print(con.execute(f"SELECT count(*) FROM {sys.argv[2]}").fetchone()[0])
"""


def count_in_another_process(path: Path, table: str = "events") -> int:
    """Open the DuckDB file in a second process (as the DuckDB shell or a BI tool would)."""
    done = subprocess.run(
        [sys.executable, "-c", _COUNT_IN_ANOTHER_PROCESS, str(path), table],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def count_in_this_process(path: Path) -> int:
    with duckdb.connect(str(path)) as con:
        row = con.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])


def test_duckdb_file_is_free_for_another_process_after_each_verb(
    tmp_path: Path, lake: Path, event: Any
) -> None:
    path = tmp_path / "warehouse.duckdb"
    pipeline = Pipeline(f"duckdb:///{path}", store=lake).copy(event, "events")
    assert pipeline.run().rows_loaded == 3
    assert count_in_another_process(path) == 3  # while `pipeline` is still held
    assert pipeline.plan().steps[0].keys == []
    assert count_in_another_process(path) == 3
    assert pipeline.validate().rows_loaded == 0
    assert count_in_another_process(path) == 3


def test_duckdb_file_opens_with_duckdb_connect_in_the_same_process(
    tmp_path: Path, lake: Path, event: Any
) -> None:
    path = tmp_path / "warehouse.duckdb"
    pipeline = Pipeline(f"duckdb:///{path}", store=lake).copy(event, "events")
    pipeline.run()
    assert count_in_this_process(path) == 3
    pipeline.plan()
    pipeline.validate()
    assert count_in_this_process(path) == 3
    # and back: the pipeline opens the file again once the raw connection is closed
    (lake / "events/b.json").write_text('{"id": "b1"}\n')
    assert pipeline.run().rows_loaded == 1
    assert count_in_this_process(path) == 4


def test_sorted_sources_cursor_lets_go_of_the_duckdb_file(tmp_path: Path, lake: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    (lake / "events/2026-11-25").mkdir()
    sources = SortedSources(lake, "events", warehouse=f"duckdb:///{path}")
    sources.commit("2026-11-25")
    with duckdb.connect(str(path)) as con:  # the cursor's engine holds no connection
        assert con.execute("SELECT count(*) FROM _arbalest_cursors").fetchone() == (1,)
    assert sources.committed() == "2026-11-25"
    assert count_in_another_process(path, "_arbalest_cursors") == 1


def test_postgres_pipeline_holds_no_connection_after_a_verb(
    postgres_url: str, postgres_server: sa.Engine, lake: Path, event: Any
) -> None:
    tag = f"arbalest_{uuid.uuid4().hex[:12]}"
    url = sa.make_url(postgres_url).update_query_dict({"application_name": tag})
    pipeline = Pipeline(url, store=lake).copy(event, "events")

    def open_connections() -> int:
        # a server process ends a moment after its client closed the connection: give it
        # that moment (a connection kept open stays counted however long we wait)
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :tag"
        for _ in range(100):
            with postgres_server.connect() as conn:
                count = int(conn.execute(sa.text(query), {"tag": tag}).scalar_one())
            if count == 0:
                break
            time.sleep(0.05)
        return count

    assert pipeline.run().rows_loaded == 3
    assert open_connections() == 0
    pipeline.plan()
    pipeline.validate()
    assert open_connections() == 0
