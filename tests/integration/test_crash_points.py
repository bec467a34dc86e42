"""A pipeline process killed (SIGKILL) at every boundary of a run, on PostgreSQL and DuckDB.

Each case: a first run loads half the lake (state A); more objects arrive; a second run is
killed at the named point (``scripts/crash_at.py`` kills itself there, so the point is exact,
not a race); the warehouse is checked as the crash left it; a third run completes, and the
warehouse is checked again. The invariants: every record exactly once, the journal equal to
the objects whose rows are in the table, no staging table left, a replace's target either all
old or all new, a time series' rows matching its cursor, a SQL step all or nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from arbalest import journal

SCRIPT = Path(__file__).parent / "scripts" / "crash_at.py"
ROOT = Path(__file__).parents[2]
OBJECTS = 8  # under events/: the first half before the crash run, the rest after
RECORDS = 150
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
SERIES_OBJECTS = 2
SERIES_RECORDS = 100

CASES = {
    "incremental": [
        "after-listing",
        "mid-read",
        "mid-copy",
        "before-journal",
        "before-commit",
        "after-commit",
        "sql-step",
    ],
    "replace": ["replace-swap", "mid-copy", "before-commit"],
    "merge": ["merge-upsert", "mid-copy", "before-journal"],
    "time-series": ["time-series-partition", "time-series-cursor", "after-commit"],
    # an incremental copy of Parquet objects, cut at row groups, a batch per chunk
    "parquet": ["mid-copy", "before-journal", "before-commit"],
}
EXPECTED_TABLES = {"records", "totals", "_arbalest_journal", "_arbalest_cursors"}

Rows = dict[str, int]  # id -> n


@dataclass
class Lake:
    """The objects written so far and the rows each holds, in load order."""

    root: Path
    objects: dict[str, Rows]

    def write(self, key: str, rows: Rows, t: str = "2026-01-01T00:00:00") -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if key.endswith(".parquet"):
            when = dt.datetime.fromisoformat(t)
            table = pa.table(
                {
                    "id": list(rows),
                    "n": pa.array(list(rows.values()), pa.int32()),
                    "t": pa.array([when] * len(rows), pa.timestamp("us")),
                }
            )
            pq.write_table(table, path, row_group_size=50)
        else:
            lines = [json.dumps({"id": i, "n": n, "t": t}) for i, n in rows.items()]
            path.write_text("\n".join(lines) + "\n")
        stamp = 1_700_000_000 + len(self.objects)  # merge orders objects by modification
        os.utime(path, (stamp, stamp))
        self.objects[key] = rows


def events(lake: Lake, first: int, last: int, scenario: str) -> None:
    for k in range(first, last):
        rows = {f"e-{k}-{i}": i for i in range(RECORDS)}
        if scenario == "merge" and k >= OBJECTS // 2:
            # later objects also carry new versions of earlier objects' records
            rows |= {f"e-{k - OBJECTS // 2}-{i}": 1000 * k + i for i in range(0, RECORDS, 3)}
        suffix = "parquet" if scenario == "parquet" else "json"
        lake.write(f"events/{k:03d}.{suffix}", rows)


def series(lake: Lake, days: list[str]) -> None:
    for day in days:
        for k in range(SERIES_OBJECTS):
            rows = {f"{day}-{k}-{i}": i for i in range(SERIES_RECORDS)}
            lake.write(f"series/{day}/part-{k}.json", rows, t=f"{day}T{k:02d}:00:00")


def run(
    url: str, lake: Lake, scenario: str, point: str = "none"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), url, str(lake.root), scenario, point],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def expected_rows(lake: Lake, keys: set[str]) -> Rows:
    """The table's rows once ``keys`` are loaded: each object's rows, later objects winning."""
    rows: Rows = {}
    for key, content in lake.objects.items():  # in the order they were written (= load order)
        if key in keys:
            rows |= content
    return rows


@dataclass
class Snapshot:
    rows: list[tuple[str, int]]
    journal: set[str]
    tables: set[str]
    cursor: str | None
    totals: list[int]

    @property
    def by_id(self) -> Rows:
        return dict(self.rows)


def snapshot(engine: sa.Engine) -> Snapshot:
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            rows = [(str(i), int(n)) for i, n in conn.execute(sa.text("SELECT id, n FROM records"))]
            keys = {str(k) for (k,) in conn.execute(sa.select(journal.JOURNAL.c.key))}
            cursor = None
            if "_arbalest_cursors" in tables:
                cursor = conn.execute(sa.select(journal.CURSORS.c.point)).scalar()
            totals = []
            if "totals" in tables:
                totals = [int(n) for (n,) in conn.execute(sa.text("SELECT n FROM totals"))]
    finally:
        engine.dispose()  # DuckDB: let the next process open the file
    return Snapshot(rows, keys, tables, cursor, totals)


def check(lake: Lake, state: Snapshot, scenario: str, before: Snapshot | None) -> None:
    """The invariants that hold at every instant, crash or not."""
    assert state.tables <= EXPECTED_TABLES, f"left behind: {state.tables - EXPECTED_TABLES}"
    twice = [i for i, c in Counter(i for i, _ in state.rows).items() if c > 1]
    assert not twice, f"records twice: {twice[:5]}"
    assert state.journal <= set(lake.objects)
    if scenario == "replace" and before is not None:
        # all old or all new: never a half-replaced table
        assert state.by_id in (before.by_id, expected_rows(lake, set(lake.objects)))
    elif scenario == "time-series":
        days = [d for d in DAYS if state.cursor is not None and f"series/{d}" <= state.cursor]
        keys = {k for k in lake.objects if any(k.startswith(f"series/{d}/") for d in days)}
        assert state.journal == keys
        assert state.by_id == expected_rows(lake, keys)
    else:
        assert state.by_id == expected_rows(lake, state.journal)
    if scenario == "incremental" and before is not None:
        # the SQL step ran after state A; a crash never leaves it half done
        assert state.totals in (before.totals, [len(state.rows)])


@pytest.fixture(
    params=[
        pytest.param("duckdb", marks=pytest.mark.duckdb),
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def warehouse_url(request: pytest.FixtureRequest) -> tuple[str, sa.Engine]:
    engine: sa.Engine = request.getfixturevalue(f"warehouse_{request.param}")
    return engine.url.render_as_string(hide_password=False), engine


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "point"),
    [(scenario, point) for scenario, points in CASES.items() for point in points],
)
def test_a_run_killed_at_a_boundary_loses_and_doubles_nothing(
    warehouse_url: tuple[str, sa.Engine], tmp_path: Path, scenario: str, point: str
) -> None:
    url, engine = warehouse_url
    lake = Lake(tmp_path / "lake", {})
    if scenario == "time-series":
        series(lake, DAYS[:2])
    else:
        events(lake, 0, OBJECTS // 2, scenario)
    first = run(url, lake, scenario)
    assert first.returncode == 0, first.stderr
    before = snapshot(engine)
    check(lake, before, scenario, None)
    assert before.journal == set(lake.objects)

    if scenario == "time-series":
        series(lake, DAYS[2:])
    else:
        events(lake, OBJECTS // 2, OBJECTS, scenario)
    crashed = run(url, lake, scenario, point)
    assert crashed.returncode == -9, f"{point} was never reached: {crashed.stderr[-2000:]}"
    at_crash = snapshot(engine)
    check(lake, at_crash, scenario, before)

    final = run(url, lake, scenario)
    assert final.returncode == 0, final.stderr
    after = snapshot(engine)
    check(lake, after, scenario, before)
    assert after.journal == set(lake.objects)
    assert after.by_id == expected_rows(lake, set(lake.objects))
    if scenario == "incremental":
        assert after.totals == [len(after.rows)]
    if scenario == "time-series":
        assert after.cursor == f"series/{DAYS[-1]}"


def test_every_crash_point_is_exercised() -> None:
    from tests.integration.scripts.crash_at import POINTS

    used = {point for points in CASES.values() for point in points}
    assert used == set(POINTS)
