"""A loading process killed (SIGKILL) at many points: data and journal always agree, and a
final run loads every record exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from arbalest import journal

SCRIPT = Path(__file__).parent / "scripts" / "load_lake.py"
FOLDERS = ["a", "b", "c", "d"]
OBJECTS_PER_FOLDER = 10
RECORDS_PER_OBJECT = 1000


@dataclass
class Target:
    """Where the child process loads: its arguments, the parent's engine, and a writer."""

    args: list[str]
    engine: sa.Engine
    put: Callable[[str, bytes], None]


@pytest.fixture(
    params=[
        pytest.param("duckdb", marks=pytest.mark.duckdb),
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("redshift", marks=[pytest.mark.postgres, pytest.mark.s3]),
    ]
)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    lake = tmp_path / "lake"
    if request.param == "redshift":
        import boto3

        standin = request.getfixturevalue("redshift_standin")
        bucket = request.getfixturevalue("s3_bucket")
        url = standin.engine.url.render_as_string(hide_password=False)
        side = standin.side.url.render_as_string(hide_password=False)

        def put_s3(key: str, data: bytes) -> None:
            boto3.client("s3").put_object(Bucket=bucket, Key=f"lake/{key}", Body=data)

        return Target(["--redshift", side, url, f"s3://{bucket}/lake"], standin.engine, put_s3)
    engine = request.getfixturevalue(f"warehouse_{request.param}")

    def put_file(key: str, data: bytes) -> None:
        path = lake / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return Target([engine.url.render_as_string(hide_password=False), str(lake)], engine, put_file)


def make_lake(put: Callable[[str, bytes], None]) -> dict[str, set[str]]:
    """Objects of records with unique ids; returns the ids of each object's key."""
    ids: dict[str, set[str]] = {}
    for folder in FOLDERS:
        for number in range(OBJECTS_PER_FOLDER):
            key = f"{folder}/{number:03d}.json"
            records = [{"id": f"{folder}-{number}-{i}", "n": i} for i in range(RECORDS_PER_OBJECT)]
            put(key, "".join(json.dumps(r) + "\n" for r in records).encode())
            ids[key] = {str(r["id"]) for r in records}
    return ids


def start(args: list[str], mode: str = "incremental") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *args, mode, *FOLDERS],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )


def kill_after(process: subprocess.Popen[str], events: int, extra_delay: float) -> str:
    """Kill the process after it reported ``events`` loaded objects (and a delay)."""
    assert process.stdout is not None
    seen = 0
    while True:
        line = process.stdout.readline()
        if not line:
            return "finished before the kill"
        if line.startswith(("loaded", "running")):
            if line.startswith("loaded"):
                seen += 1
            if seen >= events:
                time.sleep(extra_delay)
                process.send_signal(signal.SIGKILL)
                process.wait()
                return f"killed after {seen} objects"


def check_agreement(engine: sa.Engine, ids: dict[str, set[str]]) -> set[str]:
    """Data and journal agree: the table holds exactly the records of journaled objects."""
    try:
        with engine.connect() as conn:
            keys: set[str] = set()
            if journal.table_exists(conn, journal.JOURNAL):
                keys = {k for (k,) in conn.execute(sa.select(journal.JOURNAL.c.key))}
            loaded: list[str] = []
            if journal.table_exists(conn, sa.Table("records", sa.MetaData())):
                loaded = [i for (i,) in conn.execute(sa.text("SELECT id FROM records"))]
    finally:
        engine.dispose()  # DuckDB: let the next process open the file
    duplicates = [i for i, c in Counter(loaded).items() if c > 1]
    assert not duplicates, f"records loaded twice: {duplicates[:5]}"
    expected = set().union(*(ids[k] for k in keys)) if keys else set()
    assert set(loaded) == expected
    return keys


def reset(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for name in ("records", "_arbalest_journal", "_arbalest_cursors"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()


def run_to_the_end(args: list[str]) -> float:
    started = time.monotonic()
    with start(args) as process:
        out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    assert out.rstrip().endswith("done")
    return time.monotonic() - started


@pytest.mark.slow
def test_killed_loads_leave_data_and_journal_agreeing(target: Target) -> None:
    ids = make_lake(target.put)
    warehouse = target.engine
    warehouse.dispose()
    whole = run_to_the_end(target.args)  # how long a whole load takes, to spread the kills
    reset(warehouse)
    rng = random.Random(20261125)
    # (objects reported loaded, then seconds) before the kill: right at the start, after
    # each step's objects are converted (before and around its commit), and at random times
    points = [(0, 0.0), (10, 0.0), (20, 0.0), (30, 0.0), (40, 0.0)]
    points += [(0, rng.random() * whole) for _ in range(4)]
    outcomes = []
    for events, delay in points:
        with start(target.args) as process:
            outcomes.append(kill_after(process, events, delay))
            process.communicate()
        done = check_agreement(warehouse, ids)
        run_to_the_end(target.args)
        assert check_agreement(warehouse, ids) == set(ids), (events, delay)
        with warehouse.connect() as conn:
            (count,) = conn.execute(sa.text("SELECT count(*) FROM records")).one()
        warehouse.dispose()
        assert count == len(FOLDERS) * OBJECTS_PER_FOLDER * RECORDS_PER_OBJECT
        outcomes[-1] += f" with {len(done)} object(s) committed"
        reset(warehouse)
    killed = [o for o in outcomes if o.startswith("killed")]
    assert len(killed) >= len(points) - 2, outcomes
    # kills landed before any commit, between commits and after the last one
    committed = {int(o.split(" with ")[1].split()[0]) for o in killed}
    assert len(committed) >= 3, outcomes
