"""Crash points through the Data API: a run that dies at a boundary of its calls leaves data
and journal agreeing, and the next run finishes the work with no row twice and none lost.

A step of more objects than one batch stages them in a Data API session, batch by batch
(touching only the session's temporary tables), then moves them into the target with their
journal rows in one final batch; the runner's closing batch rewrites the journal rows. Here
a staging batch holds two objects, so the step's five take three; the points below are one
of each kind of boundary: after the batch that creates ``_arbalest_lock`` (1), between two
staging batches (2, 3), after the last staging batch with the final one not sent (5,
before), and after the final batch with the closing one not sent (5, after).

Parquet and CSV objects stage the same way (each through a load table of its own). A time
series stages each partition in the same session, and its commit sends the step's last batch
(rows, journal rows and cursor) to it: killed at any boundary, rows, journal and cursor
moved together or not at all.

The run is stopped by an exception that no ``except Exception`` catches (as a kill would be:
nothing after it runs, and only what a finished batch committed stays); the Data API
stand-in commits a batch whole or not at all, as the Data API does."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from arbalest import Pipeline, SortedSources, String, Timestamp, journal
from arbalest.backends import _redshift_driver, redshift_data
from tests.fixtures.redshift import ROLE
from tests.fixtures.redshift_data import data_api_stand_in

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

OBJECTS = 5  # three staging batches of two (``small_batches``)

#: ``(batch, when, mode, serverless, format)``: where the run dies, and for which step.
POINTS = [
    (1, "after", "incremental", False, "json"),
    (2, "after", "incremental", False, "json"),
    (5, "before", "incremental", False, "json"),
    (5, "after", "incremental", False, "json"),
    (3, "after", "merge", False, "json"),
    (5, "after", "merge", False, "json"),
    (3, "after", "replace", True, "json"),
    (5, "before", "incremental", True, "json"),
    # Parquet and CSV objects stage two a batch too, through load tables of their own
    (3, "after", "incremental", False, "csv"),
    (5, "before", "merge", False, "csv"),
    (5, "after", "incremental", True, "parquet"),
]


class Killed(BaseException):
    """The process dying at the crash point."""


def _dying(calls: list[int], call: int, when: str) -> Any:
    """``send_batch``, killing the run before or after its ``call``-th batch."""
    original = _redshift_driver.Connection.send_batch

    def dying(self: Any, statements: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == call and when == "before":
            raise Killed(f"{when} batch {call}")
        done = original(self, statements, **kw)
        if len(calls) == call and when == "after":
            raise Killed(f"{when} batch {call}")
        return done

    return dying


@pytest.fixture(scope="module")
def lake(s3_endpoint: str) -> str:
    """One bucket of ``OBJECTS`` objects for the module (the runs only read it)."""
    name = f"crashes-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    for i in range(OBJECTS):
        ids = [f"r{i}-{j}" for j in range(3)]
        body = "".join(json.dumps({"id": k, "n": j}) + "\n" for j, k in enumerate(ids))
        client.put_object(Bucket=name, Key=f"lake/json/{i:02d}.json", Body=body.encode())
        body = "n,id\n" + "".join(f"{j},{k}\n" for j, k in enumerate(ids))
        client.put_object(Bucket=name, Key=f"lake/csv/{i:02d}.csv", Body=body.encode())
        table = pa.table({"id": ids, "n": pa.array(range(3), pa.int32())})
        out = io.BytesIO()
        pq.write_table(table, out)
        client.put_object(Bucket=name, Key=f"lake/parquet/{i:02d}.parquet", Body=out.getvalue())
    return name


def _state(standin: Any, event: Any) -> tuple[dict[str, int], list[str]]:
    with standin.engine.connect() as conn:
        if not journal.table_exists(conn, journal.JOURNAL):
            return {}, []
        j = journal.JOURNAL
        journaled = dict(conn.execute(sa.select(j.c.key, j.c.rows_loaded)).all())
        ids = [r[0] for r in conn.execute(sa.select(event.__table__.c.id))]
    return journaled, ids


@pytest.mark.parametrize(
    ("call", "when", "mode", "serverless", "fmt"),
    POINTS,
    ids=[f"{f}-{m}-{w}-batch-{c}{'-serverless' if s else ''}" for c, w, m, s, f in POINTS],
)
def test_a_run_killed_at_a_batch_boundary_loses_and_doubles_nothing(
    postgres_schema: str,
    lake: str,
    event: Any,
    monkeypatch: pytest.MonkeyPatch,
    call: int,
    when: str,
    mode: str,
    serverless: bool,
    fmt: str,
) -> None:
    monkeypatch.setattr(redshift_data, "STAGED_PER_BATCH", 2)
    with data_api_stand_in(postgres_schema, serverless=serverless) as found:
        pipeline = Pipeline(found.api, store=f"s3://{lake}/lake", iam_role=ROLE).copy(
            event, fmt, mode=mode
        )
        calls: list[int] = []
        dying = _dying(calls, call, when)

        with monkeypatch.context() as mp:
            mp.setattr(_redshift_driver.Connection, "send_batch", dying)
            with pytest.raises(Killed):
                pipeline.run()
        assert len(calls) == call  # the point was reached
        journaled, ids = _state(found.standin, event)
        # all or nothing: what the journal says was loaded is exactly what is there
        assert len(journaled) in (0, OBJECTS)
        assert sum(journaled.values()) == len(ids) == 3 * len(journaled)
        assert (len(journaled) == OBJECTS) == (call == 5 and when == "after")
        pipeline.run()
        journaled, ids = _state(found.standin, event)
        assert sorted(ids) == sorted(f"r{i}-{j}" for i in range(OBJECTS) for j in range(3))
        assert sorted(journaled) == [f"{fmt}/{i:02d}.{fmt}" for i in range(OBJECTS)]
        if mode != "replace":
            assert pipeline.run().rows_loaded == 0


PARTITIONS = 4  # one object each: a staging batch each, then the step's last batch (6)
SERIES_POINTS = [(1, "after"), (3, "after"), (6, "before"), (6, "after")]


@pytest.fixture(scope="module")
def series_lake(s3_endpoint: str) -> str:
    name = f"series-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    for day in range(1, PARTITIONS + 1):
        records = [{"id": f"d{day}-{j}", "t": f"2014-11-{day:02d}T0{j}:00:00"} for j in range(3)]
        body = "".join(json.dumps(r) + "\n" for r in records)
        key = f"lake/series/2014-11-{day:02d}/part.json"
        client.put_object(Bucket=name, Key=key, Body=body.encode())
    return name


@pytest.mark.parametrize(
    ("call", "when"), SERIES_POINTS, ids=[f"{w}-batch-{c}" for c, w in SERIES_POINTS]
)
def test_a_time_series_killed_at_a_batch_boundary_loses_and_doubles_nothing(
    postgres_schema: str,
    series_lake: str,
    base: Any,
    monkeypatch: pytest.MonkeyPatch,
    call: int,
    when: str,
) -> None:
    class Timed(base):  # type: ignore[misc]
        __tablename__ = "timed_crashes"
        id = String(10)
        t = Timestamp()

    with data_api_stand_in(postgres_schema, serverless=False) as found:
        standin = found.standin
        store = f"s3://{series_lake}/lake"
        pipeline = Pipeline(found.api, store=store, iam_role=ROLE).time_series(
            Timed, SortedSources(store, "series"), series_column="t"
        )
        calls: list[int] = []
        dying = _dying(calls, call, when)

        def state() -> tuple[dict[str, int], list[str], str | None]:
            with standin.engine.connect() as conn:
                if not journal.table_exists(conn, journal.CURSORS):
                    return {}, [], None
                j = journal.JOURNAL
                journaled = dict(conn.execute(sa.select(j.c.key, j.c.rows_loaded)).all())
                ids = [r[0] for r in conn.execute(sa.select(Timed.__table__.c.id))]
                point = conn.execute(sa.select(journal.CURSORS.c.point)).scalar()
            return journaled, ids, point

        everything = sorted(f"d{d}-{j}" for d in range(1, PARTITIONS + 1) for j in range(3))
        with monkeypatch.context() as mp:
            mp.setattr(_redshift_driver.Connection, "send_batch", dying)
            with pytest.raises(Killed):
                pipeline.run()
        assert len(calls) == call  # the point was reached
        journaled, ids, point = state()
        done = call == 6 and when == "after"
        # all or nothing: rows, journal and cursor moved together, or none of them
        assert sorted(ids) == (everything if done else [])
        assert len(journaled) == (PARTITIONS if done else 0)
        assert point == ("series/2014-11-04" if done else None)
        pipeline.run()
        journaled, ids, point = state()
        assert sorted(ids) == everything
        assert sum(journaled.values()) == len(everything)
        assert point == "series/2014-11-04"
        assert pipeline.run().rows_loaded == 0
