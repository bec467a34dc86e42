"""``Pipeline``: an immutable, fluent builder of steps over a SQLAlchemy engine."""

from __future__ import annotations

import copy
import os
import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

import sqlalchemy as sa

from arbalest.backends import Backend, backend_for
from arbalest.backends._redshift_data import RedshiftDataAPI
from arbalest.errors import ConfigurationError
from arbalest.loading.formats import CsvOptions
from arbalest.pipeline import runner
from arbalest.pipeline.engines import create_engine, in_memory
from arbalest.pipeline.result import Plan, RunResult
from arbalest.pipeline.steps import (
    CopyStep,
    PartitionSource,
    SQLStep,
    Statement,
    Step,
    copy_step,
    sql_step,
    time_series_step,
)
from arbalest.schema.base import Schema
from arbalest.stores import LocalStore, ObjectStore, folder_prefix, open_store
from arbalest.stores.base import outside_reason
from arbalest.stores.credentials import Credentials, as_credentials

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["Pipeline", "create_engine"]


def _check_options(metadata: object, name: object, iam_role: object, lock_timeout: object) -> None:
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise ConfigurationError(f"name= is a non-empty string, such as 'nightly', not {name!r}")
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, int | float):
        raise ConfigurationError(f"lock_timeout= is a number of seconds, not {lock_timeout!r}")
    if lock_timeout < 0:
        raise ConfigurationError(f"lock_timeout= cannot be negative ({lock_timeout!r})")
    if not isinstance(metadata, str) or not metadata.strip("/"):
        raise ConfigurationError("metadata= is a folder in the store, such as '_arbalest/'")
    _check_inside("metadata=", metadata)
    if iam_role is not None and not isinstance(iam_role, str):
        raise ConfigurationError("iam_role= is a role ARN (a str)")


def _check_inside(what: str, prefix: str, store: ObjectStore | None = None) -> None:
    """Refuse a prefix that would leave the store (it is relative to the store's root), or
    that a folder store would read as another spelling of itself (``./events``,
    ``a//b``): its keys would then not start with the prefix, and the journal, which is read
    by the prefix, would not find them (every run would load them again)."""
    reason = outside_reason(prefix)
    parts = prefix.replace("\\", "/").strip("/").split("/")
    if reason is None and "." in parts:
        reason = "has a '.' segment"
    if reason is None and "" in parts[:-1] and isinstance(store, LocalStore):
        reason = "has an empty segment ('//'), which a folder path cannot have"
    if reason is not None:
        normal = posixpath.normpath("/".join(parts))
        if normal.startswith(".."):
            normal = "/".join(p for p in parts if p not in ("", ".", ".."))
        suggestion = normal if normal not in ("", ".") else "events"
        raise ConfigurationError(
            f"{what}{prefix!r} {reason}: give a prefix relative to the store's root, that "
            f"stays inside it and names each folder once, such as {suggestion!r}"
        )


def _check_names(backend: Backend, table: sa.Table) -> None:
    """Refuse a table or column name longer than the warehouse keeps (PostgreSQL would cut
    it to 63 bytes without a word, and two names could then become one)."""
    limit = backend.capabilities.max_identifier_bytes
    names = [("table", table.name, "choose a shorter __tablename__")]
    if table.schema:
        names.append(("schema", table.schema, "choose a shorter schema in __table_args__"))
    names += [
        (
            f"column name {column.name!r} of table {table.name!r}",
            column.name,
            "give the field a shorter name=",
        )
        for column in table.columns
    ]
    for what, name, fix in names:
        size = len(name.encode("utf-8"))
        if size > limit:
            described = what if what.startswith("column") else f"{what} name {name!r}"
            raise ConfigurationError(
                f"the {described} is {size} bytes; {backend.name} allows at most {limit} "
                f"bytes in a name: {fix}"
            )


class Pipeline:
    """Copy steps and SQL steps, run in order against one warehouse.

    Every method returns a new ``Pipeline``; a pipeline is never changed in place, so a
    partly built one can be shared and extended. Each step is checked when it is added.

    Example:
        ```python
        result = (
            Pipeline("duckdb:///warehouse.duckdb", store="./lake")
            .copy(Event, source="events/", mode="incremental", max_errors=10)
            .sql("DELETE FROM daily WHERE day >= :since",
                 "INSERT INTO daily SELECT ... FROM events WHERE created_at >= :since",
                 since=day)
            .run()
        )
        print(result)
        ```

    Args:
        warehouse: A SQLAlchemy ``Engine`` or URL (``duckdb:///file.duckdb``;
            ``postgresql://...``, served by psycopg2 or psycopg 3, whichever is installed;
            ``postgres://...``; ``redshift+psycopg2://...``; ``redshift+data:///DATABASE?
            workgroup=NAME`` for the Redshift Data API), or a ``RedshiftDataAPI``.
        store: A folder, an ``s3://bucket/prefix`` URL, or a store object.
        metadata: The pipeline's own location in the store (manifests, JSONPaths files);
            never loaded as data.
        name: A name for logs and the command line: a run's log lines and the command's
            header and summary show it.
        iam_role: The IAM role Redshift's COPY assumes to read S3 (preferred to keys).
        credentials: AWS access keys (``arbalest.Credentials`` or a mapping of boto3 names),
            for S3 and for Redshift's COPY when no role is given.
        region: The S3 bucket's region.
        lock_timeout: Seconds a run waits for another run on the same target.

    Raises:
        ConfigurationError: For an unsupported warehouse or bad arguments.
    """

    def __init__(
        self,
        warehouse: sa.Engine | str | sa.URL | RedshiftDataAPI,
        store: str | os.PathLike[str] | ObjectStore | None = None,
        *,
        metadata: str = "_arbalest/",
        name: str | None = None,
        iam_role: str | None = None,
        credentials: Credentials | dict[str, str] | None = None,
        region: str | None = None,
        lock_timeout: float = 60,
    ) -> None:
        owns_engine = not isinstance(warehouse, sa.Engine)
        if isinstance(warehouse, sa.Engine):
            engine = warehouse
        elif isinstance(warehouse, str | sa.URL):
            engine = create_engine(warehouse)
        elif isinstance(warehouse, RedshiftDataAPI):
            engine = warehouse.engine()
        else:
            raise ConfigurationError(
                f"warehouse= is a SQLAlchemy Engine or URL, not {type(warehouse).__name__}"
            )
        _check_options(metadata, name, iam_role, lock_timeout)
        self._credentials = as_credentials(credentials)
        self._engine = engine
        # An engine made here is ours to release (after each run, and in close()), unless
        # its database lives only in its connection (an in-memory DuckDB or SQLite)
        self._owns_engine = owns_engine and not in_memory(engine.url)
        self._backend: Backend = backend_for(engine)
        self._store = (
            None
            if store is None
            else open_store(store, credentials=self._credentials, region=region)
        )
        self._metadata = folder_prefix(metadata)
        self._name = name
        self._iam_role = iam_role
        self._region = region
        self._lock_timeout = float(lock_timeout)
        self._steps: tuple[Step, ...] = ()

    # -- read-only properties --------------------------------------------------------------

    @property
    def engine(self) -> sa.Engine:
        """The warehouse's engine."""
        return self._engine

    @property
    def backend(self) -> Backend:
        """The backend serving the engine's dialect."""
        return self._backend

    @property
    def store(self) -> ObjectStore | None:
        """The object store, if one was given."""
        return self._store

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps, in order."""
        return self._steps

    @property
    def name(self) -> str | None:
        """The pipeline's name, for logs and the command line (``None``: unnamed)."""
        return self._name

    @property
    def metadata(self) -> str:
        """The pipeline's own folder in the store."""
        return self._metadata

    @property
    def iam_role(self) -> str | None:
        return self._iam_role

    @property
    def credentials(self) -> Credentials | None:
        return self._credentials

    @property
    def region(self) -> str | None:
        return self._region

    @property
    def lock_timeout(self) -> float:
        return self._lock_timeout

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        store = self._store.url if self._store is not None else None
        name = f", name={self._name!r}" if self._name is not None else ""
        return f"Pipeline({url!r}, store={store!r}{name}, steps={len(self._steps)})"

    def using(
        self,
        *,
        warehouse: sa.Engine | str | sa.URL | RedshiftDataAPI | None = None,
        store: str | os.PathLike[str] | ObjectStore | None = None,
    ) -> Self:
        """A copy of this pipeline with another warehouse or store, and the same steps.

        Raises:
            ConfigurationError: If the steps cannot run there (e.g. Redshift without S3).
        """
        new = type(self)(
            self._engine if warehouse is None else warehouse,
            self._store if store is None else store,
            metadata=self._metadata,
            name=self._name,
            iam_role=self._iam_role,
            credentials=self._credentials,
            region=self._region,
            lock_timeout=self._lock_timeout,
        )
        if warehouse is None:  # the same engine: released by the copy as by this pipeline
            new._owns_engine = self._owns_engine
        for step in self._steps:
            if isinstance(step, CopyStep):
                new = new.copy(
                    step.schema,
                    step.source,
                    mode=step.mode,
                    max_errors=step.max_errors,
                    truncate_columns=step.truncate_columns,
                    compression=step.compression,
                    time_format=step.time_format,
                    evolve=step.evolve,
                    format=step.format,
                    csv_options=step.csv_options,
                )
            else:
                new = new._with(step)
        return new

    def _with(self, step: Step) -> Self:
        if not isinstance(step, SQLStep):
            _check_names(self._backend, step.table)
        new = copy.copy(self)
        new._steps = (*self._steps, step)
        return new

    # -- building ------------------------------------------------------------------------

    def copy(
        self,
        schema: type[Schema],
        source: str,
        *,
        mode: str = "incremental",
        max_errors: int = 0,
        truncate_columns: bool = False,
        compression: str | None = None,
        time_format: str = "auto",
        evolve: bool = False,
        format: str | None = None,
        csv_options: CsvOptions | Mapping[str, Any] | None = None,
    ) -> Self:
        """Add a step that loads the objects under ``source`` into ``schema``'s table.

        Args:
            schema: A ``Schema`` class.
            source: A prefix in the store, read as a folder (``"events"`` is ``"events/"``
                and never matches ``events_old/``; ``""`` is the whole store).
            mode: ``"incremental"`` (new objects only, journaled), ``"replace"`` (everything,
                swapped in atomically) or ``"merge"`` (new and changed objects, upserted on
                the primary key).
            max_errors: How many records may be rejected before the step fails.
            truncate_columns: Cut overlong strings instead of rejecting them.
            compression: ``"gzip"``, ``"bzip2"`` or ``"zstd"``; default: by each object's
                suffix (``.gz``, ``.bz2``, ``.zst``).
            time_format: ``"auto"``, ``"epochsecs"``, ``"epochmillisecs"`` or a format such
                as ``"YYYY-MM-DD HH:MI:SS"``.
            evolve: When the table exists and differs from the class: ``False`` (default),
                the step fails with a ``TableMismatchError`` naming every differing column;
                ``True``, the step adds the class's new columns (nullable) and widens
                ``VARCHAR`` columns first, and fails on any other difference. See
                docs/changes.md.
            format: ``"json"``, ``"parquet"`` or ``"csv"``; default: named by the objects'
                suffixes (``.json``, ``.jsonl``, ``.ndjson``; ``.parquet``, ``.pq``;
                ``.csv``, ``.tsv``; below a compression suffix), JSON when none names one.
                An object whose suffix names another format fails the step, named. Fields
                map to Parquet columns and CSV header names by ``key=``. See
                docs/loading.md.
            csv_options: For CSV: a ``CsvOptions`` or a mapping of its options
                (``header``, ``ignore_header``, ``delimiter``, ``quote``, ``null_as``,
                ``empty_as_null``, ``blanks_as_null``, ``encoding``: Redshift's
                ``IGNOREHEADER``, ``DELIMITER``, ``QUOTE``, ``NULL AS``, ``EMPTYASNULL``,
                ``BLANKSASNULL``, ``ENCODING``).

        Raises:
            ConfigurationError: For any bad argument, at once; also for a table or column
                name longer than the warehouse allows (``Capabilities.max_identifier_bytes``:
                63 bytes on PostgreSQL, 127 on Redshift and DuckDB).
        """
        step = copy_step(
            schema,
            source,
            mode=mode,
            max_errors=max_errors,
            truncate_columns=truncate_columns,
            compression=compression,
            time_format=time_format,
            evolve=evolve,
            format=format,
            csv_options=csv_options,
        )
        _check_inside("source=", source, self._store)
        if self._store is None:
            raise ConfigurationError("copy() needs a store: Pipeline(warehouse, store=...)")
        if step.source.startswith(self._metadata):
            raise ConfigurationError(
                f"source={source!r} is inside the pipeline's metadata folder {self._metadata!r}"
            )
        if self._backend.capabilities.requires_s3 and not self._store.url.startswith("s3://"):
            raise ConfigurationError(
                f"the {self._backend.name} warehouse loads from S3 only; give an s3:// store"
            )
        return self._with(step)

    def time_series(
        self,
        schema: type[Schema],
        sources: PartitionSource,
        *,
        series_column: str,
        since: Any = None,
        **options: Any,
    ) -> Self:
        """Add a step that imports new partitions of a time series (the original's
        ``SqlTimeSeriesImport``).

        The partitions after ``sources``' cursor are each loaded into a staging table; then,
        in one transaction, the target's rows from the first new partition on (or from
        ``since``) are deleted, the staged rows inserted (``UNION ALL``: nothing is silently
        de-duplicated), the staging tables dropped, and the cursor moved to the last partition
        loaded. With no new partition, nothing runs.

        Args:
            schema: A ``Schema`` class.
            sources: The partitions, e.g. ``SortedSources(store, "events", start=...)``.
            series_column: The column the series is ordered by.
            since: Delete from this value instead of the first new partition's. For a
                date or time column: an aware ``datetime`` is its instant; a naive one, a
                ``date`` or an ISO 8601 text without an offset is UTC, as partition names
                are. The bound is a typed parameter: no session or machine zone applies.
            **options: ``max_errors``, ``truncate_columns``, ``compression``, ``time_format``,
                ``evolve``, ``format``, ``csv_options``.
        """
        step = time_series_step(
            schema, sources, series_column=series_column, since=since, **options
        )
        prefix = getattr(sources, "prefix", None)
        if isinstance(prefix, str):
            _check_inside("the sources' prefix ", prefix, sources.store)
        return self._with(step)

    def bulk_copy(self, schema: type[Schema], source: str, **kw: Any) -> Self:
        """The original Arbalest's name for ``copy(..., mode="replace")``."""
        return self.copy(schema, source, mode="replace", **kw)

    def manifest_copy(self, schema: type[Schema], source: str, **kw: Any) -> Self:
        """The original Arbalest's name for ``copy(..., mode="incremental")``."""
        return self.copy(schema, source, mode="incremental", **kw)

    def sql(self, *statements: Statement, **params: Any) -> Self:
        """Add a step: ``statements`` run in one transaction, with ``params`` bound.

        A statement is a string (``:name`` placeholders), a ``(string, parameters)`` pair
        (a mapping, or values for ``%s`` placeholders), or a SQLAlchemy executable. Values
        are always bound, never pasted into the SQL text.
        """
        return self._with(sql_step(statements, params))

    # -- running -------------------------------------------------------------------------

    def run(
        self,
        *,
        progress: runner.Progress | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> RunResult:
        """Run every step; each commits on its own.

        With ``opentelemetry-api`` installed (the ``otel`` extra), the run is traced (a span
        per run, step, object and batch) and measured (rows, rejects, bytes, step time): see
        the observability page of the docs.

        Args:
            progress: Receives progress events as the run loads (see ``Progress``).
            tracer_provider: Where the run's spans go; ``None``: OpenTelemetry's global
                provider (which records nothing until an SDK is configured).
            meter_provider: Where the run's metrics go; ``None``: the global provider.

        Raises:
            PipelineError: A step failed; the warehouse and the journal are as they were
                before it (earlier steps stay committed).
        """
        return self._execute(False, progress, tracer_provider, meter_provider)

    def validate(
        self,
        *,
        progress: runner.Progress | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> RunResult:
        """Run every step in one transaction that is rolled back: a dry run.

        Traced as ``run()`` is, in an ``arbalest.validate`` span; a validation records no
        metrics (it loads nothing). The arguments are ``run()``'s.
        """
        return self._execute(True, progress, tracer_provider, meter_provider)

    def _execute(
        self,
        validate: bool,
        progress: runner.Progress | None,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
    ) -> RunResult:
        try:
            return runner.execute(
                self,
                validate=validate,
                progress=progress,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
            )
        finally:
            self._release()

    def plan(self) -> Plan:
        """What ``run()`` would do: DDL, objects to load, SQL; nothing is changed."""
        try:
            return runner.plan(self)
        finally:
            self._release()

    def close(self) -> None:
        """Close the connections of an engine this pipeline made from a URL (an engine
        passed in is the caller's, and stays as it is). The pipeline can still run: it
        connects again."""
        self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _release(self) -> None:
        """No connection of an engine made here stays open between runs: a DuckDB file is
        free for other processes as soon as a run ends, and a server's sessions end."""
        if self._owns_engine:
            self._engine.dispose()
