"""Amazon Redshift: the cluster or workgroup reads the objects from S3 itself, with ``COPY``.

When a run connects, Arbalest finds out, once per connection, where the warehouse records its
loads (``STL_LOAD_ERRORS`` on a provisioned cluster; ``SYS_LOAD_HISTORY`` and
``SYS_LOAD_ERROR_DETAIL`` where the ``STL_`` tables cannot be queried, as on Redshift
Serverless) and the database's isolation level (``STV_DB_ISOLATION_LEVEL``).

For each copy step, inside the step's transaction:

1. ``LOCK`` the target's own lock table (``_arbalest_lock_<name>_<digest>``, empty), so that
   runs on one target take turns and runs on others do not wait; Redshift has no advisory
   locks. On a database with ``SERIALIZABLE`` isolation the journal is locked too: two
   transactions that both read and write it would otherwise fail Redshift's serializable
   check (error 1023), whatever their targets. Waiting is bounded by ``statement_timeout`` =
   ``lock_timeout``, and the session's own ``statement_timeout`` is put back once the lock is
   held. The first runs on a new warehouse take turns creating the journal, the target and
   the lock table under ``LOCK _arbalest_lock`` (that one table is created, if missing, on a
   connection of its own, and committed at once).
2. Upload the schema's JSONPaths file and, per object, a manifest listing exactly that object
   (its full ``s3://`` URL, ``mandatory: true``, ``content_length``) under the pipeline's
   metadata folder. Nothing to load: no manifest, no ``COPY``.
3. One ``COPY`` per object (sqlalchemy-redshift's ``CopyCommand``, plus ZSTD and
   ``IAM_ROLE default``, which it lacks), in the order the objects come (``merge``: oldest
   first). One object per COPY is what makes its counts exact: Redshift reports rows per
   COPY (``pg_last_copy_count()``, ``SYS_LOAD_HISTORY.loaded_rows``), while the per-file
   views only have the *lines* each file held (a pretty-printed record spans many, a line
   may hold several), and their file names, like ``STL_LOAD_ERRORS``', keep only the first
   256 bytes of a URL. So every reject and row of a COPY is its one object's, however long
   the URL. With psycopg2 the COPY's values are bound parameters (psycopg2 puts them in the
   text itself); other drivers bind on the server, which Redshift refuses for ``COPY``, so
   the statement is compiled with its values written in.
4. Where the rows go: straight into the target (``incremental``), or into a temporary load
   table first: ``replace`` then deletes the target's rows (``DELETE``: ``TRUNCATE`` would
   commit) and inserts the load table's; ``merge`` numbers each object's rows, refuses an
   object holding different records for one primary key (COPY keeps no record order within
   an object, so the newest could not be told), and upserts the newest row of each key.
   ``DATE`` columns load through the load table as ``TIMESTAMPTZ`` read with the step's
   ``TIMEFORMAT`` (Redshift reads ``DATE`` with ``DATEFORMAT``, which knows no epoch formats
   and whose handling of offsets is not documented), and then take the date in UTC: the
   local rule exactly.
5. Read the rows and rejects of each ``COPY`` back (``pg_last_copy_id()`` and
   ``STL_LOAD_ERRORS``; or ``last_user_query_id()``, ``SYS_LOAD_HISTORY`` and
   ``SYS_LOAD_ERROR_DETAIL``); more rejects than ``max_errors`` fails the step.

Every mode uses a manifest: a ``COPY`` of ``s3://bucket/events/a.json`` is a prefix, and
would also load ``events/a.json.old``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable, DropTable

from arbalest import journal
from arbalest.backends._redshift_copy import (
    RedshiftCopy,
    build_copy,
    copy_object,
    manifest_document,
)
from arbalest.backends._redshift_iam import SECRET_OPTIONS, sign_in_for
from arbalest.backends._redshift_lock import (
    CREATION_LOCK,
    create_creation_lock,
    lock_creation,
    lock_table,
    lock_target,
)
from arbalest.backends._redshift_tables import (
    like,
    load_table,
    number_rows,
    refuse_ambiguous,
    settle,
)
from arbalest.backends._redshift_views import (
    _FACTS_KEY,
    STL,
    SYS,
    CopyTally,
    LoadViews,
    WarehouseFacts,
    probe,
)
from arbalest.backends.base import (
    Backend,
    Capabilities,
    CopyJob,
    LoadResult,
    staging_table,
    upsert_from,
)
from arbalest.convert import DateRule
from arbalest.errors import ConfigurationError
from arbalest.stores.base import ObjectInfo, join_key

# CREATION_LOCK, lock_table, load_table, number_rows and settle: redshift_data imports them here
__all__ = [
    "CREATION_LOCK",
    "STL",
    "SYS",
    "LoadViews",
    "RedshiftBackend",
    "RedshiftCopy",
    "WarehouseFacts",
    "build_copy",
    "load_table",
    "lock_table",
    "manifest_document",
    "number_rows",
    "settle",
]

logger = logging.getLogger(__name__)


class RedshiftBackend(Backend):
    """Loads with Redshift's own ``COPY`` from S3 (see the module docstring)."""

    name = "redshift"
    capabilities: ClassVar[Capabilities] = Capabilities(
        reads_objects_itself=True,
        requires_s3=True,
        max_identifier_bytes=127,
        advisory_locks=False,
        # "You can't alter columns inside a multi-statement block (BEGIN ... END)"
        # (ALTER TABLE, Amazon Redshift Database Developer Guide)
        alter_type_in_transaction=False,
    )

    def check_job(self, job: CopyJob) -> None:
        if not job.store.url.startswith("s3://"):
            raise ConfigurationError(
                f"{job.label}: Redshift loads from S3 only; give an s3:// store"
            )
        from arbalest.backends.redshift_tabular import check_tabular_job

        check_tabular_job(job)

    def secrets(self) -> tuple[str, ...]:
        # temporary passwords of an IAM sign-in; secrets a URL of the caller's own holds
        sign_in = sign_in_for(self.engine)
        found = list(sign_in.secrets()) if sign_in is not None else []
        for name, value in self.engine.url.query.items():
            if name.lower() in SECRET_OPTIONS:
                found += [value] if isinstance(value, str) else list(value)
        return tuple(found)

    def connect(self, timeout: float) -> sa.Connection:
        conn = self.engine.connect()
        try:
            self.facts(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def facts(self, conn: sa.Connection) -> WarehouseFacts:
        """What this connection's warehouse is like, found out once per connection (on a
        connection of its own when ``conn`` is already in a transaction)."""
        found = conn.info.get(_FACTS_KEY)
        if isinstance(found, WarehouseFacts):
            return found
        if conn.in_transaction():
            with self.engine.connect() as side:
                found = probe(side)
        else:
            found = probe(conn)
        conn.info[_FACTS_KEY] = found
        return found

    def lock_tables(self, target: str) -> tuple[sa.Table, ...]:
        return (lock_table(target),)

    @contextlib.contextmanager
    def lock(self, conn: sa.Connection, target: str, timeout: float) -> Iterator[None]:
        lock_target(conn, target, timeout, serializable=self.facts(conn).serializable)
        yield

    @contextlib.contextmanager
    def creation_lock(
        self, conn: sa.Connection, timeout: float, *, validate: bool = False
    ) -> Iterator[None]:
        if not journal.table_exists(conn, CREATION_LOCK):
            if validate:
                # a validation leaves no table behind, and is rolled back whatever it meets
                yield
                return
            self._create_creation_lock()
        self._lock_creation(conn, timeout)
        yield

    def _lock_creation(self, conn: sa.Connection, timeout: float) -> None:
        """Take ``_arbalest_lock`` (waiting up to ``timeout``)."""
        lock_creation(conn, timeout)

    def _create_creation_lock(self) -> None:
        create_creation_lock(self.engine)

    def load(self, conn: sa.Connection, job: CopyJob, objects: Sequence[ObjectInfo]) -> LoadResult:
        if job.format != "json":  # Parquet and CSV: see redshift_tabular
            from arbalest.backends.redshift_tabular import load_tabular

            return load_tabular(conn, job, objects, self.facts(conn).views)
        table = job.table
        specs = job.schema.__fields__
        columns = [spec.name for spec in specs]
        dates = frozenset(spec.name for spec in specs if isinstance(spec.rule, DateRule))
        jsonpaths_key = join_key(
            job.metadata_prefix, "jsonpaths", f"{job.schema.__table__.name}.json"
        )
        if objects:
            job.store.put(jsonpaths_key, json.dumps(job.schema.__jsonpaths__, indent=2).encode())
        views = self.facts(conn).views
        copier = _Copier(conn, job, columns, job.store.uri(jsonpaths_key), dates, views)
        if job.mode == "incremental" and not dates:
            for info in objects:
                copier.copy(table, info)
        elif job.mode in ("incremental", "replace"):
            if dates:
                loading = load_table(table, job.run_id, dates)
                conn.execute(CreateTable(loading))
            else:
                loading = like(conn, table, job.run_id)
            for info in objects:
                copier.copy(loading, info)
            if job.mode == "replace":
                conn.execute(sa.delete(table))
            conn.execute(settle(loading, table, dates))
            conn.execute(DropTable(loading))
        else:  # merge: objects come oldest first; each one's rows get its number
            loading = load_table(table, job.run_id, dates, with_position=True)
            conn.execute(CreateTable(loading))
            for number, info in enumerate(objects, start=1):
                copier.copy(loading, info)
                conn.execute(number_rows(loading, number))
            staging = loading
            if dates:
                staging = staging_table(table, job.run_id, with_position=True)
                conn.execute(CreateTable(staging))
                conn.execute(settle(loading, staging, dates))
                conn.execute(DropTable(loading))
            refuse_ambiguous(conn, job, table, staging, objects)
            upsert_from(conn, table, staging)
            conn.execute(DropTable(staging))
        return copier.tally.result(objects)


class _Copier:
    """Uploads a manifest per object and runs its JSON ``COPY`` (counted by a ``CopyTally``)."""

    def __init__(
        self,
        conn: sa.Connection,
        job: CopyJob,
        columns: list[str],
        jsonpaths_url: str,
        dates: frozenset[str],
        views: LoadViews,
    ) -> None:
        self.job = job
        self.columns = columns
        self.jsonpaths_url = jsonpaths_url
        self.dates = dates
        self.tally = CopyTally(conn, job, views)
        self.manifests = 0

    def copy(self, table: sa.Table, info: ObjectInfo) -> None:
        """COPY one object into ``table``."""
        statement = copy_object(
            self.job,
            table,
            self.columns,
            self.jsonpaths_url,
            self.manifests,
            info,
            max_error=self.tally.max_error(),
        )
        self.manifests += 1
        self.tally.copy(statement, info.key, self.dates)
