"""Crash points through the Data API: a run that dies at a boundary of its calls (before or
after a part's batch, between parts, before the step's closing batch) leaves data and journal
agreeing, and the next run finishes the work with no row twice and none lost.

The run is stopped by an exception that no ``except Exception`` catches (as a kill would be:
nothing after it runs, and only what a finished batch committed stays); the Data API
stand-in commits a batch whole or not at all, as the Data API does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import sqlalchemy as sa

from arbalest import Pipeline, RedshiftDataAPI, journal
from arbalest.backends import _redshift_driver
from tests.fixtures.redshift_data import FakeDataAPI
from tests.fixtures.servers import redshift_stand_in

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

ROLE = "arn:aws:iam::123456789012:role/ArbalestLoader"
OBJECTS = 12  # more than one part holds: the step commits in two batches


class Killed(BaseException):
    """The process dying at the crash point."""


#: Where the run dies: before or after its Nth batch (the first creates ``_arbalest_lock``,
#: then come the parts of the load, 12 objects in several parts, then the step's closing
#: batch, which rewrites the journal rows with their rejected counts).
POINTS = [(1, "after"), (2, "after"), (3, "before"), (5, "before"), (5, "after")]


@pytest.fixture(params=["provisioned", "serverless"])
def standin(
    request: pytest.FixtureRequest, postgres_schema: str, s3_endpoint: str
) -> Iterator[Any]:
    with redshift_stand_in(postgres_schema, serverless=request.param == "serverless") as found:
        yield found


def _put(bucket: str) -> None:
    client = boto3.client("s3")
    for i in range(OBJECTS):
        body = "".join(json.dumps({"id": f"r{i}-{j}", "n": j}) + "\n" for j in range(3))
        client.put_object(Bucket=bucket, Key=f"lake/events/{i:02d}.json", Body=body.encode())


@pytest.mark.parametrize(("call", "when"), POINTS, ids=[f"{w}-batch-{c}" for c, w in POINTS])
@pytest.mark.parametrize("mode", ["incremental", "merge"])
def test_a_run_killed_at_a_batch_boundary_loses_and_doubles_nothing(
    standin: Any,
    s3_bucket: str,
    event: Any,
    monkeypatch: pytest.MonkeyPatch,
    call: int,
    when: str,
    mode: str,
) -> None:
    _put(s3_bucket)
    api = RedshiftDataAPI(workgroup="wg", database="test", client=FakeDataAPI(standin))
    pipeline = Pipeline(api, store=f"s3://{s3_bucket}/lake", iam_role=ROLE).copy(
        event, "events", mode=mode
    )
    original = _redshift_driver.Connection.send_batch
    calls: list[int] = []

    def dying(self: Any, statements: Any) -> Any:
        calls.append(1)
        if len(calls) == call and when == "before":
            raise Killed(f"{when} batch {call}")
        done = original(self, statements)
        if len(calls) == call and when == "after":
            raise Killed(f"{when} batch {call}")
        return done

    with monkeypatch.context() as mp:
        mp.setattr(_redshift_driver.Connection, "send_batch", dying)
        with pytest.raises(Killed):
            pipeline.run()
    assert len(calls) == call  # the point was reached
    with standin.engine.connect() as conn:
        if journal.table_exists(conn, journal.JOURNAL):
            j = journal.JOURNAL
            journaled = dict(conn.execute(sa.select(j.c.key, j.c.rows_loaded)).all())
            loaded = conn.execute(sa.select(sa.func.count()).select_from(event.__table__)).scalar()
            # what the journal says was loaded is exactly what is there
            assert sum(journaled.values()) == loaded
            assert loaded == 3 * len(journaled)
    pipeline.run()
    with standin.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.select(event.__table__.c.id))]
        keys = conn.execute(sa.select(journal.JOURNAL.c.key)).scalars().all()
    assert sorted(ids) == sorted(f"r{i}-{j}" for i in range(OBJECTS) for j in range(3))
    assert len(keys) == OBJECTS
    assert pipeline.run().rows_loaded == 0
