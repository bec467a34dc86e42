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


class FakeConnection:
    """A DB-API connection that answers ``SELECT version()`` with a given string."""

    def __init__(self, version: str) -> None:
        self.version = version

    def cursor(self) -> FakeConnection:
        return self

    def execute(self, sql: str) -> None:
        assert sql == "SELECT version()"

    def fetchone(self) -> tuple[str]:
        return (self.version,)

    def close(self) -> None:
        pass

    def rollback(self) -> None:
        pass


def test_redshift_is_told_from_postgresql_by_the_version_string() -> None:
    redshift = (
        "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 "
        "(Red Hat 3.4.2-6.fc3), Redshift 1.0.77467"
    )
    assert engine_for_connection(FakeConnection(redshift)).dialect.name == "redshift"
    postgres = "PostgreSQL 16.4 on x86_64-pc-linux-gnu, compiled by gcc 12.2.0, 64-bit"
    assert engine_for_connection(FakeConnection(postgres)).dialect.name == "postgresql"


@pytest.mark.postgres
def test_the_seed_readme_sql_example_runs_on_a_psycopg2_connection(
    postgres_schema: str, s3_bucket: str
) -> None:
    """The README's second example as written: both copies, then ``sql`` with a
    ``(statement, value)`` pair and a plain statement, on a psycopg2 connection."""
    client = boto3.client("s3")
    client.put_object(
        Bucket=s3_bucket,
        Key="path_of_source_data/a.json",
        Body=b'{ "id": "66bc8153-d6d9-4351-bada-803330f22db7", "someNumber": 1 }',
    )
    client.put_object(
        Bucket=s3_bucket,
        Key="path_of_incremental_source_data/b.json",
        Body=b'{"id": "b", "someNumber": 2}\n{"id": "c", "someNumber": 3}\n',
    )
    connection = psycopg2.connect(
        host="127.0.0.1", user="postgres", dbname="test", options=f"-csearch_path={postgres_schema}"
    )
    try:
        pipeline = S3CopyPipeline(
            aws_access_key_id=env("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env("AWS_SECRET_ACCESS_KEY"),
            bucket=s3_bucket,
            db_connection=connection,
        )
        pipeline.bulk_copy(
            metadata="path_to_save_pipeline_metadata",
            source="path_of_source_data",
            schema=JsonObject(
                "destination_table_name",
                Property("id", "VARCHAR(36)"),
                Property("someNumber", "INTEGER", "custom_column_name"),
            ),
        )
        pipeline.manifest_copy(
            metadata="path_to_save_pipeline_metadata",
            source="path_of_incremental_source_data",
            schema=JsonObject(
                "incremental_destination_table_name",
                Property("id", "VARCHAR(36)"),
                Property("someNumber", "INTEGER", "custom_column_name"),
            ),
        )
        # the README's columns, renamed as its schema renames them
        pipeline.sql(
            (
                "SELECT custom_column_name + %s AS n "
                "INTO some_olap_table FROM destination_table_name",
                1,
            ),
            ("SELECT * INTO destination_table_name_copy FROM destination_table_name"),
        )
        result = pipeline.run()
        assert [s.rows_loaded for s in result.steps] == [1, 2, 0]
        cursor = connection.cursor()
        cursor.execute("SELECT n FROM some_olap_table")
        assert cursor.fetchall() == [(2,)]
        cursor.execute("SELECT id, custom_column_name FROM destination_table_name_copy")
        assert cursor.fetchall() == [("66bc8153-d6d9-4351-bada-803330f22db7", 1)]
        cursor.close()
        # a second run: the manifest copy loads nothing new; the SQL runs again
        connection.rollback()
        with connection.cursor() as again:
            again.execute("DROP TABLE some_olap_table, destination_table_name_copy")
        connection.commit()
        assert [s.rows_loaded for s in pipeline.run().steps] == [1, 0, 0]
    finally:
        connection.close()
