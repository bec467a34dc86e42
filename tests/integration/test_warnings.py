"""Mistakes that load nothing say so: ``StepResult.warnings``, the log, the command's summary.

A source with no objects under it names the nearest existing prefixes; a column NULL in every
row of a load that loaded rows names the near-miss keys seen in the records.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import Integer, Pipeline, Schema, String
from tests.fixtures.cli import arbalest, environment
from tests.integration.test_cli_json import document


def put(root: Path, key: str, records: list[dict[str, Any]], *, compress: bool = False) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture
def event(base: type[Schema]) -> type[Schema]:
    class Event(base):  # type: ignore[valid-type,misc]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        created_at = String(40, key="createdAt")
        n = Integer()

    return Event


def test_a_misspelt_source_names_the_prefix_it_was_meant_to_be(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema], caplog: pytest.LogCaptureFixture
) -> None:
    put(tmp_path, "events/a.json", [{"id": "a", "createdAt": "x", "n": 1}])
    put(tmp_path, "other/b.json", [{"id": "b"}])
    with caplog.at_level(logging.WARNING, logger="arbalest"):
        result = Pipeline(warehouse, store=tmp_path).copy(event, "evnts").run()
    step = result.steps[0]
    assert step.rows_loaded == 0
    assert step.warnings == ["nothing under 'evnts/'; did you mean 'events/'?"]
    assert "nothing under 'evnts/'; did you mean 'events/'?" in caplog.text
    assert result.to_dict()["steps"][0]["warnings"] == step.warnings


def test_a_misspelt_folder_deeper_down_keeps_the_rest_of_the_path(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    put(tmp_path, "lake/events/2024/a.json", [{"id": "a", "createdAt": "x", "n": 1}])
    result = Pipeline(warehouse, store=tmp_path).copy(event, "lake/evnts/2024").run()
    assert result.steps[0].warnings == [
        "nothing under 'lake/evnts/2024/'; did you mean 'lake/events/2024/'?"
    ]


def test_a_source_far_from_every_prefix_lists_those_there(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    put(tmp_path, "clicks/a.json", [{"id": "a"}])
    put(tmp_path, "views/a.json", [{"id": "a"}])
    result = Pipeline(warehouse, store=tmp_path).copy(event, "zzz").run()
    assert result.steps[0].warnings == ["nothing under 'zzz/'; there are 'clicks/', 'views/'"]


def test_a_source_already_loaded_is_no_mistake(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    put(tmp_path, "events/a.json", [{"id": "a", "createdAt": "x", "n": 1}])
    pipeline = Pipeline(warehouse, store=tmp_path).copy(event, "events")
    assert pipeline.run().steps[0].warnings == []
    again = pipeline.run().steps[0]
    assert (again.rows_loaded, again.warnings) == (0, [])


def test_a_key_no_record_has_names_the_keys_records_have(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema], caplog: pytest.LogCaptureFixture
) -> None:
    records = [{"id": f"a{i}", "created_at": "2024-01-01", "n": i} for i in range(50)]
    put(tmp_path, "events/a.json.gz", records, compress=True)
    with caplog.at_level(logging.WARNING, logger="arbalest"):
        result = Pipeline(warehouse, store=tmp_path).copy(event, "events").run()
    step = result.steps[0]
    assert step.rows_loaded == 50
    assert step.warnings == ["no record had the key 'createdAt'; records have 'created_at'"]
    assert "no record had the key 'createdAt'" in caplog.text


def test_a_nested_key_is_named_by_its_path(
    warehouse: sa.Engine, tmp_path: Path, base: type[Schema]
) -> None:
    class Push(base):  # type: ignore[valid-type,misc]
        __tablename__ = "pushes"
        id = String(36, primary_key=True)
        login = String(40, key="actor.logn")

    put(tmp_path, "pushes/a.json", [{"id": "a", "actor": {"login": "x", "id": 1}}])
    result = Pipeline(warehouse, store=tmp_path).copy(Push, "pushes").run()
    assert result.steps[0].warnings == [
        "no record had the key 'actor.logn'; records have 'actor.login'"
    ]


def test_a_key_the_records_hold_as_null_is_not_called_missing(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    put(
        tmp_path,
        "events/a.json",
        [{"id": "a", "createdAt": None, "n": 1}, {"id": "b", "createdAt": None, "n": None}],
    )
    result = Pipeline(warehouse, store=tmp_path).copy(event, "events").run()
    assert result.steps[0].warnings == [
        "column 'created_at' is NULL in every row: no record's 'createdAt' held a value it "
        "could load"
    ]


def test_a_load_of_no_rows_warns_of_no_column(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "empty.json").write_text("")
    result = Pipeline(warehouse, store=tmp_path).copy(event, "events").run()
    assert result.steps[0].warnings == []


@pytest.mark.duckdb
def test_the_command_shows_warnings_once_in_its_summary_and_json(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    put(lake, "events/a.json", [{"id": "a1", "created_at": "x", "n": 1}])
    (tmp_path / "jobs.py").write_text(
        "import sqlalchemy as sa\n"
        "from arbalest import Integer, Pipeline, Schema, String\n\n\n"
        "class Event(Schema):\n"
        "    __tablename__ = 'events'\n"
        "    metadata = sa.MetaData()\n"
        "    id = String(36, primary_key=True)\n"
        "    created_at = String(40, key='createdAt')\n"
        "    n = Integer()\n\n\n"
        "class Other(Schema):\n"
        "    __tablename__ = 'other'\n"
        "    metadata = sa.MetaData()\n"
        "    id = String(36, primary_key=True)\n\n\n"
        f"pipeline = Pipeline({'duckdb:///' + str(tmp_path / 'w.duckdb')!r}, "
        f"store={str(lake)!r}).copy(Event, 'events').copy(Other, 'evnts')\n"
    )
    done = arbalest("run", "jobs.py", "--json", cwd=tmp_path, env=environment())
    assert done.returncode == 0, done.stderr
    missing = "no record had the key 'createdAt'; records have 'created_at'"
    empty = "nothing under 'evnts/'; did you mean 'events/'?"
    assert f"warning: copy events (incremental): {missing}\n" in done.stderr
    assert f"warning: copy other (incremental): {empty}\n" in done.stderr
    assert done.stderr.count(missing) == 1  # in the summary, not in a log line as well
    steps = document(done)["steps"]
    assert [s["warnings"] for s in steps] == [[missing], [empty]]


@pytest.mark.postgres
@pytest.mark.s3
def test_redshift_says_a_source_on_s3_is_empty(
    redshift_standin: Any, s3_bucket: str, event: type[Schema]
) -> None:
    import boto3

    body = json.dumps({"id": "a", "created_at": "x"}).encode() + b"\n"
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="lake/events/a.json", Body=body)
    store = f"s3://{s3_bucket}/lake"
    role = "arn:aws:iam::123456789012:role/ArbalestLoader"
    result = (
        Pipeline(redshift_standin.engine, store=store, iam_role=role)
        .copy(event, "evnts")
        .copy(event, "events")
        .run()
    )
    assert [s.warnings for s in result.steps] == [
        ["nothing under 'evnts/'; did you mean 'events/'?"],
        [],  # COPY reads the objects itself: no column counts to check
    ]
