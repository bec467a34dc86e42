"""The Redshift run lock, through the Redshift dialect on PostgreSQL (whose ``LOCK`` takes
the same ACCESS EXCLUSIVE table lock): one lock table per target, the journal too only under
SERIALIZABLE isolation, and first runs on a new warehouse that take turns creating tables."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import ConcurrentRunError, Integer, Pipeline, Schema, String, journal
from arbalest.backends.redshift import CREATION_LOCK, lock_table
from tests.fixtures.lakes import put_s3
from tests.fixtures.redshift import ROLE
from tests.fixtures.servers import redshift_stand_in

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

KINDS: dict[str, dict[str, Any]] = {
    "serializable": {"isolation": "Serializable"},
    "snapshot": {"isolation": "Snapshot Isolation"},
    "unknown-provisioned": {},  # STV_DB_ISOLATION_LEVEL unreadable: SERIALIZABLE assumed
    "serverless": {"serverless": True},  # unreadable there: SNAPSHOT, its default
}


@pytest.fixture
def tables(base: type[Schema]) -> tuple[Any, Any]:
    class Event(base):  # type: ignore[misc, valid-type]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        n = Integer()

    class User(base):  # type: ignore[misc, valid-type]
        __tablename__ = "users"
        id = String(36, primary_key=True)

    return Event, User


def one(standin: Any, bucket: str, schema: Any, **kw: Any) -> Pipeline:
    return Pipeline(standin.engine, store=f"s3://{bucket}/lake", iam_role=ROLE, **kw).copy(
        schema, schema.__tablename__
    )


def holding(engine: sa.Engine, *tables: sa.Table) -> Any:
    """A session of another run that holds ``LOCK tables`` until the block ends."""
    conn = engine.connect()
    transaction = conn.begin()
    conn.exec_driver_sql(f"LOCK {', '.join(t.name for t in tables)}")

    class Held:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            transaction.rollback()
            conn.close()

    return Held()


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_run_waits_only_for_runs_on_its_own_target_unless_serializable(
    kind: str, postgres_schema: str, s3_endpoint: str, s3_bucket: str, tables: Any
) -> None:
    event, user = tables
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "e1"}])
    put_s3(s3_bucket, "lake/users/a.json", [{"id": "u1"}])
    serializable = kind in ("serializable", "unknown-provisioned")
    with redshift_stand_in(postgres_schema, **KINDS[kind]) as standin:
        one(standin, s3_bucket, event).run()
        one(standin, s3_bucket, user).run()
        put_s3(s3_bucket, "lake/events/b.json", [{"id": "e2"}])
        put_s3(s3_bucket, "lake/users/b.json", [{"id": "u2"}])
        # another run is loading users: a run on events does not wait for it, one on users
        # does (with SERIALIZABLE isolation, that run holds the journal too: every run waits)
        held = (lock_table("users"), journal.JOURNAL) if serializable else (lock_table("users"),)
        with holding(standin.engine, *held):
            with pytest.raises(ConcurrentRunError) as info:
                one(standin, s3_bucket, user, lock_timeout=0.3).run()
            assert info.value.step == "copy users (incremental)"
            assert info.value.retryable
            if serializable:
                with pytest.raises(ConcurrentRunError) as info:
                    one(standin, s3_bucket, event, lock_timeout=0.3).run()
                assert "SERIALIZABLE isolation" in str(info.value)
            else:
                assert one(standin, s3_bucket, event, lock_timeout=0.3).run().rows_loaded == 1
        assert one(standin, s3_bucket, user).run().rows_loaded == 1
        assert one(standin, s3_bucket, event).run().rows_loaded == (1 if serializable else 0)


@pytest.mark.parametrize("kind", ["unknown-provisioned", "serverless"])
def test_first_runs_at_once_on_a_new_warehouse_take_turns_creating_the_tables(
    kind: str, postgres_schema: str, s3_endpoint: str, s3_bucket: str, tables: Any
) -> None:
    event, user = tables
    for n in range(3):
        put_s3(s3_bucket, f"lake/events/{n}.json", [{"id": f"e{n}-{i}"} for i in range(50)])
        put_s3(s3_bucket, f"lake/users/{n}.json", [{"id": f"u{n}-{i}"} for i in range(50)])
    errors: list[BaseException] = []
    with redshift_stand_in(postgres_schema, **KINDS[kind]) as standin:
        start = threading.Barrier(4)

        def run(schemas: tuple[Any, ...]) -> None:
            try:
                p = Pipeline(standin.engine, store=f"s3://{s3_bucket}/lake", iam_role=ROLE)
                for schema in schemas:
                    p = p.copy(schema, schema.__tablename__)
                start.wait()
                p.run()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        # two runs of the same pipeline, and two of the other order, all on a new warehouse
        threads = [
            threading.Thread(target=run, args=(order,))
            for order in ((event, user), (event, user), (user, event), (user, event))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not errors, errors
        with standin.engine.connect() as conn:
            ids = [
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT id FROM events UNION ALL SELECT id FROM users"
                )
            ]
            keys = conn.execute(sa.select(journal.JOURNAL.c.target, journal.JOURNAL.c.key)).all()
            made = {
                t.name
                for t in (CREATION_LOCK, lock_table("events"), lock_table("users"))
                if journal.table_exists(conn, t)
            }
    assert len(ids) == 300
    assert not [i for i, c in Counter(ids).items() if c > 1]
    assert sorted(keys) == sorted(
        (t, f"{t}/{n}.json") for t in ("events", "users") for n in range(3)
    )
    assert made == {"_arbalest_lock", lock_table("events").name, lock_table("users").name}
    # each object was copied once: the runs shared the work out, none loaded it twice
    assert len(standin.copies) == 6


def test_validate_on_a_new_warehouse_leaves_no_lock_table_behind(
    redshift_standin: Any, s3_bucket: str, tables: Any
) -> None:
    event, _ = tables
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "e1"}])
    assert one(redshift_standin, s3_bucket, event).validate().rows_loaded == 0
    with redshift_standin.engine.connect() as conn:
        for table in (CREATION_LOCK, lock_table("events"), journal.JOURNAL):
            assert not journal.table_exists(conn, table)
    # and plan() creates nothing either
    one(redshift_standin, s3_bucket, event).plan()
    with redshift_standin.engine.connect() as conn:
        assert not journal.table_exists(conn, CREATION_LOCK)


def test_a_warehouse_without_lock_tables_gets_them_under_the_creation_lock(
    redshift_standin: Any, s3_bucket: str, tables: Any
) -> None:
    """A warehouse an older Arbalest loaded has the journal and the target, not the lock
    tables: the next run creates them."""
    event, _ = tables
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "e1"}])
    one(redshift_standin, s3_bucket, event).run()
    with redshift_standin.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {lock_table('events').name}")
        conn.exec_driver_sql(f"DROP TABLE {CREATION_LOCK.name}")
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "e2"}])
    assert one(redshift_standin, s3_bucket, event).run().rows_loaded == 1
    with redshift_standin.engine.connect() as conn:
        assert journal.table_exists(conn, lock_table("events"))
        assert journal.table_exists(conn, CREATION_LOCK)


def test_creating_tables_times_out_when_another_run_holds_the_creation_lock(
    redshift_standin: Any, s3_bucket: str, tables: Any
) -> None:
    event, user = tables
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "e1"}])
    put_s3(s3_bucket, "lake/users/a.json", [{"id": "u1"}])
    one(redshift_standin, s3_bucket, event).run()  # creates _arbalest_lock
    with holding(redshift_standin.engine, CREATION_LOCK):
        with pytest.raises(ConcurrentRunError) as info:
            one(redshift_standin, s3_bucket, user, lock_timeout=0.3).run()  # a new table
        assert "creating Arbalest's tables" in str(info.value)
        # a target whose tables exist does not need it
        put_s3(s3_bucket, "lake/events/b.json", [{"id": "e2"}])
        assert one(redshift_standin, s3_bucket, event, lock_timeout=0.3).run().rows_loaded == 1
