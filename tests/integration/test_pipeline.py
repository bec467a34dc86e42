"""Pipelines on DuckDB and PostgreSQL: modes, the journal, SQL steps, validate, plan, locks."""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import (
    ConcurrentRunError,
    CopyError,
    Pipeline,
    PipelineError,
    SQLStepError,
    StoreUnavailableError,
    String,
    journal,
)
from arbalest.stores.base import ObjectInfo
from arbalest.stores.local import LocalStore

SECONDS = re.compile(r"\d+\.\d\d")


@pytest.fixture
def event(make_event: Callable[..., Any]) -> Any:
    return make_event(note=String(20))


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    root.mkdir()
    return root


def put(lake: Path, key: str, records: list[dict[str, Any]], mtime: float | None = None) -> None:
    path = lake / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def rows(
    engine: sa.Engine, sql: str = "SELECT id, n, note FROM events ORDER BY id"
) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def journal_keys(engine: sa.Engine, target: str = "events") -> dict[str, int]:
    with engine.connect() as conn:
        query = sa.select(journal.JOURNAL.c.key, journal.JOURNAL.c.rows_loaded).where(
            journal.JOURNAL.c.target == target
        )
        return {str(k): int(r) for k, r in conn.execute(query)}


def test_incremental_loads_each_object_once(warehouse: sa.Engine, lake: Path, event: Any) -> None:
    put(lake, "events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": 2}])
    pipeline = Pipeline(warehouse, store=lake).copy(event, "events")
    first = pipeline.run()
    assert (first.steps[0].objects_loaded, first.rows_loaded) == (1, 2)
    second = pipeline.run()
    assert (second.steps[0].objects_loaded, second.rows_loaded) == (0, 0)
    put(lake, "events/b.json", [{"id": "b1", "n": 3}])
    third = pipeline.run()
    assert (third.steps[0].objects_loaded, third.rows_loaded) == (1, 1)
    assert rows(warehouse) == [("a1", 1, None), ("a2", 2, None), ("b1", 3, None)]
    assert journal_keys(warehouse) == {"events/a.json": 2, "events/b.json": 1}


def test_source_is_read_as_a_folder(warehouse: sa.Engine, lake: Path, event: Any) -> None:
    put(lake, "events/a.json", [{"id": "in"}])
    put(lake, "events_old/a.json", [{"id": "old"}])
    put(lake, "_arbalest/manifest.json", [{"id": "meta"}])
    Pipeline(warehouse, store=lake).copy(event, "events").run()
    assert [r[0] for r in rows(warehouse)] == ["in"]
    everything = Pipeline(warehouse, store=lake).copy(event, "", mode="replace").run()
    assert everything.steps[0].objects_loaded == 2  # never the metadata folder
    assert [r[0] for r in rows(warehouse)] == ["in", "old"]


def test_changed_objects_are_reported_not_reloaded_by_incremental(
    warehouse: sa.Engine, lake: Path, event: Any
) -> None:
    put(lake, "events/a.json", [{"id": "a1", "n": 1}], mtime=1_000_000)
    pipeline = Pipeline(warehouse, store=lake).copy(event, "events")
    pipeline.run()
    put(lake, "events/a.json", [{"id": "a1", "n": 9}], mtime=2_000_000)
    result = pipeline.run()
    assert result.steps[0].objects_changed == ["events/a.json"]
    assert result.rows_loaded == 0
    assert rows(warehouse) == [("a1", 1, None)]
    assert pipeline.plan().steps[0].objects_changed == ["events/a.json"]
    assert "changed since it was loaded" in str(result)


def test_replace_swaps_the_whole_table(warehouse: sa.Engine, lake: Path, event: Any) -> None:
    put(lake, "users/a.json", [{"id": "a"}, {"id": "b"}])
    put(lake, "users/b.json", [{"id": "c"}])
    pipeline = Pipeline(warehouse, store=lake).copy(event, "users", mode="replace")
    assert pipeline.run().rows_loaded == 3
    (lake / "users/a.json").unlink()
    put(lake, "users/c.json", [{"id": "d", "n": 4}])
    result = pipeline.run()
    assert (result.steps[0].objects_loaded, result.rows_loaded) == (2, 2)
    assert rows(warehouse) == [("c", None, None), ("d", 4, None)]
    assert set(journal_keys(warehouse)) == {"users/b.json", "users/c.json"}
    (lake / "users/b.json").unlink()
    (lake / "users/c.json").unlink()
    assert pipeline.run().rows_loaded == 0
    assert rows(warehouse) == []


def test_merge_upserts_and_the_newest_record_wins(
    warehouse: sa.Engine, lake: Path, event: Any
) -> None:
    put(lake, "m/1.json", [{"id": "k1", "n": 1}, {"id": "k2", "n": 1}], mtime=1_000)
    put(lake, "m/0-later.json", [{"id": "k1", "n": 2}, {"id": "k1", "n": 3}], mtime=2_000)
    pipeline = Pipeline(warehouse, store=lake).copy(event, "m", mode="merge")
    result = pipeline.run()
    assert result.rows_loaded == 4
    # the later object wins over the earlier, whatever the keys' order; the last line wins
    assert rows(warehouse) == [("k1", 3, None), ("k2", 1, None)]
    put(lake, "m/2.json", [{"id": "k2", "n": 5, "note": "new"}, {"id": "k3", "n": 6}], mtime=3_000)
    pipeline.run()
    assert rows(warehouse) == [("k1", 3, None), ("k2", 5, "new"), ("k3", 6, None)]
    # a changed object is loaded again by merge
    put(lake, "m/1.json", [{"id": "k2", "n": 7}], mtime=4_000)
    result = pipeline.run()
    assert result.steps[0].objects_loaded == 1
    assert rows(warehouse) == [("k1", 3, None), ("k2", 7, None), ("k3", 6, None)]
    assert journal_keys(warehouse)["m/1.json"] == 1


def test_sql_step_with_bound_parameters(warehouse: sa.Engine, lake: Path, event: Any) -> None:
    put(lake, "events/a.json", [{"id": "a", "n": 1}, {"id": "b", "n": 5}])
    result = (
        Pipeline(warehouse, store=lake)
        .copy(event, "events")
        .sql(
            "CREATE TABLE big AS SELECT id FROM events WHERE n >= :limit",
            ("INSERT INTO big VALUES (%s)", "x'); DROP TABLE events; --"),
            limit=3,
        )
        .run()
    )
    assert [s.label for s in result.steps][1].startswith("sql: CREATE TABLE big")
    assert rows(warehouse, "SELECT id FROM big ORDER BY id") == [
        ("b",),
        ("x'); DROP TABLE events; --",),
    ]
    assert len(rows(warehouse)) == 2


def test_a_failed_sql_step_keeps_earlier_steps_and_rolls_itself_back(
    warehouse: sa.Engine, lake: Path, event: Any
) -> None:
    put(lake, "events/a.json", [{"id": "a"}])
    pipeline = (
        Pipeline(warehouse, store=lake)
        .copy(event, "events")
        .sql("CREATE TABLE partial (x INTEGER)", "INSERT INTO no_such_table VALUES (1)")
    )
    with pytest.raises(SQLStepError) as info:
        pipeline.run()
    assert info.value.step.startswith("sql: CREATE TABLE partial")
    assert "no_such_table" in str(info.value)
    assert rows(warehouse) == [("a", None, None)]
    with warehouse.connect() as conn:
        assert not journal.table_exists(conn, sa.Table("partial", sa.MetaData()))


def test_validate_changes_nothing_and_sql_steps_see_new_tables(
    warehouse: sa.Engine, lake: Path, event: Any
) -> None:
    put(lake, "events/a.json", [{"id": "a", "n": 1}, {"id": "b", "n": "x"}])
    pipeline = (
        Pipeline(warehouse, store=lake)
        .copy(event, "events", max_errors=1)
        .sql("CREATE TABLE summary AS SELECT count(*) AS c FROM events")
    )
    result = pipeline.validate()
    assert result.validated
    assert result.rows_loaded == 1
    assert result.rows_rejected == 1
    assert "validated" in str(result)
    with warehouse.connect() as conn:
        assert not journal.table_exists(conn, event.__table__)
        assert not journal.table_exists(conn, journal.JOURNAL)
    # and a real run afterwards does the work
    assert pipeline.run().rows_loaded == 1


def test_plan_lists_ddl_objects_and_sql_without_writing(
    warehouse: sa.Engine, lake: Path, event: Any
) -> None:
    put(lake, "events/a.json", [{"id": "a"}])
    put(lake, "events/b.json", [{"id": "b"}])
    pipeline = Pipeline(warehouse, store=lake).copy(event, "events").sql("SELECT :x", x=1)
    plan = pipeline.plan()
    copy, sql = plan.steps
    assert copy.label == "copy events (incremental)"
    assert copy.keys == ["events/a.json", "events/b.json"]
    assert len(copy.ddl) == 1
    assert copy.ddl[0].startswith("CREATE TABLE events")
    assert sql.sql == ["SELECT :x"]
    text = str(plan)
    assert "objects to load: 2" in text
    assert "events/a.json" in text
    with warehouse.connect() as conn:
        assert not journal.table_exists(conn, event.__table__)
    pipeline.run()
    again = pipeline.plan().steps[0]
    assert (again.keys, again.ddl) == ([], [])


def test_a_second_run_waits_for_the_lock_then_fails(
    warehouse: sa.Engine, lake: Path, event: Any
) -> None:
    put(lake, "events/a.json", [{"id": "a"}])
    pipeline = Pipeline(warehouse, store=lake, lock_timeout=0.3).copy(event, "events")
    held = threading.Event()
    release = threading.Event()

    def hold_the_lock() -> None:
        with (
            warehouse.connect() as conn,
            conn.begin(),
            pipeline.backend.lock(conn, "events", timeout=5),
        ):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with pytest.raises(ConcurrentRunError) as info:
            pipeline.run()
        assert time.monotonic() - started >= 0.25
        assert info.value.step == "copy events (incremental)"
        assert info.value.retryable
    finally:
        release.set()
        holder.join()
    assert pipeline.run().rows_loaded == 1


def test_step_errors_name_the_step_and_keep_the_warehouse(
    warehouse: sa.Engine, lake: Path, event: Any
) -> None:
    put(lake, "events/ok.json", [{"id": "ok"}])
    Pipeline(warehouse, store=lake).copy(event, "events").run()
    put(lake, "events/z.json", [{"id": "z"}, {"n": 1}])
    with pytest.raises(PipelineError) as info:
        Pipeline(warehouse, store=lake).copy(event, "events").run()
    assert info.value.step == "copy events (incremental)"
    assert "events/z.json:2" in str(info.value)
    assert rows(warehouse) == [("ok", None, None)]
    assert set(journal_keys(warehouse)) == {"events/ok.json"}


class Unreachable(LocalStore):
    """A store whose listing fails as S3 does when it does not answer."""

    def list(self, prefix: str = "", *, exclude: str | None = None) -> Iterator[ObjectInfo]:
        raise StoreUnavailableError(f"cannot list {prefix}: S3 did not answer")


def test_a_store_outage_in_a_step_stays_retryable(
    warehouse: sa.Engine, lake: Path, event: Any
) -> None:
    pipeline = Pipeline(warehouse, store=Unreachable(lake)).copy(event, "events")
    with pytest.raises(PipelineError) as info:
        pipeline.run()
    assert isinstance(info.value, StoreUnavailableError)
    assert info.value.retryable
    assert info.value.step == "copy events (incremental)"
    assert str(info.value) == (
        "step 'copy events (incremental)' failed: cannot list events/: S3 did not answer"
    )
    assert isinstance(info.value.__cause__, StoreUnavailableError)
    copy = pickle.loads(pickle.dumps(info.value))  # Luigi workers send errors between processes
    assert (type(copy), copy.step, copy.retryable) == (type(info.value), info.value.step, True)


def test_a_run_logs_the_pipelines_name(
    warehouse: sa.Engine, lake: Path, event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with warehouse.connect():
        pass  # the database exists (validating a missing DuckDB file says so in the log)
    caplog.set_level(logging.INFO, logger="arbalest")
    put(lake, "events/a.json", [{"id": "a", "n": 1, "note": "x"}])  # no warning logged
    Pipeline(warehouse, store=lake, name="nightly").copy(event, "events").validate()
    Pipeline(warehouse, store=lake, name="nightly").copy(event, "events").run()
    Pipeline(warehouse, store=lake).copy(event, "events").run()
    messages = [SECONDS.sub("T", r.getMessage()) for r in caplog.records]
    assert messages == [
        "pipeline nightly: validating 1 step(s), rolled back at the end",
        "nightly: copy events (incremental): 1 object(s), 1 row(s), 0 rejected, T s",
        "pipeline nightly: validated in T s: 1 row(s) loaded, 0 rejected",
        "pipeline nightly: running 1 step(s)",
        "nightly: copy events (incremental): 1 object(s), 1 row(s), 0 rejected, T s",
        "pipeline nightly: done in T s: 1 row(s) loaded, 0 rejected",
        "pipeline: running 1 step(s)",
        "copy events (incremental): 0 object(s), 0 row(s), 0 rejected, T s",
        "pipeline: done in T s: 0 row(s) loaded, 0 rejected",
    ]


def test_status_from_the_journal(warehouse: sa.Engine, lake: Path, event: Any) -> None:
    put(lake, "events/a.json", [{"id": "a"}, {"id": "b"}, {"id": "c", "n": "bad"}])
    Pipeline(warehouse, store=lake).copy(event, "events", max_errors=5).run()
    with warehouse.connect() as conn:
        (status,) = journal.status(conn)
    assert (status.target, status.objects, status.rows_loaded, status.rows_rejected) == (
        "events",
        1,
        2,
        1,
    )
    assert status.last_loaded_at is not None


@pytest.mark.s3
def test_loading_from_s3(warehouse: sa.Engine, s3_bucket: str, event: Any) -> None:
    import boto3

    client = boto3.client("s3")
    for i in range(3):
        body = "".join(json.dumps({"id": f"s{i}-{j}", "n": j}) + "\n" for j in range(50))
        client.put_object(Bucket=s3_bucket, Key=f"lake/events/{i}.json", Body=body.encode())
    client.put_object(Bucket=s3_bucket, Key="lake/events_old/x.json", Body=b'{"id": "old"}\n')
    pipeline = Pipeline(warehouse, store=f"s3://{s3_bucket}/lake").copy(event, "events")
    assert pipeline.run().rows_loaded == 150
    assert pipeline.run().rows_loaded == 0
    assert len(rows(warehouse)) == 150


def test_duplicate_primary_key_fails_the_step_and_commits_nothing(
    warehouse: sa.Engine, lake: Path, event: Any
) -> None:
    put(lake, "events/a.json", [{"id": "a1", "n": 1}])
    pipeline = Pipeline(warehouse, store=lake).copy(event, "events")
    pipeline.run()
    put(lake, "events/b.json", [{"id": "b1", "n": 2}, {"id": "a1", "n": 3}])
    with pytest.raises(CopyError, match="events") as caught:
        pipeline.run()
    assert "a1" in str(caught.value) or "primary key" in str(caught.value).lower()
    assert rows(warehouse) == [("a1", 1, None)]
    assert journal_keys(warehouse) == {"events/a.json": 1}
