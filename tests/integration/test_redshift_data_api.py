"""Redshift through the Data API (``RedshiftDataAPI``, ``redshift+data://``), against the
Data API stand-in of tests/fixtures/redshift_data.py: a fake ``redshift-data`` client that
runs each batch in one PostgreSQL transaction through the Redshift stand-in (COPY from moto's
S3, ``STL_`` or ``SYS_`` views as tables)."""

from __future__ import annotations

import functools
import json
import logging
import sys
from typing import Any

import boto3
import pytest
import sqlalchemy as sa

from arbalest import (
    ConcurrentRunError,
    CopyError,
    Pipeline,
    RedshiftDataAPI,
    TooManyRejectsError,
    WarehouseUnavailableError,
    journal,
)
from arbalest.backends import redshift_data
from arbalest.backends._redshift_data import BATCH_LIMIT
from tests.fixtures.lakes import EXAMPLE_ORDERS, put_s3
from tests.fixtures.redshift import ROLE
from tests.fixtures.redshift_data import SECRET, DataAPI

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def test_incremental_loads_once_with_rows_and_journal_in_one_batch(
    data_api: DataAPI, s3_bucket: str, event: Any
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": 2}])
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "b1", "n": 3}])
    result = data_api.pipeline(s3_bucket, event).run()
    step = result.steps[0]
    assert (step.objects_loaded, step.rows_loaded, step.rows_rejected) == (2, 3, 0)
    assert [r[0] for r in data_api.rows(event)] == ["a1", "a2", "b1"]
    assert data_api.journal() == [("events/a.json", 2, 0), ("events/b.json", 1, 0)]
    staging = [b for b in data_api.batches() if any(s.startswith("COPY") for s in b)]
    assert len(staging) == 1
    assert not _touches_target(staging[0])
    (final,) = [b for b in data_api.batches() if any(s.startswith("LOCK") for s in b)]

    def first(prefix: str) -> int:
        return next(i for i, s in enumerate(final) if s.startswith(prefix))

    # the lock, the rows and their journal rows: one transaction, in that order
    assert first("LOCK") < first("INSERT INTO events") < first("INSERT INTO _arbalest_journal")
    again = data_api.pipeline(s3_bucket, event).run()
    assert again.steps[0].objects_loaded == 0
    assert len(data_api.rows(event)) == 3


def test_rejects_are_read_back_with_key_line_column(
    data_api: DataAPI, s3_bucket: str, event: Any
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "b1", "n": 2}, {"n": 3}, {"id": "b3"}])
    result = data_api.pipeline(s3_bucket, event, max_errors=2).run()
    step = result.steps[0]
    assert (step.objects_loaded, step.rows_loaded, step.rows_rejected) == (2, 3, 2)
    assert [(r.key, r.line, r.column, r.code) for r in step.rejects] == [
        ("events/a.json", 2, "n", 1207),
        ("events/b.json", 2, "id", 1213),
    ]
    assert data_api.journal() == [("events/a.json", 1, 1), ("events/b.json", 2, 1)]


def test_too_many_rejects_commit_nothing(data_api: DataAPI, s3_bucket: str, event: Any) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": "x"}, {"id": "a2", "n": "y"}])
    with pytest.raises(TooManyRejectsError) as caught:
        data_api.pipeline(s3_bucket, event, max_errors=1).run()
    assert [(r.key, r.line, r.column) for r in caught.value.rejects] == [
        ("events/a.json", 1, "n"),
        ("events/a.json", 2, "n"),
    ]
    assert data_api.rows(event) == []
    assert data_api.journal() == []


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    """Two objects a staging batch, so that a step of a few objects takes several (the
    split at the real 40-statement limit is the test just below)."""
    monkeypatch.setattr(redshift_data, "STAGED_PER_BATCH", 2)
    return 2


def _touches_target(batch: list[str]) -> bool:
    targets = ("INSERT INTO events", "DELETE FROM events", "INSERT INTO _arbalest_journal")
    return any(s.startswith(targets) for s in batch)


def test_many_objects_stage_in_a_session_then_commit_in_one_batch(
    provisioned: DataAPI, s3_bucket: str, event: Any
) -> None:
    count = redshift_data.STAGED_PER_BATCH + 1  # 13: two staging batches
    for i in range(count):
        put_s3(s3_bucket, f"lake/events/{i:02d}.json", [{"id": f"r{i}", "n": i}])
    result = provisioned.pipeline(s3_bucket, event).run()
    assert result.steps[0].rows_loaded == count
    assert sorted(r[:2] for r in provisioned.rows(event)) == sorted(
        (f"r{i}", i) for i in range(count)
    )
    assert provisioned.journal() == [(f"events/{i:02d}.json", 1, 0) for i in range(count)]
    requests = provisioned.batch_requests()
    assert all(len(r["Sqls"]) <= BATCH_LIMIT for r in requests)
    staging = [r for r in requests if any(s.startswith("COPY") for s in r["Sqls"])]
    assert len(staging) == 2
    # staging touches only the session's temporary tables; one batch moves the rows and
    # writes the journal, under the lock
    assert not any(_touches_target(r["Sqls"]) for r in staging)
    (final,) = [r for r in requests if any(s.startswith("LOCK") for s in r["Sqls"])]
    assert _touches_target(final["Sqls"])
    # one session: opened by the first staging batch, named by the next, closed by the last
    assert "SessionId" not in staging[0]
    assert staging[0]["SessionKeepAliveSeconds"] > 0
    session = provisioned.client.closed[-1]
    assert [r.get("SessionId") for r in [*staging[1:], final]] == [session] * 2
    assert final["SessionKeepAliveSeconds"] == 0
    # a request naming its session names nothing else of the warehouse
    assert all("WorkgroupName" not in r for r in [*staging[1:], final])
    assert provisioned.client.sessions == {}
    assert provisioned.pipeline(s3_bucket, event).run().rows_loaded == 0


def test_a_failure_in_the_final_batch_leaves_rows_and_journal_as_they_were(
    provisioned: DataAPI, s3_bucket: str, event: Any, small_batches: int
) -> None:
    put_s3(s3_bucket, "lake/events/00.json", [{"id": "r0", "n": 0}])
    provisioned.pipeline(s3_bucket, event).run()
    before = (provisioned.rows(event), provisioned.journal())
    for i in range(1, 4):
        put_s3(s3_bucket, f"lake/events/{i:02d}.json", [{"id": f"r{i}", "n": i}])
    provisioned.client.refuse = "INSERT INTO _arbalest_journal"  # the final batch's last write
    with pytest.raises(CopyError):
        provisioned.pipeline(s3_bucket, event).run()
    assert (provisioned.rows(event), provisioned.journal()) == before
    failed = provisioned.batches()[-1]  # the final batch: its rows went in, then it failed
    assert any(s.startswith("INSERT INTO events") for s in failed)
    assert failed[-1].startswith("INSERT INTO _arbalest_journal")
    copying = [b for b in provisioned.batches() if any(s.startswith("COPY") for s in b)]
    assert len(copying) == 3  # the first run's, then the failed run's two staging batches
    provisioned.client.refuse = None
    assert provisioned.pipeline(s3_bucket, event).run().rows_loaded == 3
    assert sorted(r[0] for r in provisioned.rows(event)) == sorted(f"r{i}" for i in range(4))
    assert len(provisioned.journal()) == 4


def test_a_failure_in_the_last_staging_batch_changes_nothing(
    serverless: DataAPI, s3_bucket: str, event: Any, small_batches: int
) -> None:
    for i in range(5):
        put_s3(s3_bucket, f"lake/events/{i:02d}.json", [{"id": f"r{i}", "n": i}])
    put_s3(s3_bucket, "lake/events/04.json", [{"id": "r4", "n": "x"}])  # a reject, none allowed
    with pytest.raises(TooManyRejectsError) as caught:
        serverless.pipeline(s3_bucket, event).run()
    assert [(r.key, r.column) for r in caught.value.rejects] == [("events/04.json", "n")]
    assert len([b for b in serverless.batches() if any(s.startswith("COPY") for s in b)]) == 3
    assert serverless.rows(event) == []
    assert serverless.journal() == []
    assert not any(_touches_target(b) for b in serverless.batches())  # no final batch


def test_replace_and_merge_of_many_objects_are_one_transaction_each(
    provisioned: DataAPI, s3_bucket: str, event: Any, small_batches: int
) -> None:
    for i in range(4):
        put_s3(s3_bucket, f"lake/events/{i:02d}.json", [{"id": f"r{i}", "n": i}])
    provisioned.pipeline(s3_bucket, event, mode="replace").run()
    assert sorted(r[:2] for r in provisioned.rows(event)) == [(f"r{i}", i) for i in range(4)]
    for i in range(3):
        records = [{"id": f"r{i}", "n": 100 + i}]
        if i in (0, 2):  # one key in objects of two staging batches: the latest wins
            records.append({"id": "k", "n": i})
        put_s3(s3_bucket, f"lake/events/{i:02d}.json", records)
    provisioned.pipeline(s3_bucket, event, mode="merge").run()
    assert sorted(r[:2] for r in provisioned.rows(event)) == [
        ("k", 2),
        ("r0", 100),
        ("r1", 101),
        ("r2", 102),
        ("r3", 3),
    ]
    for i in (2, 3):
        boto3.client("s3").delete_object(Bucket=s3_bucket, Key=f"lake/events/{i:02d}.json")
    provisioned.pipeline(s3_bucket, event, mode="replace").run()
    assert sorted(r[:2] for r in provisioned.rows(event)) == [("k", 0), ("r0", 100), ("r1", 101)]
    assert provisioned.journal() == [("events/00.json", 2, 0), ("events/01.json", 1, 0)]
    moved = [b for b in provisioned.batches() if any(s.startswith("INSERT INTO events") for s in b)]
    assert len(moved) == 3  # one batch per step


def test_polling_pauses_longer_each_time(
    provisioned: DataAPI, s3_bucket: str, event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arbalest.backends import _redshift_driver

    pauses: list[float] = []
    made = _redshift_driver.Connection.__init__

    def recording(self: Any, api: Any) -> None:
        made(self, api)
        self.sleep = pauses.append  # the driver's pauses, recorded, not taken

    monkeypatch.setattr(_redshift_driver.Connection, "__init__", recording)
    provisioned.client.polls = 4
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}])
    provisioned.pipeline(s3_bucket, event).run()
    assert pauses[:4] == pytest.approx([0.05, 0.075, 0.1125, 0.16875])
    described = [op for op, _ in provisioned.client.requests if op == "describe_statement"]
    assert len(described) == 5 * len(
        [op for op, _ in provisioned.client.requests if op.endswith("execute_statement")]
    )


def test_a_journal_written_meanwhile_fails_the_step_retryably(
    data_api: DataAPI, s3_bucket: str, event: Any
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}])
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
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    checked = data_api.pipeline(s3_bucket, event, max_errors=1).validate()
    assert checked.steps[0].rows_rejected == 1
    plan = data_api.pipeline(s3_bucket, event).plan()
    assert plan.steps[0].keys == ["events/a.json"]
    with data_api.standin.engine.connect() as conn:
        assert not journal.table_exists(conn, journal.JOURNAL)
        assert not journal.table_exists(conn, event.__table__)


def test_throttling_is_retryable_and_the_secret_arn_never_shows(
    provisioned: DataAPI, s3_bucket: str, event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}])
    pipeline = provisioned.pipeline(s3_bucket, event)
    provisioned.client.fail_next = ["ThrottlingException"] * 50
    with pytest.raises(WarehouseUnavailableError) as caught:
        pipeline.run()
    assert caught.value.retryable
    provisioned.client.fail_next = []
    result = pipeline.run()
    shown = [
        str(caught.value),
        repr(caught.value),
        str(result),
        repr(pipeline),
        repr(provisioned.api),
    ]
    shown += [str(pipeline.engine.url), caplog.text, json.dumps(result.to_dict(), default=str)]
    assert all(SECRET not in text for text in shown)
    # the secret went to the Data API on every call, as SecretArn (a call in a session
    # names the session, which a call with the secret opened)
    calls = [r for op, r in provisioned.client.requests if "Sql" in r or "Sqls" in r]
    assert all(r.get("SecretArn") == SECRET or "SessionId" in r for r in calls)
    assert any("SessionId" in r for r in calls)


def test_the_url_form_reaches_the_same_warehouse(
    provisioned: DataAPI, s3_bucket: str, event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arbalest.backends import _redshift_data

    made: list[RedshiftDataAPI] = []

    def client(api: RedshiftDataAPI) -> Any:
        made.append(api)
        return provisioned.client

    monkeypatch.setattr(_redshift_data, "make_client", client)
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}])
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


def test_the_redshift_example_runs_through_the_data_api(
    serverless: DataAPI, s3_bucket: str
) -> None:
    example = _example("s3_to_redshift")
    put_s3(s3_bucket, "raw/orders/2026-11-25.json", EXAMPLE_ORDERS)
    result = example.build(serverless.api.engine(), s3_bucket, ROLE).run()
    assert result.rows_loaded == 3
    with serverless.standin.engine.connect() as conn:
        revenue = conn.execute(sa.text("SELECT day, revenue FROM daily_revenue")).all()
    assert [(str(d), str(r)) for d, r in revenue] == [("2026-11-25", "14.75")]
    # the SQL step's statements went in one batch of their own
    assert any(
        len(b) == 3 and b[0].startswith("CREATE TABLE IF NOT EXISTS daily_revenue")
        for b in serverless.batches()
    )
