"""``arbalest run|plan|status --json``: one JSON document on stdout, as docs/cli.md shows it.

The installed script runs in a subprocess against DuckDB, as a scheduler would run it; its
stdout must parse, carry the documented keys, and say what the Python API says
(``RunResult.to_dict()``, ``Plan.to_dict()``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from arbalest import Pipeline
from tests.fixtures.lakes import put
from tests.integration.test_cli_end_to_end import Project, duckdb_engine

RUN_KEYS = {"format", "command", "validated", "rows_loaded", "rows_rejected", "seconds", "steps"}
RUN_STEP_KEYS = {
    "label",
    "target",
    "objects_loaded",
    "rows_loaded",
    "rows_rejected",
    "seconds",
    "objects_changed",
    "warnings",
    "drift",
    "rejects",
}
DRIFT_KEYS = {"unmapped", "unfilled"}
REJECT_KEYS = {"key", "line", "column", "value", "reason", "code"}
PLAN_KEYS = {"format", "command", "objects_to_load", "steps"}
PLAN_STEP_KEYS = {
    "label",
    "target",
    "ddl",
    "objects_to_load",
    "keys",
    "sql",
    "objects_changed",
    "changes",
    "alter",
    "alter_outside_transaction",
    "refused",
}
STATUS_KEYS = {"format", "command", "targets"}
TARGET_KEYS = {"target", "objects", "rows_loaded", "rows_rejected", "last_loaded_at"}


def document(done: Any) -> dict[str, Any]:
    """stdout holds exactly one JSON document, on one line."""
    assert done.stdout.count("\n") == 1, done.stdout
    parsed = json.loads(done.stdout)
    assert isinstance(parsed, dict)
    return parsed


def timeless(value: Any) -> Any:
    """A document without its durations (they differ from one run to the next)."""
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def lake(project: Project) -> None:
    put(project.lake, "events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    put(project.lake, "events/b.json", [{"id": "b1", "n": 2}])


@pytest.mark.duckdb
def test_plan_run_and_status_print_the_documented_json(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    project = Project(tmp_path, f"duckdb:///{path}", max_errors=1)
    lake(project)
    with duckdb_engine(path).connect():
        pass  # an empty database file: read-only commands need one

    plan = project("plan", "jobs.py", "--json")
    assert plan.returncode == 0, plan.stderr
    planned = document(plan)
    assert set(planned) == PLAN_KEYS
    assert (planned["format"], planned["command"], planned["objects_to_load"]) == (1, "plan", 2)
    assert [set(s) for s in planned["steps"]] == [PLAN_STEP_KEYS, PLAN_STEP_KEYS]
    copy = planned["steps"][0]
    assert copy["keys"] == ["events/a.json", "events/b.json"]
    assert copy["target"] == "events"
    assert copy["ddl"][0].startswith("CREATE TABLE events")
    assert planned["steps"][1]["sql"] == ["CREATE TABLE IF NOT EXISTS checked (c INTEGER)"]

    before = project("status", "jobs.py", "--json")
    assert before.returncode == 0, before.stderr
    assert document(before) == {
        "format": 1,
        "command": "status",
        "targets": [
            {
                "target": "events",
                "objects": 0,
                "rows_loaded": 0,
                "rows_rejected": 0,
                "last_loaded_at": None,
            }
        ],
    }

    # the API's own result of the same load, in another warehouse
    twin = tmp_path / "twin.duckdb"
    module: dict[str, Any] = {}
    exec(project.jobs.read_text(), module)  # the same steps, on the twin warehouse
    pipeline: Pipeline = module["pipeline"].using(warehouse=f"duckdb:///{twin}")
    with pipeline:
        expected_plan = pipeline.plan().to_dict()
        expected = pipeline.run().to_dict()
    assert planned == expected_plan

    validated = project("validate", "jobs.py", "--json")
    assert validated.returncode == 0, validated.stderr
    checked = document(validated)
    assert set(checked) == RUN_KEYS
    assert (checked["command"], checked["validated"], checked["rows_loaded"]) == (
        "validate",
        True,
        2,
    )

    run = project("run", "jobs.py", "--json")
    assert run.returncode == 0, run.stderr
    ran = document(run)
    assert set(ran) == RUN_KEYS
    assert [set(s) for s in ran["steps"]] == [RUN_STEP_KEYS, RUN_STEP_KEYS]
    assert set(ran["steps"][0]["rejects"][0]) == REJECT_KEYS
    assert set(ran["steps"][0]["drift"]) == DRIFT_KEYS
    assert (ran["format"], ran["command"], ran["validated"]) == (1, "run", False)
    assert (ran["rows_loaded"], ran["rows_rejected"]) == (2, 1)
    assert ran["steps"][0]["rejects"][0] == {
        "key": "events/a.json",
        "line": 2,
        "column": "n",
        "value": "x",
        "reason": ran["steps"][0]["rejects"][0]["reason"],
        "code": ran["steps"][0]["rejects"][0]["code"],
    }
    assert isinstance(ran["seconds"], float)
    assert timeless(ran) == timeless(expected)
    # the human summary still goes to stderr, never mixed into the document
    assert "total" in run.stderr

    after = document(project("status", "jobs.py", "--json"))
    assert set(after) == STATUS_KEYS
    (target,) = after["targets"]
    assert set(target) == TARGET_KEYS
    assert (target["objects"], target["rows_loaded"], target["rows_rejected"]) == (2, 2, 1)
    assert isinstance(target["last_loaded_at"], str)

    quiet = project("-q", "run", "jobs.py", "--json")
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert document(quiet)["rows_loaded"] == 0  # everything is in the journal already


@pytest.mark.duckdb
def test_a_failed_run_still_prints_a_json_document(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    project = Project(tmp_path, f"duckdb:///{path}", max_errors=0)
    put(project.lake, "events/z.json", [{"id": "z1", "n": 2}, {"n": 3}])
    run = project("run", "jobs.py", "--json")
    assert run.returncode == 1
    failed = document(run)
    assert set(failed) == {"format", "command", "error"}
    assert (failed["format"], failed["command"]) == (1, "run")
    error = failed["error"]
    assert set(error) == {"message", "step", "retryable", "exit_code"}
    assert error["step"] == "copy events (incremental)"
    assert (error["retryable"], error["exit_code"]) == (False, 1)
    assert "max_errors=0" in error["message"]
    assert "\n" not in error["message"]


@pytest.mark.duckdb
def test_without_json_stdout_is_the_text_it_was(tmp_path: Path) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'w.duckdb'}")
    lake(project)
    with duckdb_engine(tmp_path / "w.duckdb").connect():
        pass
    plan = project("plan", "jobs.py")
    assert plan.returncode == 0
    assert plan.stdout.startswith("1. copy events (incremental)")
