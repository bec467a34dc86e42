"""Mistakes as the installed ``arbalest`` script shows them, one line each: a schema mistake
at the file and line of the field, a duplicate primary key at the object and line of the
record (the same words on DuckDB and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cli import arbalest
from tests.fixtures.lakes import put
from tests.integration.test_cli_end_to_end import MODULE


def test_a_schema_mistake_is_one_line_at_the_field(tmp_path: Path) -> None:
    module = MODULE.format(warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}", store=".", max_errors=0)
    (tmp_path / "jobs.py").write_text(module.replace("String(36, ", "String(36, nulable=False, "))
    line = 1 + module.splitlines().index("    id = String(36, primary_key=True)")
    done = arbalest("run", "jobs.py", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: jobs.py:{line}: SchemaError: Event.id: String() got an unexpected keyword "
        "argument 'nulable'; did you mean nullable=?\n"
    )
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("duckdb", marks=pytest.mark.duckdb),
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ],
)
def test_a_duplicate_key_is_one_line_at_the_record(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    url = (
        f"duckdb:///{tmp_path / 'w.duckdb'}"
        if kind == "duckdb"
        else request.getfixturevalue("postgres_url")
    )
    (tmp_path / "jobs.py").write_text(MODULE.format(warehouse=url, store="lake", max_errors=0))
    put(tmp_path / "lake", "events/a.json", [{"id": "a"}, {"id": "b"}, {"id": "a"}])
    done = arbalest("run", "-q", "jobs.py", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "error: step 'copy events (incremental)' failed: duplicate primary key (id)=('a'): "
        "events/a.json line 3 repeats the key of events/a.json line 1; "
        'mode="merge" keeps the newest record of each key\n'
    )
