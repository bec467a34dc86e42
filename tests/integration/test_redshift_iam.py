"""IAM sign-in, end to end: a ``redshift+psycopg2://...?iam=true`` pipeline asks moto's
Redshift for temporary credentials (``GetClusterCredentials``; moto checks the cluster
exists) and signs in to the stand-in as the ``IAM:<user>`` they name; Serverless's
``GetCredentials``, which moto lacks, through a botocore Stubber."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from botocore.stub import Stubber

from arbalest import Pipeline, WarehouseAccessError
from arbalest.backends import _redshift_iam
from tests.fixtures.redshift import ROLE, install_stand_in
from tests.fixtures.servers import POSTGRES_URL

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def iam_url(user: str, schema: str, query: str) -> str:
    base = sa.make_url(POSTGRES_URL)
    return (
        f"redshift+psycopg2://{user}@{base.host}:{base.port}/{base.database}?{query}"
        f"&sslmode=disable&options=-csearch_path%3D{schema}"
    )


def run_through_stand_in(pipeline: Pipeline, schema: str) -> Any:
    side = sa.create_engine(
        sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"}),
        isolation_level="AUTOCOMMIT",
    )
    standin = install_stand_in(pipeline.engine, side)
    try:
        result = pipeline.run()
        with pipeline.engine.connect() as conn:
            user = conn.exec_driver_sql("SELECT current_user").scalar_one()
        return result, user
    finally:
        standin.remove()
        pipeline.close()
        side.dispose()


def test_a_pipeline_signs_in_with_get_cluster_credentials(
    iam_user: str,
    postgres_schema: str,
    s3_bucket: str,
    event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    boto3.client("redshift", region_name="us-east-1").create_cluster(
        ClusterIdentifier="loading",
        ClusterType="single-node",
        NodeType="ra3.xlplus",
        MasterUsername="admin",
        MasterUserPassword="Adm1nPassword",
    )
    asked: list[tuple[Any, ...]] = []
    real = _redshift_iam._client

    def counted(*args: Any) -> Any:
        asked.append(args)
        return real(*args)

    monkeypatch.setattr(_redshift_iam, "_client", counted)
    boto3.client("s3").put_object(
        Bucket=s3_bucket, Key="lake/events/a.json", Body=b'{"id": "a", "n": 1}\n{"id": "b"}\n'
    )
    url = iam_url(iam_user, postgres_schema, "iam=true&cluster_identifier=loading&region=us-east-1")
    pipeline = Pipeline(url, store=f"s3://{s3_bucket}/lake", iam_role=ROLE).copy(event, "events")
    result, user = run_through_stand_in(pipeline, postgres_schema)
    assert result.rows_loaded == 2
    assert user == f"IAM:{iam_user}"  # the user GetClusterCredentials named
    # one password for every connection of the run (the run's, and the probes')
    assert asked == [("redshift", "us-east-1", None)]


def test_a_cluster_moto_does_not_know_is_a_warehouse_access_error(
    iam_user: str, postgres_schema: str, s3_bucket: str, event: Any
) -> None:
    url = iam_url(iam_user, postgres_schema, "iam=true&cluster_identifier=nowhere&region=us-east-1")
    pipeline = Pipeline(url, store=f"s3://{s3_bucket}/lake", iam_role=ROLE).copy(event, "events")
    with pytest.raises(WarehouseAccessError) as caught:
        pipeline.run()
    assert "ClusterNotFound" in str(caught.value)
    assert "redshift:GetClusterCredentials" in caught.value.fix
    assert not caught.value.retryable


def test_a_serverless_pipeline_signs_in_with_get_credentials(
    iam_user: str,
    postgres_schema: str,
    s3_bucket: str,
    event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = boto3.client("redshift-serverless", region_name="eu-west-1")
    stub = Stubber(client)
    stub.add_response(
        "get_credentials",
        {
            "dbUser": f"IAM:{iam_user}",
            "dbPassword": "a-temporary-password",
            "expiration": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15),
        },
        {"workgroupName": "analytics", "dbName": sa.make_url(POSTGRES_URL).database},
    )
    stub.activate()
    monkeypatch.setattr(_redshift_iam, "_client", lambda service, region, profile: client)
    boto3.client("s3").put_object(
        Bucket=s3_bucket, Key="lake/events/a.json", Body=json.dumps({"id": "a"}).encode()
    )
    url = iam_url(
        "ignored",
        postgres_schema,
        "iam=true&is_serverless=true&serverless_work_group=analytics&region=eu-west-1",
    )
    pipeline = Pipeline(url, store=f"s3://{s3_bucket}/lake", iam_role=ROLE).copy(event, "events")
    result, user = run_through_stand_in(pipeline, postgres_schema)
    assert result.rows_loaded == 1
    assert user == f"IAM:{iam_user}"
    stub.assert_no_pending_responses()
