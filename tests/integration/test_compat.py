"""The original Arbalest's API on the new core: S3CopyPipeline and the seed's import paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
import sqlalchemy as sa

from arbalest import ConfigurationError, SchemaError
from arbalest.compat import engine_for_connection
from arbalest.configuration import env
from arbalest.redshift import S3BulkCopyPipeline, S3CopyPipeline
from arbalest.redshift.schema import JsonObject, Property, SchemaException

pytestmark = [pytest.mark.s3]


def users() -> Any:
    return JsonObject("users", Property("id", "VARCHAR(36)"), Property("age", "INTEGER", "years"))


def test_the_seed_names_are_importable() -> None:
    assert S3BulkCopyPipeline is S3CopyPipeline
    assert SchemaException is SchemaError
    with pytest.raises(SchemaException):
        Property("x", "BLOB")


def test_env_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBALEST_TEST_VALUE", "x")
    monkeypatch.delenv("ARBALEST_TEST_MISSING", raising=False)
    assert env("ARBALEST_TEST_VALUE") == "x"
    assert env("ARBALEST_TEST_MISSING") is None
    assert env("ARBALEST_TEST_MISSING", "default") == "default"


def test_steps_change_the_pipeline_in_place_and_run_in_order(
    s3_bucket: str, tmp_path: Path
) -> None:
    client = boto3.client("s3")
    client.put_object(
        Bucket=s3_bucket,
        Key="people/a.json",
        Body=b'{"id": "a", "age": 30}\n{"id": "b", "age": "x"}\n',
    )
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    pipeline = S3CopyPipeline("testing", "testing", s3_bucket, engine)
    same = pipeline.bulk_copy(metadata="meta", source="people", schema=users())
    assert same is pipeline
    pipeline.sql(("CREATE TABLE older AS SELECT id, years + %s AS years FROM users", 1))
    assert pipeline.steps() == [
        "copy users (replace)",
        "sql: CREATE TABLE older AS SELECT id, year...",
    ]
    validated = pipeline.validate()
    assert validated.validated
    result = pipeline.run()
    assert [s.rows_loaded for s in result.steps] == [1, 0]
    assert [s.rows_rejected for s in result.steps] == [
        1,
        0,
    ]  # the original's default: 1 error allowed
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id, years FROM older")).all() == [("a", 31)]
    assert "meta/" not in str(
        boto3.client("s3").list_objects_v2(Bucket=s3_bucket, Prefix="meta").get("Contents", [])
    )


def test_a_pipeline_without_steps_is_refused(s3_bucket: str, tmp_path: Path) -> None:
    pipeline = S3CopyPipeline(
        "k", "s", s3_bucket, sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    )
    with pytest.raises(ConfigurationError, match="no steps"):
        pipeline.run()
    with pytest.raises(ConfigurationError, match="bucket"):
        S3CopyPipeline("k", "s", "", sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}"))
    with pytest.raises(ConfigurationError, match="DB-API"):
        engine_for_connection(object())


@pytest.mark.postgres
def test_a_psycopg2_connection_is_wrapped(postgres_schema: str) -> None:
    connection = psycopg2.connect(
        host="127.0.0.1", user="postgres", dbname="test", options=f"-csearch_path={postgres_schema}"
    )
    try:
        engine = engine_for_connection(connection)
        assert engine.dialect.name == "postgresql"
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_schema()")).scalar() == postgres_schema
    finally:
        connection.close()
