"""Crash points through the Data API: a run that dies at a boundary of its calls leaves data
and journal agreeing, and the next run finishes the work with no row twice and none lost.

A step of more objects than one batch stages them in a Data API session, batch by batch
(touching only the session's temporary tables), then moves them into the target with their
journal rows in one final batch; the runner's closing batch rewrites the journal rows. Here
a staging batch holds two objects, so the step's five take three; the points below are one
of each kind of boundary: after the batch that creates ``_arbalest_lock`` (1), between two
staging batches (2, 3), after the last staging batch with the final one not sent (5,
before), and after the final batch with the closing one not sent (5, after).

The run is stopped by an exception that no ``except Exception`` catches (as a kill would be:
nothing after it runs, and only what a finished batch committed stays); the Data API
stand-in commits a batch whole or not at all, as the Data API does."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
import sqlalchemy as sa

from arbalest import Pipeline, RedshiftDataAPI, journal
from arbalest.backends import _redshift_driver, redshift_data
from tests.fixtures.redshift_data import FakeDataAPI
from tests.fixtures.servers import redshift_stand_in

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

ROLE = "arn:aws:iam::123456789012:role/ArbalestLoader"
OBJECTS = 5  # three staging batches of two (``small_batches``)

#: ``(batch, when, mode, serverless)``: where the run dies, and for which step.
POINTS = [
    (1, "after", "incremental", False),
    (2, "after", "incremental", False),
    (5, "before", "incremental", False),
    (5, "after", "incremental", False),
    (3, "after", "merge", False),
    (5, "after", "merge", False),
    (3, "after", "replace", True),
    (5, "before", "incremental", True),
]


class Killed(BaseException):
    """The process dying at the crash point."""


@pytest.fixture(scope="module")
def lake(s3_endpoint: str) -> str:
    """One bucket of ``OBJECTS`` objects for the module (the runs only read it)."""
    name = f"crashes-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    for i in range(OBJECTS):
        body = "".join(json.dumps({"id": f"r{i}-{j}", "n": j}) + "\n" for j in range(3))
        client.put_object(Bucket=name, Key=f"lake/events/{i:02d}.json", Body=body.encode())
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
    ("call", "when", "mode", "serverless"),
    POINTS,
    ids=[f"{m}-{w}-batch-{c}{'-serverless' if s else ''}" for c, w, m, s in POINTS],
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
) -> None:
    monkeypatch.setattr(redshift_data, "STAGED_PER_BATCH", 2)
    with redshift_stand_in(postgres_schema, serverless=serverless) as standin:
        client = FakeDataAPI(standin, polls=0)
        api = RedshiftDataAPI(workgroup="wg", database="test", client=client)
        pipeline = Pipeline(api, store=f"s3://{lake}/lake", iam_role=ROLE).copy(
            event, "events", mode=mode
        )
        original = _redshift_driver.Connection.send_batch
        calls: list[int] = []

        def dying(self: Any, statements: Any, **kw: Any) -> Any:
            calls.append(1)
            if len(calls) == call and when == "before":
                raise Killed(f"{when} batch {call}")
            done = original(self, statements, **kw)
            if len(calls) == call and when == "after":
                raise Killed(f"{when} batch {call}")
            return done

        try:
            with monkeypatch.context() as mp:
                mp.setattr(_redshift_driver.Connection, "send_batch", dying)
                with pytest.raises(Killed):
                    pipeline.run()
            assert len(calls) == call  # the point was reached
            journaled, ids = _state(standin, event)
            # all or nothing: what the journal says was loaded is exactly what is there
            assert len(journaled) in (0, OBJECTS)
            assert sum(journaled.values()) == len(ids) == 3 * len(journaled)
            assert (len(journaled) == OBJECTS) == (call == 5 and when == "after")
            pipeline.run()
            journaled, ids = _state(standin, event)
            assert sorted(ids) == sorted(f"r{i}-{j}" for i in range(OBJECTS) for j in range(3))
            assert sorted(journaled) == [f"events/{i:02d}.json" for i in range(OBJECTS)]
            if mode != "replace":
                assert pipeline.run().rows_loaded == 0
        finally:
            client.close()
