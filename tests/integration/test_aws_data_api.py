"""Opt-in (``pytest -m aws``): the Redshift example and a load with rejects, through the real
Redshift Data API, against the workgroup or cluster named by the environment:

- ``ARBALEST_TEST_DATA_API_URL``: ``redshift+data:///DATABASE?workgroup=NAME`` (or
  ``cluster=ID`` with ``db_user=`` or ``secret_arn=``);
- ``ARBALEST_TEST_S3_BUCKET``: a bucket the warehouse may read, where the test writes under
  ``arbalest-test/<random>/`` and deletes what it wrote;
- ``ARBALEST_TEST_IAM_ROLE``: the role the ``COPY`` assumes.

Without them every test here is skipped, with that reason. docs/warehouses.md says what the
calling identity needs."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import sqlalchemy as sa

from arbalest import Pipeline, Schema
from arbalest.pipeline.engines import create_engine
from tests.fixtures.real_aws import drop_loaded, random_event

pytestmark = [pytest.mark.aws]

NAMES = ("ARBALEST_TEST_DATA_API_URL", "ARBALEST_TEST_S3_BUCKET", "ARBALEST_TEST_IAM_ROLE")
REAL = {name: os.environ.get(name) for name in NAMES}
needs_aws = pytest.mark.skipif(
    not all(REAL.values()),
    reason=f"set {', '.join(NAMES)} to run against a real workgroup or cluster",
)


@pytest.fixture
def lake() -> Iterator[str]:  # pragma: no cover - opt-in
    """A fresh prefix in the real bucket, emptied afterwards."""
    prefix = f"arbalest-test/{uuid.uuid4().hex}"
    yield prefix
    client = boto3.client("s3")
    bucket = str(REAL["ARBALEST_TEST_S3_BUCKET"])
    for item in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        client.delete_object(Bucket=bucket, Key=item["Key"])


@needs_aws
def test_a_load_with_rejects_through_the_data_api(
    base: type[Schema], lake: str
) -> None:  # pragma: no cover - opt-in
    RealEvent = random_event(base)

    bucket = str(REAL["ARBALEST_TEST_S3_BUCKET"])
    body = b'{"id": "a", "n": 1}\n{"id": "b", "n": "x"}\n'
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{lake}/events/a.json", Body=body)
    engine = create_engine(str(REAL["ARBALEST_TEST_DATA_API_URL"]))
    try:
        pipeline = Pipeline(
            engine, store=f"s3://{bucket}/{lake}", iam_role=REAL["ARBALEST_TEST_IAM_ROLE"]
        ).copy(RealEvent, "events", max_errors=1)
        assert pipeline.plan().steps[0].keys == ["events/a.json"]
        assert pipeline.validate().steps[0].rows_rejected == 1
        result = pipeline.run()
        assert result.rows_loaded == 1
        assert [(r.line, r.column, r.code) for r in result.steps[0].rejects] == [(2, "n", 1207)]
        assert pipeline.run().rows_loaded == 0
    finally:
        drop_loaded(engine, RealEvent)
        engine.dispose()


@needs_aws
def test_the_redshift_example_through_the_data_api(lake: str) -> None:  # pragma: no cover - opt-in
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "examples" / "s3_to_redshift.py"
    spec = importlib.util.spec_from_file_location("example_s3_to_redshift", path)
    assert spec is not None
    assert spec.loader is not None
    example: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    bucket = str(REAL["ARBALEST_TEST_S3_BUCKET"])
    order = {
        "id": uuid.uuid4().hex,
        "customerId": 1,
        "total": "1.00",
        "createdAt": "2026-01-02T00:00:00Z",
        "paid": True,
    }
    boto3.client("s3").put_object(
        Bucket=bucket, Key=f"{lake}/raw/orders/a.json", Body=json.dumps(order).encode()
    )
    warehouse = create_engine(str(REAL["ARBALEST_TEST_DATA_API_URL"]))
    try:
        pipeline = example.build(warehouse, bucket, str(REAL["ARBALEST_TEST_IAM_ROLE"]))
        pipeline = pipeline.using(store=f"s3://{bucket}/{lake}/raw")
        assert pipeline.run().rows_loaded == 1
    finally:
        warehouse.dispose()


@needs_aws
def test_a_step_of_many_objects_is_one_transaction_through_a_session(
    base: type[Schema], lake: str
) -> None:  # pragma: no cover - opt-in
    """The Data API facts the staging relies on (docs/warehouses.md): temporary tables that
    outlive a call in one session, a session named alone by its SessionId, a keep-alive of
    0 that closes it, a batch that is one transaction."""
    from arbalest.backends.redshift_data import STAGED_PER_BATCH

    ManyEvent = random_event(base)

    bucket = str(REAL["ARBALEST_TEST_S3_BUCKET"])
    count = STAGED_PER_BATCH + 1  # two staging batches
    for i in range(count):
        body = json.dumps({"id": f"r{i}", "n": i}).encode()
        boto3.client("s3").put_object(Bucket=bucket, Key=f"{lake}/many/{i:02d}.json", Body=body)
    engine = create_engine(str(REAL["ARBALEST_TEST_DATA_API_URL"]))
    try:
        pipeline = Pipeline(
            engine, store=f"s3://{bucket}/{lake}", iam_role=REAL["ARBALEST_TEST_IAM_ROLE"]
        ).copy(ManyEvent, "many", mode="replace")
        assert pipeline.run().rows_loaded == count
        assert pipeline.run().rows_loaded == count  # a replace: all again, none twice
        with engine.connect() as conn:
            table = ManyEvent.__table__
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == count
    finally:
        drop_loaded(engine, ManyEvent)
        engine.dispose()
