"""Parquet and CSV objects, and time series, through the Redshift Data API: against the Data
API stand-in (tests/fixtures/redshift_data.py), whose COPY ... FORMAT AS CSV / PARQUET is the
Redshift stand-in's (fields by position; Parquet columns by position, matching types, no
MAXERROR), every statement parsed as Redshift SQL. The same guarantees as JSON: one
transaction per step (staged in a session, moved in one final batch), rejects read back with
key, line, column, value and reason, counts per object."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pyarrow as pa
import pytest
import sqlalchemy as sa

from arbalest import (
    BigInt,
    ConcurrentRunError,
    CopyError,
    Pipeline,
    PipelineError,
    Schema,
    SortedSources,
    String,
    Timestamp,
    TooManyRejectsError,
    journal,
)
from arbalest.backends import _redshift_session, redshift_data
from arbalest.pipeline import copying
from tests.conformance import format_cases
from tests.conformance.format_cases import parquet
from tests.conformance.test_conformance import table_rows
from tests.fixtures.redshift import ROLE
from tests.fixtures.redshift_data import DataAPI
from tests.integration.test_redshift_formats import Flat, put_objects

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def pipeline(api: DataAPI, bucket: str, schema: type[Schema], **kw: Any) -> Pipeline:
    return Pipeline(api.api, store=f"s3://{bucket}/lake", iam_role=ROLE).copy(schema, "in", **kw)


def _moves_rows(batch: list[str], table: str) -> bool:
    return any(s.startswith(f"INSERT INTO {table}") for s in batch)


class Keyed(format_cases.Base):  # type: ignore[misc, valid-type]
    __tablename__ = "keyed_data_api"
    id = String(10, primary_key=True)
    n = BigInt()


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_rejects_come_back_with_key_line_column_value_and_reason(
    data_api: DataAPI, s3_bucket: str
) -> None:
    put_objects(
        s3_bucket, {"a.csv": "n,id\n1,k1\nx,k2\n", "b.csv": "id,n\nk3,3\nk0123456789,4\nk5,5\n"}
    )
    result = pipeline(data_api, s3_bucket, Keyed, max_errors=2).run()
    step = result.steps[0]
    assert (step.objects_loaded, step.rows_loaded, step.rows_rejected) == (2, 3, 2)
    serverless = data_api.standin.serverless
    got = [(r.key, r.line, r.column, r.value, r.code) for r in step.rejects]
    assert got == [
        ("in/a.csv", 3, "n", None if serverless else "x", 1207),
        ("in/b.csv", 3, "id", None if serverless else "k0123456789", 1204),
    ]
    assert all(r.reason for r in step.rejects)
    assert data_api.journal() == [("in/a.csv", 1, 1), ("in/b.csv", 2, 1)]
    assert [(r["id"], r["n"]) for r in table_rows(data_api.standin.engine, Keyed)] == [
        ("k1", 1),
        ("k3", 3),
        ("k5", 5),
    ]
    # staging touched only the session's temporary tables; one batch moved rows and journal
    batches = data_api.batches()
    staging = [b for b in batches if any(s.startswith("COPY") for s in b)]
    assert staging
    assert not any(_moves_rows(b, "keyed_data_api") for b in staging)
    (final,) = [b for b in batches if any(s.startswith("LOCK") for s in b)]
    assert _moves_rows(final, "keyed_data_api")
    assert _moves_rows(final, "_arbalest_journal")


def test_too_many_csv_rejects_commit_nothing(data_api: DataAPI, s3_bucket: str) -> None:
    put_objects(s3_bucket, {"a.csv": "id,n\nk1,1\n", "b.csv": "id,n\nk2,x\nk3,y\n"})
    with pytest.raises(TooManyRejectsError) as caught:
        pipeline(data_api, s3_bucket, Keyed, max_errors=1).run()
    assert [(r.key, r.line, r.column) for r in caught.value.rejects] == [
        ("in/b.csv", 2, "n"),
        ("in/b.csv", 3, "n"),
    ]
    assert data_api.journal() == []
    with data_api.standin.engine.connect() as conn:
        assert not journal.table_exists(conn, Keyed.__table__)


# -- Parquet -----------------------------------------------------------------------------------


def test_many_parquet_objects_stage_in_batches_then_commit_once(
    provisioned: DataAPI, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redshift_data, "STAGED_PER_BATCH", 2)
    for i in range(5):
        ids = [f"p{i}-{j}" for j in range(i + 1)]
        put_objects(s3_bucket, {f"{i}.parquet": parquet({"id": ids, "n": pa.array(range(i + 1))})})
    result = pipeline(provisioned, s3_bucket, Keyed).run()
    assert result.rows_loaded == 15
    assert provisioned.journal() == [(f"in/{i}.parquet", i + 1, 0) for i in range(5)]
    requests = provisioned.batch_requests()
    staging = [r["Sqls"] for r in requests if any(s.startswith("COPY") for s in r["Sqls"])]
    assert len(staging) == 3  # two objects a batch
    assert all("FORMAT AS PARQUET" in s for b in staging for s in b if s.startswith("COPY"))
    assert not any(_moves_rows(b, "keyed_data_api") for b in staging)
    moving = [r["Sqls"] for r in requests if _moves_rows(r["Sqls"], "keyed_data_api")]
    assert len(moving) == 1
    assert provisioned.client.sessions == {}  # the final batch closed the session
    assert pipeline(provisioned, s3_bucket, Keyed).run().rows_loaded == 0


def test_a_parquet_value_that_does_not_fit_fails_the_step_naming_the_object(
    data_api: DataAPI, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redshift_data, "STAGED_PER_BATCH", 2)
    put_objects(s3_bucket, {"a.parquet": parquet({"id": ["ok"], "n": pa.array([1])})})
    put_objects(s3_bucket, {"b.parquet": parquet({"id": ["fine"], "n": pa.array([2])})})
    put_objects(s3_bucket, {"c.parquet": parquet({"id": ["ok", None]})})
    with pytest.raises(CopyError) as raised:
        pipeline(data_api, s3_bucket, Flat, max_errors=5).run()
    assert "'in/c.parquet': its rows do not fit the table" in str(raised.value)
    assert "no MAXERROR" in str(raised.value)
    assert data_api.journal() == []
    with data_api.standin.engine.connect() as conn:
        assert not journal.table_exists(conn, Flat.__table__)


def test_validate_leaves_nothing_behind(data_api: DataAPI, s3_bucket: str) -> None:
    put_objects(s3_bucket, {"a.csv": "id,n\nk1,1\nk2,x\n"}, folder="c")
    put_objects(s3_bucket, {"a.parquet": parquet({"id": ["p1"], "n": pa.array([1])})}, folder="p")
    store = f"s3://{s3_bucket}/lake"
    checked = (
        Pipeline(data_api.api, store=store, iam_role=ROLE)
        .copy(Keyed, "c", max_errors=1)
        .copy(Keyed, "p")
        .validate()
    )
    assert [(r.line, r.column, r.code) for r in checked.steps[0].rejects] == [(3, "n", 1207)]
    csv_copies = [c for c in data_api.standin.copies if c["format"] == "csv"]
    assert csv_copies
    assert all(c["no_load"] for c in csv_copies)
    with data_api.standin.engine.connect() as conn:
        assert not journal.table_exists(conn, journal.JOURNAL)
        assert not journal.table_exists(conn, Keyed.__table__)


# -- time series -------------------------------------------------------------------------------


@pytest.fixture
def timed(base: type[Schema]) -> Any:
    class Event(base):  # type: ignore[misc, valid-type]
        __tablename__ = "timed_events"
        id = String(10)
        t = Timestamp()

    return Event


def partition(bucket: str, name: str, records: list[tuple[str, str]]) -> None:
    body = "".join(f'{{"id": "{i}", "t": "{t}"}}\n' for i, t in records)
    boto3.client("s3").put_object(
        Bucket=bucket, Key=f"lake/series/{name}/part.json", Body=body.encode()
    )


def series(api: DataAPI, bucket: str, timed: Any, **kw: Any) -> Pipeline:
    sources = SortedSources(f"s3://{bucket}/lake", "series", **kw)
    return Pipeline(api.api, store=f"s3://{bucket}/lake", iam_role=ROLE).time_series(
        timed, sources, series_column="t"
    )


def state(api: DataAPI) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], str | None]:
    """The target's rows, the journal and the cursor."""
    with api.standin.engine.connect() as conn:
        if not journal.table_exists(conn, journal.CURSORS):
            return [], api.journal(), None
        rows = conn.execute(sa.text("SELECT id, t FROM timed_events ORDER BY t, id")).all()
        point = conn.execute(sa.select(journal.CURSORS.c.point)).scalar()
    return [tuple(r) for r in rows], api.journal(), point


def test_a_time_series_loads_new_partitions_in_one_transaction(
    data_api: DataAPI, s3_bucket: str, timed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redshift_data, "STAGED_PER_BATCH", 2)
    partition(s3_bucket, "2014-11-03", [("a", "2014-11-03T10:00:00")])
    partition(s3_bucket, "2014-11-04", [("b", "2014-11-04T01:00:00"), ("b2", "2014-11-04T02:00")])
    result = series(data_api, s3_bucket, timed).run()
    assert result.steps[0].label == "time series timed_events"
    assert (result.steps[0].objects_loaded, result.rows_loaded) == (2, 3)
    rows, journal_rows, point = state(data_api)
    assert [r[0] for r in rows] == ["a", "b", "b2"]
    assert journal_rows == [
        ("series/2014-11-03/part.json", 1, 0),
        ("series/2014-11-04/part.json", 2, 0),
    ]
    assert point == "series/2014-11-04"
    # each partition staged in the session; one batch, in it, moved everything and closed it
    batches = data_api.batch_requests()
    moving = [r for r in batches if _moves_rows(r["Sqls"], "timed_events")]
    assert len(moving) == 1
    (final,) = moving
    assert any(s.startswith("LOCK") for s in final["Sqls"])
    assert any(s.startswith("INSERT INTO _arbalest_cursors") for s in final["Sqls"])
    assert final["SessionId"] == data_api.client.closed[-1]
    assert final["SessionKeepAliveSeconds"] == 0
    assert data_api.client.sessions == {}
    # nothing new: nothing runs; a new partition replaces the rows from its start on
    assert series(data_api, s3_bucket, timed).run().rows_loaded == 0
    partition(s3_bucket, "2014-11-05", [("c", "2014-11-05T00:30:00")])
    assert series(data_api, s3_bucket, timed).run().rows_loaded == 1
    rows, journal_rows, point = state(data_api)
    assert [r[0] for r in rows] == ["a", "b", "b2", "c"]
    assert point == "series/2014-11-05"
    assert len(journal_rows) == 3


def test_a_time_series_of_parquet_and_csv_partitions(
    provisioned: DataAPI, s3_bucket: str, timed: Any
) -> None:
    client = boto3.client("s3")
    client.put_object(
        Bucket=s3_bucket,
        Key="lake/series/2014-11-03/part.csv",
        Body=b"t,id\n2014-11-03 10:00:00,a\n2014-11-03 11:00:00,a2\n",
    )
    instants = pa.array([dt.datetime(2014, 11, 4, 1), dt.datetime(2014, 11, 4, 2)])
    body = parquet({"id": ["p", "p2"], "t": instants.cast(pa.timestamp("us"))})
    client.put_object(Bucket=s3_bucket, Key="lake/series/2014-11-04/part.parquet", Body=body)
    result = series(provisioned, s3_bucket, timed).run()
    assert result.rows_loaded == 4
    assert [r[0] for r in state(provisioned)[0]] == ["a", "a2", "p", "p2"]
    assert [c["format"] for c in provisioned.standin.copies] == ["csv", "parquet"]


def test_a_failed_time_series_leaves_rows_journal_and_cursor_as_they_were(
    data_api: DataAPI, s3_bucket: str, timed: Any
) -> None:
    partition(s3_bucket, "2014-11-03", [("a", "2014-11-03T10:00:00")])
    series(data_api, s3_bucket, timed).run()
    before = state(data_api)
    partition(s3_bucket, "2014-11-04", [("b", "2014-11-04T01:00:00")])
    partition(s3_bucket, "2014-11-05", [("c", "2014-11-05T01:00:00")])
    # the final batch's last statement fails: all of it is rolled back
    data_api.client.refuse = "INSERT INTO _arbalest_cursors"
    with pytest.raises(CopyError):
        series(data_api, s3_bucket, timed).run()
    assert state(data_api) == before
    failed = data_api.batches()[-1]
    assert _moves_rows(failed, "timed_events")
    data_api.client.refuse = None
    # a reject, none allowed: fails while staging, before any batch touches the target
    partition(s3_bucket, "2014-11-06", [("d", "not a time")])
    with pytest.raises(TooManyRejectsError) as caught:
        series(data_api, s3_bucket, timed).run()
    assert [(r.key, r.line, r.column) for r in caught.value.rejects] == [
        ("series/2014-11-06/part.json", 1, "t")
    ]
    assert state(data_api) == before
    partition(s3_bucket, "2014-11-06", [("d", "2014-11-06T01:00:00")])
    assert series(data_api, s3_bucket, timed).run().rows_loaded == 3
    rows, journal_rows, point = state(data_api)
    assert [r[0] for r in rows] == ["a", "b", "c", "d"]
    assert (len(journal_rows), point) == (4, "series/2014-11-06")


def test_many_partitions_load_in_one_run_and_one_final_batch(
    provisioned: DataAPI, s3_bucket: str, timed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = [f"2014-11-{d:02d}" for d in range(1, 16)]
    for day in days:
        partition(s3_bucket, day, [(day[-2:], f"{day}T10:00:00")])
    # a last batch over the limit is refused before anything commits (here a low limit)
    monkeypatch.setattr(_redshift_session, "BATCH_LIMIT", 8)
    with pytest.raises(PipelineError, match="over the 8") as raised:
        series(provisioned, s3_bucket, timed).run()
    assert "end=" in str(raised.value)
    assert state(provisioned) == ([], [], None)
    monkeypatch.undo()
    # the partitions' staging tables are made and filled while staging: the last batch
    # does not grow with their number
    result = series(provisioned, s3_bucket, timed).run()
    assert (result.steps[0].objects_loaded, result.rows_loaded) == (15, 15)
    rows, journal_rows, point = state(provisioned)
    assert [r[0] for r in rows] == [day[-2:] for day in days]
    assert (len(journal_rows), point) == (15, f"series/{days[-1]}")
    (final,) = [b for b in provisioned.batches() if _moves_rows(b, "timed_events")]
    assert len(final) <= 24  # 20 on a first run (creating the tables), whatever the 15
    assert not any(s.startswith("DROP TABLE") for s in final)


def test_validating_a_time_series_leaves_nothing_behind(
    provisioned: DataAPI, s3_bucket: str, timed: Any
) -> None:
    partition(s3_bucket, "2014-11-03", [("a", "2014-11-03T10:00:00")])
    partition(s3_bucket, "2014-11-04", [("b", "not a time")])
    sources = SortedSources(f"s3://{s3_bucket}/lake", "series")
    checked = (
        Pipeline(provisioned.api, store=f"s3://{s3_bucket}/lake", iam_role=ROLE)
        .time_series(timed, sources, series_column="t", max_errors=1)
        .validate()
    )
    assert [(r.key, r.line, r.column) for r in checked.steps[0].rejects] == [
        ("series/2014-11-04/part.json", 1, "t")
    ]
    assert state(provisioned) == ([], [], None)
    assert provisioned.client.sessions == {}
    assert not any(_moves_rows(b, "timed_events") for b in provisioned.batches())


def test_a_cursor_moved_meanwhile_fails_the_time_series_retryably(
    data_api: DataAPI, s3_bucket: str, timed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    partition(s3_bucket, "2014-11-03", [("a", "2014-11-03T10:00:00")])
    series(data_api, s3_bucket, timed).run()
    partition(s3_bucket, "2014-11-04", [("b", "2014-11-04T01:00:00")])
    partition(s3_bucket, "2014-11-05", [("c", "2014-11-05T01:00:00")])
    original = copying.new_partitions
    other: list[str] = []

    def stale(conn: Any, step: Any) -> list[str]:
        found = original(conn, step)
        if not other:
            other.append("run")
            # another run loads a new partition and moves the cursor between this run's
            # reading of it and its last batch (which alone takes the lock)
            with monkeypatch.context() as mp:
                mp.setattr(copying, "new_partitions", original)
                series(data_api, s3_bucket, timed, end="2014-11-04").run()
        return found

    monkeypatch.setattr(copying, "new_partitions", stale)
    with pytest.raises(ConcurrentRunError) as caught:
        series(data_api, s3_bucket, timed).run()
    assert caught.value.retryable
    rows, journal_rows, point = state(data_api)
    assert ([r[0] for r in rows], len(journal_rows), point) == (["a", "b"], 2, "series/2014-11-04")
    monkeypatch.setattr(copying, "new_partitions", original)
    assert series(data_api, s3_bucket, timed).run().rows_loaded == 1
    rows, journal_rows, point = state(data_api)
    assert ([r[0] for r in rows], len(journal_rows), point) == (
        ["a", "b", "c"],
        3,
        "series/2014-11-05",
    )
