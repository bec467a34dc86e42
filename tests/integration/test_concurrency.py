"""Runs at the same time: several processes (PostgreSQL) or threads (DuckDB, whose file one
process at a time may write) running the same incremental pipeline, and readers querying the
target while a ``replace`` swaps it. No record twice, no reader error, never a half table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import ConcurrentRunError, Pipeline, journal
from tests.fixtures.schemas import Record

SCRIPT = Path(__file__).parent / "scripts" / "load_lake.py"
ROOT = Path(__file__).parents[2]
FOLDERS = ["a", "b", "c"]
OBJECTS = 6
RECORDS = 2000


def make_lake(root: Path, n: int = 0) -> set[str]:
    ids = set()
    for folder in FOLDERS:
        for k in range(OBJECTS):
            rows = [{"id": f"{folder}-{k}-{i}", "n": n} for i in range(RECORDS)]
            path = root / folder / f"{k:03d}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            ids |= {str(r["id"]) for r in rows}
    return ids


def loaded(engine: sa.Engine) -> tuple[list[str], set[str]]:
    with engine.connect() as conn:
        ids = [str(i) for (i,) in conn.execute(sa.text("SELECT id FROM records"))]
        keys = {str(k) for (k,) in conn.execute(sa.select(journal.JOURNAL.c.key))}
    return ids, keys


def assert_each_record_once(engine: sa.Engine, ids: set[str]) -> None:
    rows, keys = loaded(engine)
    twice = [i for i, c in Counter(rows).items() if c > 1]
    assert not twice, f"records twice: {twice[:5]}"
    assert set(rows) == ids
    assert keys == {f"{f}/{k:03d}.json" for f in FOLDERS for k in range(OBJECTS)}


@pytest.mark.postgres
@pytest.mark.slow
def test_processes_running_the_same_pipeline_load_each_record_once(
    warehouse_postgresql: sa.Engine, tmp_path: Path
) -> None:
    ids = make_lake(tmp_path / "lake")
    url = warehouse_postgresql.url.render_as_string(hide_password=False)
    command = [sys.executable, str(SCRIPT), url, str(tmp_path / "lake"), "incremental"]
    processes = [
        subprocess.Popen(
            [*command, *FOLDERS],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    assert_each_record_once(warehouse_postgresql, ids)
    # the work was shared out by the lock, not done three times
    loads = [line for out in outputs for line in out.splitlines() if line.startswith("loaded")]
    assert len(loads) == len(FOLDERS) * OBJECTS


@pytest.mark.duckdb
def test_threads_running_the_same_pipeline_load_each_record_once(
    warehouse_duckdb: sa.Engine, tmp_path: Path
) -> None:
    ids = make_lake(tmp_path / "lake")
    errors: list[BaseException] = []

    def load() -> None:
        try:
            pipeline = Pipeline(warehouse_duckdb, store=tmp_path / "lake")
            for folder in FOLDERS:
                pipeline = pipeline.copy(Record, folder)
            pipeline.run()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors
    assert_each_record_once(warehouse_duckdb, ids)


HOLDER = (
    "import sys, time, duckdb\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
    "con.close()\n"
    "print('released', flush=True)\n"
)


def hold_file(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens the DuckDB file, holds it ``seconds``, then lets go."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.duckdb
def test_a_run_waits_for_another_process_to_let_go_of_the_duckdb_file(
    tmp_path: Path,
) -> None:
    ids = make_lake(tmp_path / "lake")
    path = tmp_path / "warehouse.duckdb"
    holder = hold_file(path, 2)
    try:
        # another spelling of the same file
        pipeline = Pipeline(
            f"duckdb:///{tmp_path}/./warehouse.duckdb", store=tmp_path / "lake", lock_timeout=60
        )
        for folder in FOLDERS:
            pipeline = pipeline.copy(Record, folder)
        started = time.monotonic()
        pipeline.run()
        waited = time.monotonic() - started
    finally:
        holder.communicate(timeout=60)
    assert holder.returncode == 0
    assert waited >= 1.0  # it waited for the other process, not failed at once
    pipeline.engine.dispose()
    engine = sa.create_engine(f"duckdb:///{path}")
    assert_each_record_once(engine, ids)
    engine.dispose()


@pytest.mark.duckdb
def test_a_run_on_a_duckdb_file_another_process_keeps_fails_after_lock_timeout(
    tmp_path: Path,
) -> None:
    make_lake(tmp_path / "lake")
    path = tmp_path / "warehouse.duckdb"
    holder = hold_file(path, 60)
    try:
        pipeline = Pipeline(f"duckdb:///{path}", store=tmp_path / "lake", lock_timeout=1.5).copy(
            Record, "a"
        )
        started = time.monotonic()
        with pytest.raises(ConcurrentRunError) as caught:
            pipeline.run()
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.communicate(timeout=60)
    assert 1.5 <= waited < 10
    error = caught.value
    assert error.retryable
    assert str(path) in str(error)
    assert "lock_timeout" in str(error)
    assert f"process {holder.pid}" in str(error)


def watch(engine: sa.Engine, stop: threading.Event) -> tuple[Counter[tuple[int, int]], list[Any]]:
    """Poll the target's (row count, sum of n) until ``stop``; what was seen, and errors."""
    seen: Counter[tuple[int, int]] = Counter()
    errors: list[Any] = []
    while not stop.is_set():
        try:
            with engine.connect() as conn:
                count, total = conn.execute(
                    sa.text("SELECT count(*), coalesce(sum(n), 0) FROM records")
                ).one()
            seen[(int(count), int(total))] += 1
        except sa.exc.DBAPIError as exc:
            errors.append(exc)
        time.sleep(0.005)
    return seen, errors


@pytest.mark.slow
def test_readers_see_the_old_or_the_new_table_during_a_replace(
    warehouse: sa.Engine, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    ids = make_lake(lake / "events", n=1)
    pipeline = Pipeline(warehouse, store=lake).copy(Record, "events", mode="replace")
    pipeline.run()
    stop = threading.Event()
    result: list[tuple[Counter[tuple[int, int]], list[Any]]] = []
    reader = threading.Thread(target=lambda: result.append(watch(warehouse, stop)))
    reader.start()
    try:
        for n in (2, 3, 4):
            make_lake(lake / "events", n=n)
            pipeline.run()
    finally:
        stop.set()
        reader.join()
    seen, errors = result[0]
    assert not errors
    assert sum(seen.values()) > 10  # the reader really read during the replaces
    # every state seen is a whole table: all rows at one n, never a partial or empty one
    assert set(seen) <= {(len(ids), len(ids) * n) for n in (1, 2, 3, 4)}, seen


@pytest.mark.duckdb
def test_a_duckdb_file_is_free_for_other_processes_once_a_run_returns(tmp_path: Path) -> None:
    make_lake(tmp_path / "lake")
    path = tmp_path / "warehouse.duckdb"
    opener = [sys.executable, "-c", "import sys, duckdb; duckdb.connect(sys.argv[1]).close()"]
    with Pipeline(f"duckdb:///{path}", store=tmp_path / "lake") as pipeline:
        for verb in (pipeline.copy(Record, "a").run, pipeline.copy(Record, "b").validate):
            verb()
            done = subprocess.run([*opener, str(path)], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-1000:]
        for other in (pipeline.copy(Record, "b"), pipeline.using(store=tmp_path).copy(Record, "")):
            other.plan()
            done = subprocess.run([*opener, str(path)], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-1000:]
    # an engine the caller passed is the caller's: never disposed
    engine = sa.create_engine(f"duckdb:///{path}")
    with engine.connect() as conn:
        Pipeline(engine, store=tmp_path / "lake").copy(Record, "c").run()
        assert (
            conn.execute(sa.text("SELECT count(*) FROM records")).scalar() == 2 * OBJECTS * RECORDS
        )
    engine.dispose()
