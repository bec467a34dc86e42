"""``arbalest drift FILE[:NAME]``: the installed script, run in a subprocess.

A folder lake whose producer renamed a key, added keys and nested objects; the report on
stdout (text and ``--json``), progress on stderr, ``--sample``, ``--store``, ``-q``, an empty
source, a bad ``FILE:NAME``. The read-only guarantee is in ``test_read_only.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import Pipeline
from tests.integration.test_cli_end_to_end import arbalest, environment, timeless

MODULE = """\
import sqlalchemy as sa

from arbalest import Integer, Nested, Pipeline, Schema, String, Timestamp


class Base(Schema):
    __abstract__ = True
    metadata = sa.MetaData()


class Event(Base):
    __tablename__ = "events"
    id = String(36, primary_key=True)
    n = Integer()
    created_at = Timestamp(key="createdAt")
    referrer = String(100, key="ref")

    class child(Nested):
        name = String(20)

        class depth(Nested):
            level = Integer()


pipeline = (
    Pipeline({warehouse!r}, store={store!r})
    .copy(Event, {source!r}, max_errors=10)
    .sql("CREATE TABLE IF NOT EXISTS checked (c INTEGER)")
)
"""

#: Objects in key order: the producer renamed createdAt to created_at after a.json, added
#: colour and child.age, an object (extra) and a key under child.depth.
OBJECTS: dict[str, list[dict[str, Any]]] = {
    "events/a.json": [
        {"id": "a1", "n": 1, "createdAt": "2024-01-01 00:00:00", "child": {"name": "x"}},
        {"id": "a2", "n": 2, "createdAt": "2024-01-01 00:00:01", "child": {"name": "y"}},
    ],
    "events/b.json": [
        {"id": "b1", "n": 3, "created_at": "2024-01-02 00:00:00", "colour": "red"},
        {"id": "b2", "n": "x", "created_at": "2024-01-02 00:00:01"},  # rejected
        {
            "id": "b3",
            "n": 4,
            "created_at": "2024-01-02 00:00:02",
            "child": {"name": "z", "age": 3, "depth": {"level": 1, "z": 0}},
            "extra": {"deep": {"er": 1}},
        },
    ],
    "events/c.json": [
        {"id": "c1", "n": 5, "created_at": "2024-01-03 00:00:00", "colour": "blue"},
        {"id": "c2", "n": 6, "created_at": "2024-01-03 00:00:01", "colour": None},
    ],
}

REPORT = """\
copy events (incremental): 6 record(s) from 3 of 3 object(s) under 'events/', 1 rejected
  unmapped  created_at     4 record(s)  67%
  unmapped  colour         3 record(s)  50%
  unmapped  child.age      1 record(s)  17%
  unmapped  child.depth.z  1 record(s)  17%
  unmapped  extra          1 record(s)  17%
  unfilled  referrer
  warning: no record had the key 'ref'
  rejected: events/b.json:2 column n: Invalid digit (type INTEGER) value 'x' [1207]
"""


class Project:
    """A pipeline module and its lake in ``root``; calling it runs the script there."""

    def __init__(self, root: Path, warehouse: str, source: str = "events") -> None:
        self.root = root
        self.lake = root / "lake"
        self.jobs = root / "jobs.py"
        self.jobs.write_text(
            MODULE.format(warehouse=warehouse, store=str(self.lake), source=source)
        )
        for key, records in OBJECTS.items():
            path = self.lake / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r) + "\n" for r in records))

    def __call__(self, *args: str) -> Any:
        return arbalest(*args, cwd=self.root, env=environment())

    def loaded(self, warehouse: str) -> dict[str, Any]:
        """What ``run()`` reports of the same steps in ``warehouse``, as a dict."""
        module: dict[str, Any] = {}
        exec(self.jobs.read_text(), module)
        with module["pipeline"].using(warehouse=warehouse) as pipeline:
            assert isinstance(pipeline, Pipeline)
            return pipeline.run().to_dict()


def document(stdout: str) -> dict[str, Any]:
    assert stdout.count("\n") == 1, stdout
    parsed = json.loads(stdout)
    assert isinstance(parsed, dict)
    return parsed


@pytest.mark.duckdb
def test_drift_prints_each_steps_report_as_a_load_would_find_it(tmp_path: Path) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    done = project("drift", "jobs.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout == REPORT
    assert timeless(done.stderr) == (
        "copy events (incremental): sampled 3 object(s), 6 record(s), 1 rejected, T s\n"
    )
    # what a load of the same objects reports, in another warehouse
    ran = project.loaded(f"duckdb:///{tmp_path / 'twin.duckdb'}")["steps"][0]
    asked = document(project("drift", "jobs.py", "--json").stdout)["steps"][0]
    assert asked["drift"] == ran["drift"]
    assert asked["warnings"] == ran["warnings"]
    assert (asked["rows_sampled"], asked["rejects"]) == (ran["rows_loaded"], ran["rejects"])


@pytest.mark.duckdb
def test_drift_json_is_one_documented_document(tmp_path: Path) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    done = project("drift", "jobs.py", "--json")
    assert done.returncode == 0, done.stderr
    found = document(done.stdout)
    assert isinstance(found["steps"][0].pop("seconds"), float)
    share = 1 / 6
    assert found == {
        "format": 1,
        "command": "drift",
        "sample": 1000,
        "steps": [
            {
                "label": "copy events (incremental)",
                "target": "events",
                "source": "events/",
                "objects_listed": 3,
                "objects_sampled": ["events/a.json", "events/b.json", "events/c.json"],
                "rows_sampled": 6,
                "rows_rejected": 1,
                "warnings": ["no record had the key 'ref'"],
                "drift": {
                    "unmapped": [
                        {"path": "created_at", "records": 4, "share": 4 / 6},
                        {"path": "colour", "records": 3, "share": 0.5},
                        {"path": "child.age", "records": 1, "share": share},
                        {"path": "child.depth.z", "records": 1, "share": share},
                        {"path": "extra", "records": 1, "share": share},
                    ],
                    "unfilled": ["referrer"],
                },
                "rejects": [
                    {
                        "key": "events/b.json",
                        "line": 2,
                        "column": "n",
                        "value": "x",
                        "reason": "Invalid digit (type INTEGER)",
                        "code": 1207,
                    }
                ],
            }
        ],
    }


@pytest.mark.duckdb
def test_drift_sample_reads_that_many_records_spread_over_the_objects(tmp_path: Path) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    done = project("drift", "jobs.py", "--sample", "3", "--json")
    assert done.returncode == 0, done.stderr
    (step,) = document(done.stdout)["steps"]
    # one record of each object: a1, b1, c1
    assert document(done.stdout)["sample"] == 3
    assert step["objects_sampled"] == ["events/a.json", "events/b.json", "events/c.json"]
    assert (step["rows_sampled"], step["rows_rejected"]) == (3, 0)
    assert step["drift"] == {
        "unmapped": [
            {"path": "colour", "records": 2, "share": 2 / 3},
            {"path": "created_at", "records": 2, "share": 2 / 3},
        ],
        "unfilled": ["referrer", "child_depth_level"],
    }
    text = project("drift", "jobs.py", "--sample", "1")
    assert text.stdout.splitlines()[0] == (
        "copy events (incremental): 1 record(s) from 1 of 3 object(s) under 'events/', 0 rejected"
    )
    bad = project("drift", "jobs.py", "--sample", "0")
    assert bad.returncode == 2
    assert "0 is not in the range x>=1" in bad.stderr


@pytest.mark.duckdb
def test_drift_store_option_and_quiet(tmp_path: Path) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    other = tmp_path / "other"
    (other / "events").mkdir(parents=True)
    (other / "events" / "z.json").write_text('{"id": "z", "n": 1, "new": true}\n')
    done = project("drift", "jobs.py", "--store", str(other), "-q")
    assert done.returncode == 0
    assert done.stderr == ""
    assert done.stdout.splitlines()[:2] == [
        "copy events (incremental): 1 record(s) from 1 of 1 object(s) under 'events/', 0 rejected",
        "  unmapped  new  1 record(s)  100%",
    ]


@pytest.mark.duckdb
def test_drift_of_an_empty_source_says_so(tmp_path: Path) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}", source="evnts")
    done = project("drift", "jobs.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "copy events (incremental): 0 record(s) from 0 of 0 object(s) under 'evnts/', "
        "0 rejected\n"
        "  warning: nothing under 'evnts/'; did you mean 'events/'?\n"
    )
    (step,) = document(project("drift", "jobs.py", "--json").stdout)["steps"]
    assert (step["objects_listed"], step["objects_sampled"], step["rows_sampled"]) == (0, [], 0)
    assert step["drift"] == {"unmapped": [], "unfilled": []}
    assert step["warnings"] == ["nothing under 'evnts/'; did you mean 'events/'?"]


@pytest.mark.duckdb
def test_drift_of_a_name_that_is_not_there_is_bad_usage(tmp_path: Path) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    done = project("drift", "jobs.py:pipelin")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "error: jobs.py has no 'pipelin'; did you mean 'pipeline'? (pipelines: pipeline)\n"
    )
    failed = project("drift", "jobs.py:pipelin", "--json")
    assert failed.returncode == 2
    assert document(failed.stdout) == {
        "format": 1,
        "command": "drift",
        "error": {
            "message": "jobs.py has no 'pipelin'; did you mean 'pipeline'? (pipelines: pipeline)",
            "step": None,
            "retryable": False,
            "exit_code": 2,
        },
    }
    missing = project("drift", "nothere.py")
    assert missing.returncode == 2
    assert missing.stderr == "error: no Python file 'nothere.py'\n"


@pytest.mark.postgres
def test_drift_on_postgresql_reports_what_its_load_reports(
    tmp_path: Path, postgres_url: str
) -> None:
    project = Project(tmp_path, postgres_url)
    done = project("drift", "jobs.py", "--json")
    assert done.returncode == 0, done.stderr
    (asked,) = document(done.stdout)["steps"]
    ran = project.loaded(postgres_url)["steps"][0]
    assert asked["drift"] == ran["drift"]
    assert (asked["rows_sampled"], asked["rejects"]) == (ran["rows_loaded"], ran["rejects"])
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM events")).scalar() == 6
    finally:
        engine.dispose()
