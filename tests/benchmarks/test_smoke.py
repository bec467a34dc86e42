"""The benchmark runner still works end to end (N = 10,000). Nothing here is about speed:
the runner's own checks (every load reproduces the data set's aggregates) must pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from benchmarks.methods import METHODS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.slow
def test_every_benchmark_method_runs_and_checks_its_rows(
    tmp_path: Path, postgres_server: sa.Engine
) -> None:
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "-n",
            "10000",
            "--files",
            "10",
            "--data",
            str(tmp_path / "data"),
            "--journal-keys",
            "20000",
            "--new-objects",
            "100",
            "--listing-objects",
            "3000",
            "--output",
            str(output),
            "--postgres-url",
            postgres_server.url.render_as_string(hide_password=False),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = output.read_text()
    table = [line for line in report.splitlines() if line.startswith("| ")][1:]
    methods = {line.split(" | ")[0].removeprefix("| ") for line in table}
    assert len(methods) == len(table)
    loads = [
        f"arbalest {w} {s} {m}"
        for w in ("postgresql", "duckdb")
        for s in ("folder", "s3")
        for m in ("incremental", "replace", "rerun")
    ]
    expected = {
        "floor postgresql COPY csv",
        "floor duckdb read_json",
        "dlt postgresql",
        "dlt duckdb",
        "s3 listing 3,000 objects",
        "plan postgresql journal=20,000 new=100",
        "plan duckdb journal=20,000 new=100",
    }
    assert methods == set(loads) | expected
    assert all(line.rstrip(" |").split(" | ")[-1].startswith("yes") for line in table), report
    assert "DuckDB and PostgreSQL loads hold the same rows (fingerprint): **met**" in report
    assert len(METHODS) == 11  # a new method needs a row above
