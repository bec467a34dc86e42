"""Redshift through the Data API (``RedshiftDataAPI``, ``redshift+data://``), against the
Data API stand-in of tests/fixtures/redshift_data.py: a fake ``redshift-data`` client that
runs each batch in one PostgreSQL transaction through the Redshift stand-in (COPY from moto's
S3, ``STL_`` or ``SYS_`` views as tables)."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import sqlalchemy as sa

from arbalest import (
    ConcurrentRunError,
    Pipeline,
    RedshiftDataAPI,
    TooManyRejectsError,
    WarehouseUnavailableError,
    journal,
)
from arbalest.backends._redshift_data import BATCH_LIMIT
from tests.fixtures.redshift_data import FakeDataAPI
from tests.fixtures.servers import redshift_stand_in

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

ROLE = "arn:aws:iam::123456789012:role/ArbalestLoader"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:arbalest-7f3a9c"


def put(bucket: str, key: str, records: list[Any]) -> None:
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


class DataAPI:
    """The stand-in, its fake client, and a ``RedshiftDataAPI`` that uses it."""

    def __init__(self, standin: Any) -> None:
        self.standin = standin
        self.client = FakeDataAPI(standin)
        self.api = RedshiftDataAPI(
            workgroup="analytics", database="test", secret_arn=SECRET, client=self.client
        )

    def pipeline(self, bucket: str, event: Any, **kw: Any) -> Pipeline:
        return Pipeline(self.api, store=f"s3://{bucket}/lake", iam_role=ROLE).copy(
            event, "events", **kw
        )

    def rows(self, event: Any) -> list[tuple[Any, ...]]:
        with self.standin.engine.connect() as conn:
            if not journal.table_exists(conn, event.__table__):
                return []
            return [tuple(r) for r in conn.execute(sa.select(event.__table__).order_by("id"))]

    def journal(self) -> list[tuple[Any, ...]]:
        j = journal.JOURNAL
        with self.standin.engine.connect() as conn:
            if not journal.table_exists(conn, j):
                return []
            query = sa.select(j.c.key, j.c.rows_loaded, j.c.rows_rejected).order_by(j.c.key)
            return [tuple(r) for r in conn.execute(query)]

    def batches(self) -> list[list[str]]:
        return [r["Sqls"] for op, r in self.client.requests if op == "batch_execute_statement"]


@pytest.fixture(params=["provisioned", "serverless"])
def data_api(
    request: pytest.FixtureRequest, postgres_schema: str, s3_endpoint: str
) -> Iterator[DataAPI]:
    with redshift_stand_in(postgres_schema, serverless=request.param == "serverless") as standin:
        yield DataAPI(standin)


def test_incremental_loads_once_with_rows_and_journal_in_one_batch(
    data_api: DataAPI, s3_bucket: str, event: Any
) -> None:
    put(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": 2}])
    put(s3_bucket, "lake/events/b.json", [{"id": "b1", "n": 3}])
    result = data_api.pipeline(s3_bucket, event).run()
    step = result.steps[0]
    assert (step.objects_loaded, step.rows_loaded, step.rows_rejected) == (2, 3, 0)
    assert [r[0] for r in data_api.rows(event)] == ["a1", "a2", "b1"]
    assert data_api.journal() == [("events/a.json", 2, 0), ("events/b.json", 1, 0)]
    loading = [b for b in data_api.batches() if any(s.startswith("COPY") for s in b)]
    assert len(loading) == 1
    (batch,) = loading
    joined = " ".join(batch)
    # the lock, the rows and their journal rows: one transaction
    assert batch.index(next(s for s in batch if s.startswith("LOCK"))) < batch.index(
        next(s for s in batch if s.startswith("COPY"))
    )
    assert "INSERT INTO _arbalest_journal" in joined
    again = data_api.pipeline(s3_bucket, event).run()
    assert again.steps[0].objects_loaded == 0
    assert len(data_api.rows(event)) == 3


def test_rejects_are_read_back_with_key_line_column(
    data_api: DataAPI, s3_bucket: str, event: Any
) -> None:
    put(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    put(s3_bucket, "lake/events/b.json", [{"id": "b1", "n": 2}, {"n": 3}, {"id": "b3"}])
    result = data_api.pipeline(s3_bucket, event, max_errors=2).run()
    step = result.steps[0]
    assert (step.objects_loaded, step.rows_loaded, step.rows_rejected) == (2, 3, 2)
    assert [(r.key, r.line, r.column, r.code) for r in step.rejects] == [
        ("events/a.json", 2, "n", 1207),
        ("events/b.json", 2, "id", 1213),
    ]
    assert data_api.journal() == [("events/a.json", 1, 1), ("events/b.json", 2, 1)]


def test_too_many_rejects_commit_nothing_of_the_failing_part(
    data_api: DataAPI, s3_bucket: str, event: Any
) -> None:
    put(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": "x"}, {"id": "a2", "n": "y"}])
    with pytest.raises(TooManyRejectsError) as caught:
        data_api.pipeline(s3_bucket, event, max_errors=1).run()
    assert [(r.key, r.line, r.column) for r in caught.value.rejects] == [
        ("events/a.json", 1, "n"),
        ("events/a.json", 2, "n"),
    ]
    assert data_api.rows(event) == []
    assert data_api.journal() == []


def test_many_objects_load_in_parts_each_with_its_journal_rows(
    data_api: DataAPI, s3_bucket: str, event: Any
) -> None:
    for i in range(25):
        put(s3_bucket, f"lake/events/{i:02d}.json", [{"id": f"r{i}", "n": i}])
    result = data_api.pipeline(s3_bucket, event).run()
    assert result.steps[0].rows_loaded == 25
    assert len(data_api.rows(event)) == 25
    assert all(len(b) <= BATCH_LIMIT for b in data_api.batches())
    assert len([b for b in data_api.batches() if any(s.startswith("COPY") for s in b)]) > 1
    assert [r[1] for r in data_api.journal()] == [1] * 25


def test_replace_and_merge(data_api: DataAPI, s3_bucket: str, event: Any) -> None:
    put(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": 2}])
    data_api.pipeline(s3_bucket, event, mode="replace").run()
    put(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 10}])
    data_api.pipeline(s3_bucket, event, mode="replace").run()
    assert [r[:2] for r in data_api.rows(event)] == [("a1", 10)]
    put(s3_bucket, "lake/events/b.json", [{"id": "a1", "n": 11}, {"id": "b1", "n": 5}])
    data_api.pipeline(s3_bucket, event, mode="merge").run()
    assert [r[:2] for r in data_api.rows(event)] == [("a1", 11), ("b1", 5)]


def test_a_journal_written_meanwhile_fails_the_part_retryably(
    data_api: DataAPI, s3_bucket: str, event: Any
) -> None:
    put(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}])
    pipeline = data_api.pipeline(s3_bucket, event)
    original = journal.loaded
    other: list[Any] = []

    def stale(conn: Any, target: str, prefix: str = "") -> dict[str, str]:
        found = original(conn, target, prefix)
        if not other:
            other.append(target)
            # another run loads everything between this run's reading of the journal and
            # its batch
            data_api.pipeline(s3_bucket, event).run()
        return found

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(journal, "loaded", stale)
        with pytest.raises(ConcurrentRunError) as caught:
            pipeline.run()
    assert caught.value.retryable
    assert len(data_api.rows(event)) == 1
    assert data_api.journal() == [("events/a.json", 1, 0)]


def test_validate_and_plan_leave_nothing_behind(
    data_api: DataAPI, s3_bucket: str, event: Any
) -> None:
    put(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    checked = data_api.pipeline(s3_bucket, event, max_errors=1).validate()
    assert checked.steps[0].rows_rejected == 1
    plan = data_api.pipeline(s3_bucket, event).plan()
    assert plan.steps[0].keys == ["events/a.json"]
    with data_api.standin.engine.connect() as conn:
        assert not journal.table_exists(conn, journal.JOURNAL)
        assert not journal.table_exists(conn, event.__table__)


def test_throttling_is_retryable_and_the_secret_arn_never_shows(
    data_api: DataAPI, s3_bucket: str, event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    put(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}])
    pipeline = data_api.pipeline(s3_bucket, event)
    data_api.client.fail_next = ["ThrottlingException"] * 50
    with pytest.raises(WarehouseUnavailableError) as caught:
        pipeline.run()
    assert caught.value.retryable
    data_api.client.fail_next = []
    result = pipeline.run()
    shown = [str(caught.value), repr(caught.value), str(result), repr(pipeline), repr(data_api.api)]
    shown += [str(pipeline.engine.url), caplog.text, json.dumps(result.to_dict(), default=str)]
    assert all(SECRET not in text for text in shown)
    # the secret went to the Data API on every call, as SecretArn
    assert all(
        r.get("SecretArn") == SECRET
        for op, r in data_api.client.requests
        if "Sql" in r or "Sqls" in r
    )


def test_the_url_form_reaches_the_same_warehouse(
    data_api: DataAPI, s3_bucket: str, event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arbalest.backends import _redshift_data

    made: list[RedshiftDataAPI] = []

    def client(api: RedshiftDataAPI) -> Any:
        made.append(api)
        return data_api.client

    monkeypatch.setattr(_redshift_data, "make_client", client)
    put(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}])
    url = f"redshift+data:///test?workgroup=analytics&secret_arn={SECRET}&region=us-east-1"
    with Pipeline(url, store=f"s3://{s3_bucket}/lake", iam_role=ROLE) as pipeline:
        result = pipeline.copy(event, "events").run()
        assert SECRET not in str(pipeline.engine.url)
        assert SECRET not in repr(pipeline)
    assert result.steps[0].rows_loaded == 1
    assert made[0].workgroup == "analytics"
    assert made[0].secret_arn == SECRET


@functools.cache
def _example(name: str) -> Any:
    # loaded once per test process, as tests/examples loads it: a second run of the file
    # would declare its schemas again in the shared MetaData (a SchemaError)
    from tests.examples.test_examples import load

    return sys.modules.get(f"example_{name}") or load(name)


def test_the_redshift_example_runs_through_the_data_api(data_api: DataAPI, s3_bucket: str) -> None:
    example = _example("s3_to_redshift")
    orders = [
        {
            "id": "o1",
            "customerId": 7,
            "total": "10.50",
            "createdAt": "2026-11-25T10:00:00Z",
            "paid": True,
        },
        {
            "id": "o2",
            "customerId": 8,
            "total": "4.25",
            "createdAt": "2026-11-25T11:00:00Z",
            "paid": "yes",
        },
        {
            "id": "o3",
            "customerId": 7,
            "total": "99",
            "createdAt": "2026-11-24T09:00:00Z",
            "paid": False,
        },
    ]
    put(s3_bucket, "raw/orders/2026-11-25.json", orders)
    result = example.build(data_api.api.engine(), s3_bucket, ROLE).run()
    assert result.rows_loaded == 3
    with data_api.standin.engine.connect() as conn:
        revenue = conn.execute(sa.text("SELECT day, revenue FROM daily_revenue")).all()
    assert [(str(d), str(r)) for d, r in revenue] == [("2026-11-25", "14.75")]
    # the SQL step's statements went in one batch of their own
    assert any(
        len(b) == 3 and b[0].startswith("CREATE TABLE IF NOT EXISTS daily_revenue")
        for b in data_api.batches()
    )
