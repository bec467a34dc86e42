"""The quick start runs as the README says, and leaves what it says in the warehouse."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).parents[2]


def run(folder: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quickstart_loads_the_sample_lake_then_finds_nothing_new(tmp_path: Path) -> None:
    first = run(tmp_path)
    assert re.search(r"copy events \(incremental\)\s+8\s+19,998\s+3\s", first)
    assert "rejected: events/2026-11-25/part-003.ndjson.gz:11 column some_number" in first
    assert "Record is not complete" in first
    assert "daily (from the SQL step)" in first
    second = run(tmp_path)
    assert re.search(r"copy events \(incremental\)\s+0\s+0\s+0\s", second)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (19_998,)
        assert con.execute("SELECT sum(events) FROM daily").fetchone() == (19_998,)
        (objects,) = con.execute("SELECT count(*) FROM _arbalest_journal").fetchone() or (0,)
        assert objects == 8
    finally:
        con.close()
