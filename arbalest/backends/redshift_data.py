"""Redshift through the Data API (``redshift+data://``, ``RedshiftDataAPI``): the same
``COPY`` from S3 as ``redshift``, sent in batches. A transaction cannot span two Data API
calls, but one ``BatchExecuteStatement`` (at most 40 statements) is one transaction, and a
Data API *session* keeps its temporary tables from one call to the next.

So a copy step runs in one session, in two phases:

1. *Staging*, as many batches as its objects need (12 objects a batch; one with
   ``max_errors`` > 0, whose ``COPY`` gets the rest of the step's budget as ``MAXERROR``):
   per object its ``COPY`` (with its one-object manifest) into the session's temporary load
   table, the ``SELECT`` of ``LoadViews.last_copy`` (read back with ``GetStatementResult``)
   and the numbering of its rows; then the count of the batch's rows per object. After each
   batch its rejects are read back (``STL_LOAD_ERRORS``, or the ``SYS_`` views, which fill
   in late), and the next batch stages its objects' journal rows, counts known, in a second
   temporary table. Nothing but the session's temporary tables changes.
2. *The final batch*, one transaction: what the step ran before the load (creating the
   journal, the target and its lock table where missing), the target's run lock
   (``SET statement_timeout`` to ``lock_timeout``, ``LOCK``, with the journal under
   ``SERIALIZABLE``, ``RESET statement_timeout``), the last staged journal rows;
   ``incremental``: a guard that fails the batch when another run has journaled any of the
   step's objects since this run read the journal (the lock is only taken in this batch);
   the step then fails with a retryable ``ConcurrentRunError``; then the staged rows into
   the target (``replace``: after deleting the old ones; ``merge``: a guard refusing an
   object with different records for one key, then the upsert), and the staged journal rows
   into the journal, after deleting those of the same keys. It closes the session.

So a step's rows and journal rows commit together or not at all, whatever its number of
objects: a run that dies anywhere leaves data and journal as they were or fully loaded. The
runner's own journal write, sent when the step commits, rewrites the same journal rows.

What differs from a direct connection: the final batch holds the statements the step ran
before its load plus about ten (a ``ConfigurationError`` says so if that passes 40);
Parquet and CSV objects, and time series, need a direct connection for now.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import re
import typing
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Final

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from arbalest import journal
from arbalest.backends._redshift_copy import MAX_MAXERROR, copy_object, run_copy
from arbalest.backends._redshift_data import BATCH_LIMIT, RedshiftDataAPI
from arbalest.backends._redshift_driver import Connection, Error
from arbalest.backends._redshift_views import recorded
from arbalest.backends.base import (
    POSITION_COLUMNS,
    CopyJob,
    LoadResult,
    quote_table,
    staging_name,
    staging_table,
    upsert_from,
)
from arbalest.backends.redshift import (
    CREATION_LOCK,
    RedshiftBackend,
    load_table,
    lock_table,
    number_rows,
    settle,
)
from arbalest.convert import DateRule
from arbalest.errors import (
    ConcurrentRunError,
    ConfigurationError,
    CopyError,
    TooManyRejectsError,
    WarehouseUnavailableError,
)
from arbalest.journal import Entry
from arbalest.loading.rejects import Reject
from arbalest.stores.base import ObjectInfo, join_key

__all__ = ["STAGED_PER_BATCH", "RedshiftDataBackend", "data_api_of", "journal_stage"]

#: The words of the guards' failures (a string that is not an integer).
_JOURNALED: Final = "arbalest: another run journaled these objects meanwhile"
_AMBIGUOUS: Final = "arbalest: an object holds different records for one primary key"
#: Redshift's words for a failure that may pass on another try.
_RETRYABLE: Final = re.compile(
    r"(?i)serializable isolation violation|deadlock|statement timeout|lock timeout|1023"
)
#: Statements a staging batch needs besides 3 per object (tables, journal rows, counts).
_STAGING_FIXED: Final = 4
#: Objects a staging batch holds (with ``max_errors`` = 0).
STAGED_PER_BATCH: Final = (BATCH_LIMIT - _STAGING_FIXED) // 3


def data_api_of(engine: sa.Engine) -> RedshiftDataAPI | None:
    """The ``RedshiftDataAPI`` an engine was made for (``None``: another engine)."""
    api = getattr(engine.dialect, "arbalest_data_api", None)
    return api if isinstance(api, RedshiftDataAPI) else None


def journal_stage(table: sa.Table, run_id: str) -> sa.Table:
    """The session's temporary table of a step's journal rows, until its final batch: the
    journal's columns, without its key (rows of one batch are staged in the next)."""
    columns = [sa.Column(c.name, c.type) for c in journal.JOURNAL.columns]
    name = staging_name(table, run_id, "_journal")
    return sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])


def _target(table: sa.Table) -> str:
    """The journal's name of a target table."""
    return f"{table.schema}.{table.name}" if table.schema else table.name


def _driver(conn: sa.Connection) -> Connection:
    dbapi: Any = conn.connection.dbapi_connection  # a redshift+data engine's
    return typing.cast(Connection, dbapi)


def _fail_when(condition: sa.ColumnElement[bool], words: str) -> sa.Select[Any]:
    """A ``SELECT`` that fails (casting ``words`` to an integer) when ``condition`` holds:
    plain SQL has no ``RAISE``, and a batch fails, whole, when one statement does."""
    failing = sa.case((condition, sa.literal_column(f"'{words}'")), else_=sa.literal_column("'0'"))
    return sa.select(sa.cast(failing, sa.Integer))


class RedshiftDataBackend(RedshiftBackend):
    """Loads with ``COPY`` through the Data API (see the module docstring)."""

    name = "redshift"
    #: The Data API's driver sends each batch itself: statements are compiled here.
    uses_batches: ClassVar[bool] = True

    def check_job(self, job: CopyJob) -> None:
        super().check_job(job)
        if job.format != "json":
            raise ConfigurationError(
                f"{job.label}: {job.format} objects over the Redshift Data API are not "
                "supported yet; use a redshift+psycopg2:// or redshift+redshift_connector:// "
                "warehouse"
            )
        if job.into is not None:
            raise ConfigurationError(
                f"{job.label}: a time series over the Redshift Data API is not supported "
                "yet (its partitions' staging tables are made in the step's transaction, "
                "which the Data API sends last); use a direct connection "
                "(redshift+psycopg2://)"
            )

    def secrets(self) -> tuple[str, ...]:
        api = data_api_of(self.engine)
        return api.secrets() if api is not None else ()

    @contextlib.contextmanager
    def lock(self, conn: sa.Connection, target: str, timeout: float) -> Iterator[None]:
        tables = [lock_table(target)]
        if not journal.table_exists(conn, tables[0]):
            conn.execute(CreateTable(tables[0], if_not_exists=True))
        if self.facts(conn).serializable:
            tables.append(journal.JOURNAL)
        names = ", ".join(quote_table(conn.dialect, t) for t in tables)
        statements = self._bounded(timeout, f"LOCK {names}")
        for statement in statements:
            conn.exec_driver_sql(statement)
        yield

    def _lock_creation(self, conn: sa.Connection, timeout: float) -> None:
        # (the lock table itself is created in a batch of its own, as on a direct connection)
        for statement in self._bounded(timeout, f"LOCK {quote_table(conn.dialect, CREATION_LOCK)}"):
            conn.exec_driver_sql(statement)

    @staticmethod
    def _bounded(timeout: float, lock: str) -> list[str]:
        # RESET gives the workgroup's or user's own value back, for what follows the LOCK
        milliseconds = max(int(timeout * 1000), 1)
        return [f"SET statement_timeout TO {milliseconds}", lock, "RESET statement_timeout"]

    def load(self, conn: sa.Connection, job: CopyJob, objects: Sequence[ObjectInfo]) -> LoadResult:
        driver = _driver(conn)
        if not objects:
            if job.mode == "replace" and not job.validate:
                conn.execute(sa.delete(job.table))
            return LoadResult([], [])
        specs = job.schema.__fields__
        columns = [spec.name for spec in specs]
        dates = frozenset(spec.name for spec in specs if isinstance(spec.rule, DateRule))
        jsonpaths_key = join_key(
            job.metadata_prefix, "jsonpaths", f"{job.schema.__table__.name}.json"
        )
        job.store.put(jsonpaths_key, json.dumps(job.schema.__jsonpaths__, indent=2).encode())
        step = _Staging(self, conn, driver, job, columns, dates, job.store.uri(jsonpaths_key))
        step.views = self.facts(conn).views
        size = 1 if job.max_errors > 0 else STAGED_PER_BATCH
        # what the step ran so far (creating tables, the lock) goes into the final batch
        held = driver.take_pending()
        entries: list[Entry] = []
        rejects: list[Reject] = []
        chunks = [objects[start : start + size] for start in range(0, len(objects), size)]
        try:
            for number, chunk in enumerate(chunks):
                step.before = rejects
                last = job.validate and number == len(chunks) - 1
                previous = entries[-len(chunks[number - 1]) :] if number else []
                rows, new = step.stage(
                    chunk, len(entries), job.max_errors - len(rejects), previous, last=last
                )
                rejects += new
                for info in chunk:
                    entries.append(
                        Entry(
                            info,
                            rows.get(info.key, 0),
                            sum(r.key == info.key for r in new),
                            step.queries.get(info.key),
                        )
                    )
                    if job.on_object is not None:
                        job.on_object(info)
                if len(rejects) > job.max_errors:
                    raise TooManyRejectsError(
                        job.label, rejects[: job.max_errors + 1], job.max_errors
                    )
            if not job.validate:
                step.finish(held, entries[-len(chunks[-1]) :])
        finally:
            driver.session_id = None  # an unfinished session closes itself when idle
            if job.validate:
                # a validation sends only its own temporary work; the step's own statements
                # stay, to be rolled back
                driver.pending[:0] = held
        return LoadResult(entries, rejects)


class _Staging:
    """Stages a step's objects in a Data API session, batch by batch, then moves them into
    the target with their journal rows in one last batch (see the module docstring)."""

    def __init__(
        self,
        backend: RedshiftDataBackend,
        conn: sa.Connection,
        driver: Connection,
        job: CopyJob,
        columns: list[str],
        dates: frozenset[str],
        jsonpaths_url: str,
    ) -> None:
        self.backend, self.conn, self.driver, self.job = backend, conn, driver, job
        self.columns, self.dates, self.jsonpaths_url = columns, dates, jsonpaths_url
        self.manifests = 0
        self.before: list[Reject] = []  # the step's rejects in the batches before
        self.queries: dict[str, str] = {}  # per key, the query id of its COPY (telemetry)
        self.views: Any = None
        self.loading = load_table(job.table, job.run_id, dates, with_position=True)
        self.staged = journal_stage(job.table, job.run_id)
        self._keys: dict[int, str] = {}

    def _keep(self, statement: str | sa.ClauseElement) -> int:
        """Add a statement (a read, too) to the batch, its values bound; its place in it."""
        if isinstance(statement, str):
            pending = self.driver.prepared(statement, {})
        else:
            compiled = statement.compile(
                dialect=self.conn.dialect, compile_kwargs={"render_postcompile": True}
            )
            pending = self.driver.prepared(str(compiled), compiled.params)
        self.driver.pending.append(pending)
        return len(self.driver.pending) - 1

    def _journal_rows(self, entries: Sequence[Entry]) -> None:
        """Stage the journal rows of the objects staged in the batch before (their counts
        are known now)."""
        if not entries:
            return
        job = self.job
        now = dt.datetime.now(dt.UTC)
        self.conn.execute(
            sa.insert(self.staged),
            [
                {
                    "target": _target(job.schema.__table__),
                    "key": e.info.key,
                    "etag": e.info.etag,
                    "size": e.info.size,
                    "last_modified": e.info.last_modified,
                    "rows_loaded": e.rows_loaded,
                    "rows_rejected": e.rows_rejected,
                    "mode": job.mode,
                    "store": job.store.url,
                    "run_id": job.run_id,
                    "loaded_at": now,
                }
                for e in entries
            ],
        )

    def stage(
        self,
        objects: Sequence[ObjectInfo],
        start: int,
        budget: int,
        previous: Sequence[Entry],
        *,
        last: bool,
    ) -> tuple[dict[str, int], list[Reject]]:
        """Copy ``objects`` into the session's load table (one batch); their row counts
        and rejects. Nothing outside the session's temporary tables changes."""
        job, conn, loading = self.job, self.conn, self.loading
        if start == 0:
            conn.execute(CreateTable(loading))
            if not job.validate:
                conn.execute(CreateTable(self.staged))
        elif not job.validate:
            self._journal_rows(previous)
        reads: list[int] = []
        self._keys = {}
        for number, info in enumerate(objects, start=start + 1):
            run_copy(conn, self._copy(loading, info, budget))
            self._keys[len(self.driver.pending) - 1] = info.key
            reads.append(self._keep(self.views.last_copy))
            conn.execute(number_rows(loading, number))
        chunk = loading.c[POSITION_COLUMNS[0]]
        counted = self._keep(sa.select(chunk, sa.func.count()).where(chunk > start).group_by(chunk))
        done = self._send(session=True, last=last)
        numbered = dict(self.driver.result(done[counted]["Id"])[0])
        rows: dict[str, int] = {}
        rejects: list[Reject] = []
        for offset, info in enumerate(objects):
            found = self.driver.result(done[reads[offset]]["Id"])[0][0]
            _, new, query = recorded(
                conn, self.views, job.label, info.key, self.dates, found, no_load=job.validate
            )
            self.queries[info.key] = str(query)
            rows[info.key] = int(numbered.get(start + offset + 1, 0))
            rejects += new
        return rows, rejects

    def finish(self, held: list[Any], entries: Sequence[Entry]) -> None:
        """The final batch: the step's own statements (tables, the lock), the guards, the
        staged rows into the target and the staged journal rows into the journal; it
        closes the session."""
        job, conn, j = self.job, self.conn, journal.JOURNAL
        self._keys = {}
        self.driver.pending[:0] = held
        self._journal_rows(entries)
        target = _target(job.schema.__table__)
        mine = sa.and_(j.c.target == target, j.c.key.in_(sa.select(self.staged.c.key)))
        if job.mode == "incremental":
            self._keep(_fail_when(sa.exists().where(mine), _JOURNALED))
        self._apply()
        conn.execute(sa.delete(j).where(j.c.target == target if job.mode == "replace" else mine))
        names = [c.name for c in j.columns]
        conn.execute(sa.insert(j).from_select(names, sa.select(*[self.staged.c[n] for n in names])))
        if len(self.driver.pending) > BATCH_LIMIT:
            statements = len(self.driver.pending)
            self.driver.pending[:] = held
            raise ConfigurationError(
                f"{job.label}: the step's last Data API batch would hold {statements} "
                f"statements, over the {BATCH_LIMIT} one BatchExecuteStatement runs (the "
                f"step ran {len(held)} before its load: fewer new columns at once, or a "
                "direct connection)"
            )
        self._send(session=True, last=True)

    def _send(self, *, session: bool, last: bool) -> list[dict[str, Any]]:
        statements = self.driver.take_pending()
        try:
            return self.driver.send_batch(statements, session=session, last=last)
        except Error as exc:
            self._explain(exc, statements)
            raise self._failed(exc) from None

    def _copy(self, loading: sa.Table, info: ObjectInfo, budget: int) -> Any:
        number, self.manifests = self.manifests, self.manifests + 1
        return copy_object(
            self.job,
            loading,
            self.columns,
            self.jsonpaths_url,
            number,
            info,
            max_error=min(max(budget, 0), MAX_MAXERROR),
        )

    def _apply(self) -> None:
        """The staged rows into the target, by the step's mode."""
        job, conn, table, loading = self.job, self.conn, self.job.table, self.loading
        if job.mode == "merge":
            keys = [c.name for c in table.primary_key]
            if keys:
                chunk = loading.c[POSITION_COLUMNS[0]]
                distinct = (
                    sa.select(chunk, *[loading.c[c.name] for c in table.columns])
                    .distinct()
                    .subquery("records")
                )
                repeated = (
                    sa.select(sa.literal(1))
                    .select_from(distinct)
                    .group_by(distinct.c[chunk.name], *[distinct.c[k] for k in keys])
                    .having(sa.func.count() > 1)
                )
                self._keep(_fail_when(sa.exists(repeated), _AMBIGUOUS))
            staging = loading
            if self.dates:
                staging = staging_table(table, job.run_id, with_position=True)
                conn.execute(CreateTable(staging))
                conn.execute(settle(loading, staging, self.dates))
            upsert_from(conn, table, staging)
            return
        if job.mode == "replace":
            conn.execute(sa.delete(table))
        conn.execute(settle(loading, table, self.dates))

    def _failed(self, exc: Error) -> Exception:
        """The step's error for a batch that failed otherwise: retryable where trying again
        can help (the service, a lost connection, a timeout, a serialization conflict)."""
        message = str(exc)
        keys = self.job.credentials
        if keys is not None:
            for secret in (keys.access_key_id, keys.secret_access_key, keys.session_token):
                if secret:
                    message = message.replace(secret, "***")
        if exc.lost:
            return WarehouseUnavailableError(self.job.label, message)
        error = CopyError(self.job.label, message)
        error.retryable = bool(_RETRYABLE.search(message))
        return error

    def _explain(self, exc: Exception, statements: Sequence[Any]) -> None:
        """Raise the step's own error for a failed batch, where the failure says what."""
        failed = getattr(exc, "failed", None)
        if failed is None or not 0 <= failed < len(statements):
            return
        sql = statements[failed].sql
        label = self.job.label
        query = (getattr(exc, "substatements", None) or [{}] * (failed + 1))[failed].get(
            "RedshiftQueryId"
        )
        if sql.lstrip().startswith("COPY ") and query is not None:
            # over MAXERROR: the COPY's load errors outlive the rollback, by its query id
            new = recorded(
                self.conn, self.views, label, "", self.dates, (query, 0), no_load=True
            ).rejects
            key = self._keys.get(failed, "")
            rejects = self.before + [dataclasses.replace(r, key=key) for r in new]
            if len(rejects) > self.job.max_errors:
                raise TooManyRejectsError(
                    label, rejects[: self.job.max_errors + 1], self.job.max_errors
                ) from None
        if sql.startswith("LOCK "):
            raise ConcurrentRunError(
                label,
                f"another run held the lock for more than the lock_timeout ({exc}); try "
                "again later",
            ) from None
        if _JOURNALED in sql:
            raise ConcurrentRunError(
                label,
                "another run loaded some of these objects while this one was starting; "
                "nothing of this step was committed: run again to load the rest",
            ) from None
        if _AMBIGUOUS in sql:
            raise CopyError(
                label,
                "an object holds different records for one primary key; Redshift's COPY "
                "does not keep the order of the records within an object, so which is the "
                "newest cannot be told (identical repeats are fine)",
            ) from None
