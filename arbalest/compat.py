"""The original Arbalest's API, on top of ``Pipeline``.

```python
pipeline = S3CopyPipeline(aws_access_key_id=..., aws_secret_access_key=...,
                          bucket="my-bucket", db_connection=psycopg2.connect(...))
pipeline.bulk_copy(metadata="meta", source="users", schema=JsonObject(...))
pipeline.manifest_copy(metadata="meta", source="events", schema=JsonObject(...))
pipeline.sql(("SELECT ... %s ...", 1), "...")
pipeline.run()
```

Unlike ``Pipeline``, it changes in place and each method returns the same object, as the
original did. A DB-API connection is wrapped in an engine; Redshift is told from PostgreSQL by
the server's version string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self

import sqlalchemy as sa

from arbalest.errors import ConfigurationError
from arbalest.pipeline import Pipeline, RunResult
from arbalest.pipeline.builder import create_engine
from arbalest.schema.base import Schema
from arbalest.stores.credentials import Credentials

__all__ = ["S3CopyPipeline", "engine_for_connection"]


def engine_for_connection(connection: Any) -> sa.Engine:
    """An engine over an open DB-API connection (psycopg2): Redshift or PostgreSQL."""
    if isinstance(connection, sa.Engine):
        return connection
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT version()")
        (version,) = cursor.fetchone()
        cursor.close()
        connection.rollback()
    except Exception as exc:
        raise ConfigurationError(
            f"db_connection must be an open DB-API connection (psycopg2): {exc}"
        ) from None
    dialect = "redshift+psycopg2" if "redshift" in str(version).lower() else "postgresql+psycopg2"
    engine = sa.create_engine(
        f"{dialect}://",
        creator=lambda: connection,
        poolclass=sa.pool.StaticPool,
        hide_parameters=True,
    )
    return engine


class S3CopyPipeline:
    """The original ``S3CopyPipeline``: copy steps from one bucket, and SQL steps.

    Args:
        aws_access_key_id: The access key (for S3, and for Redshift's COPY).
        aws_secret_access_key: Its secret.
        bucket: The bucket's name.
        db_connection: An open psycopg2 connection (or a SQLAlchemy engine or URL).
    """

    def __init__(
        self,
        aws_access_key_id: str | None,
        aws_secret_access_key: str | None,
        bucket: str,
        db_connection: Any,
    ) -> None:
        if not bucket:
            raise ConfigurationError("bucket= is the bucket's name")
        self._credentials = (
            Credentials(aws_access_key_id, aws_secret_access_key)
            if aws_access_key_id and aws_secret_access_key
            else None
        )
        self._bucket = bucket
        self._engine = (
            create_engine(db_connection)
            if isinstance(db_connection, str | sa.URL)
            else engine_for_connection(db_connection)
        )
        self._steps: list[tuple[str | None, Callable[[Pipeline], Pipeline]]] = []

    def __repr__(self) -> str:
        return f"S3CopyPipeline(bucket={self._bucket!r}, steps={len(self._steps)})"

    def _pipeline(self, metadata: str | None) -> Pipeline:
        return Pipeline(
            self._engine,
            store=f"s3://{self._bucket}",
            metadata=metadata or "_arbalest/",
            credentials=self._credentials,
        )

    def _copy(
        self, mode: str, metadata: str, source: str, schema: type[Schema], max_error_count: int
    ) -> Self:
        self._pipeline(metadata).copy(schema, source, mode=mode, max_errors=max_error_count)
        self._steps.append(
            (metadata, lambda p: p.copy(schema, source, mode=mode, max_errors=max_error_count))
        )
        return self

    def bulk_copy(
        self, metadata: str, source: str, schema: type[Schema], max_error_count: int = 1
    ) -> Self:
        """Replace the table with every object under ``source``."""
        return self._copy("replace", metadata, source, schema, max_error_count)

    def manifest_copy(
        self, metadata: str, source: str, schema: type[Schema], max_error_count: int = 1
    ) -> Self:
        """Load the objects under ``source`` that were not loaded before."""
        return self._copy("incremental", metadata, source, schema, max_error_count)

    def sql(self, *statements: Any) -> Self:
        """Statements run in one transaction; ``(sql, value)`` binds ``%s`` placeholders."""
        self._pipeline(None).sql(*statements)  # checked now, as Pipeline does
        self._steps.append((None, lambda p: p.sql(*statements)))
        return self

    def steps(self) -> list[str]:
        """The labels of the steps so far."""
        pipeline = self._pipeline(None)
        for _, add in self._steps:
            pipeline = add(pipeline)
        return [step.label for step in pipeline.steps]

    def run(self) -> RunResult:
        """Run the steps in order; each commits on its own."""
        if not self._steps:
            raise ConfigurationError("Cannot run pipeline with no steps")
        results = []
        for metadata, add in self._steps:
            results += add(self._pipeline(metadata)).run().steps
        return RunResult(results)

    def validate(self) -> RunResult:
        """Run every step in one transaction that is rolled back."""
        if not self._steps:
            raise ConfigurationError("Cannot validate pipeline with no steps")
        first = next((m for m, _ in self._steps if m), None)
        pipeline = self._pipeline(first)
        for _, add in self._steps:
            pipeline = add(pipeline)
        return pipeline.validate()
