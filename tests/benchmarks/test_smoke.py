"""The benchmark runner still works end to end (N = 10,000, and the floors and loads at
N = 5,000 too). Nothing here is about speed: the runner's own checks (every load reproduces
the data set's aggregates) must pass."""

from __future__ import annotations

import subprocess
import sys
import uuid
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
    schema = f"bench_{uuid.uuid4().hex[:12]}"  # the runner drops it at the end
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "-n",
            "10000",
            "--sizes",
            "5000",
            "--rounds",
            "1",
            "--files",
            "10",
            "--data-root",
            str(tmp_path / "data"),
            "--postgres-schema",
            schema,
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
    main = report.split("### N = 10,000", 1)[1]
    table = _first_table(main)
    methods = {line.split(" | ")[0].removeprefix("| ") for line in table}
    assert len(methods) == len(table)
    loads = [
        f"arbalest {w} {s} {m}"
        for w in ("postgresql", "duckdb")
        for s in ("folder", "s3", "folder parquet", "folder csv")
        for m in ("incremental", "replace", "rerun")
    ]
    floors = {
        "floor postgresql COPY csv",
        "floor postgresql replace DELETE + COPY csv",
        "floor duckdb read_json",
        "floor postgresql COPY csv files",
        "floor duckdb read_parquet",
        "floor duckdb read_csv",
    }
    expected = {
        *floors,
        "dlt postgresql",
        "dlt duckdb",
        "s3 listing 3,000 objects",
        "plan postgresql journal=20,000 new=100",
        "plan duckdb journal=20,000 new=100",
    }
    assert methods == set(loads) | expected
    assert all(line.rstrip(" |").split(" | ")[-1].startswith("yes") for line in table), report
    smaller = _first_table(report.split("### N = 5,000", 1)[1])
    assert {line.split(" | ")[0].removeprefix("| ") for line in smaller} == set(loads) | floors
    assert all(line.rstrip(" |").split(" | ")[-1].startswith("yes") for line in smaller), report
    assert "### From N = 5,000 to N = 10,000" in report
    assert "hold the same rows (fingerprint, every round): N = 5,000, N = 10,000: **met**" in report
    formats = "Parquet, CSV and JSON loads hold the same rows (fingerprint, every round, both "
    assert formats + "warehouses): N = 5,000, N = 10,000: **met**" in report
    assert len(METHODS) == 18  # a new method needs a row above
    with postgres_server.connect() as conn:
        left = conn.exec_driver_sql(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE %s",
            (f"{schema}%",),
        ).scalar()
    assert left == 0


def _first_table(text: str) -> list[str]:
    """The body rows of the first Markdown table in ``text``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start + 2 : end]
