"""Redshift through the Data API (``redshift+data://``, ``RedshiftDataAPI``): the same
``COPY`` from S3 as ``redshift``, sent in batches, because the Data API keeps no session
between calls.

A copy step's objects are loaded in *parts*; each part is one ``BatchExecuteStatement``,
so one transaction, holding, in order:

1. the first part only: what the step ran before the load (creating the journal, the target
   and its lock table where missing);
2. the target's run lock: ``SET statement_timeout`` to ``lock_timeout``, ``LOCK`` (with the
   journal, under ``SERIALIZABLE``), ``RESET statement_timeout``;
3. ``incremental``: a guard that fails the batch when another run has journaled any of the
   part's objects since this run read the journal (the lock is only taken inside the batch,
   after the journal was read outside it); the step then fails with a retryable
   ``ConcurrentRunError``, and the next run loads what is left;
4. a temporary load table, and per object: its ``COPY`` (with its one-object manifest), the
   ``SELECT`` of ``LoadViews.last_copy`` (its result is read back with
   ``GetStatementResult``), and the numbering of the object's rows;
5. the rows into the target (``replace``: after deleting the old ones; ``merge``: a guard
   refusing an object with different records for one key, then the upsert);
6. the part's journal rows (``rows_loaded`` counted from the load table), after deleting
   those of the same keys.

So each part's rows and journal rows commit together or not at all: a run that dies
anywhere leaves data and journal agreeing, and the next run loads exactly the objects that
are missing. After a part, its rejects are read back (``STL_LOAD_ERRORS``, or the ``SYS_``
views, which fill in late) and the step's own journal write, which the runner sends when
the step commits, rewrites the same journal rows with the rejected counts (it changes no
key, so a crash before it loses nothing).

What differs from a direct connection:

- A step of many objects commits part by part (a batch holds at most 40 statements); a
  failure leaves the parts before it committed, each with its journal rows. ``replace``
  must fit in one part (a ``ConfigurationError`` says so otherwise).
- With ``max_errors`` > 0 each part is one object, whose ``COPY`` has the rest of the
  step's budget as ``MAXERROR``: more rejects fail that ``COPY``, and so its part.
- Parquet and CSV objects, and time series (whose staging tables must outlive a batch),
  need a direct connection.
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
from arbalest.backends._redshift_copy import MAX_MAXERROR, build_copy, put_manifest, run_copy
from arbalest.backends._redshift_data import BATCH_LIMIT, RedshiftDataAPI
from arbalest.backends._redshift_driver import Connection, Error
from arbalest.backends._redshift_views import recorded
from arbalest.backends.base import POSITION_COLUMNS, CopyJob, LoadResult, quote_table, upsert_from
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
from arbalest.loading.reader import compression_of
from arbalest.loading.rejects import Reject
from arbalest.stores.base import ObjectInfo, join_key

__all__ = ["RedshiftDataBackend", "data_api_of"]

#: What ``Connection.info`` keeps the run lock's statements under (sent again per part).
_LOCK_KEY: Final = "arbalest.data_api.lock"
#: The words of the guards' failures (a string that is not an integer).
_JOURNALED: Final = "arbalest: another run journaled these objects meanwhile"
_AMBIGUOUS: Final = "arbalest: an object holds different records for one primary key"
#: Redshift's words for a failure that may pass on another try.
_RETRYABLE: Final = re.compile(
    r"(?i)serializable isolation violation|deadlock|statement timeout|lock timeout|1023"
)
#: Statements a part needs besides 3 per object (lock, guards, tables, journal, rows).
_FIXED: Final = 14


def data_api_of(engine: sa.Engine) -> RedshiftDataAPI | None:
    """The ``RedshiftDataAPI`` an engine was made for (``None``: another engine)."""
    api = getattr(engine.dialect, "arbalest_data_api", None)
    return api if isinstance(api, RedshiftDataAPI) else None


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
                f"{job.label}: a time series stages its partitions in temporary tables that "
                "must outlive one Data API call; use a direct connection "
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
        conn.info[_LOCK_KEY] = statements
        for statement in statements:
            conn.exec_driver_sql(statement)
        yield

    @contextlib.contextmanager
    def creation_lock(
        self, conn: sa.Connection, timeout: float, *, validate: bool = False
    ) -> Iterator[None]:
        if not journal.table_exists(conn, CREATION_LOCK):
            if validate:
                yield
                return
            self._create_creation_lock()  # a batch of its own
        for statement in self._bounded(timeout, f"LOCK {quote_table(conn.dialect, CREATION_LOCK)}"):
            conn.exec_driver_sql(statement)
        yield

    @staticmethod
    def _bounded(timeout: float, lock: str) -> list[str]:
        # a fresh session per batch: RESET gives the workgroup's or user's own value back
        milliseconds = max(int(timeout * 1000), 1)
        return [f"SET statement_timeout TO {milliseconds}", lock, "RESET statement_timeout"]

    def load(self, conn: sa.Connection, job: CopyJob, objects: Sequence[ObjectInfo]) -> LoadResult:
        driver = _driver(conn)
        views = self.facts(conn).views
        specs = job.schema.__fields__
        columns = [spec.name for spec in specs]
        dates = frozenset(spec.name for spec in specs if isinstance(spec.rule, DateRule))
        jsonpaths_key = join_key(
            job.metadata_prefix, "jsonpaths", f"{job.schema.__table__.name}.json"
        )
        if objects:
            job.store.put(jsonpaths_key, json.dumps(job.schema.__jsonpaths__, indent=2).encode())
        part = _Part(self, conn, driver, job, columns, dates, job.store.uri(jsonpaths_key))
        size = (
            1 if job.max_errors > 0 else max((BATCH_LIMIT - _FIXED - len(driver.pending)) // 3, 1)
        )
        if job.mode == "replace" and len(objects) > size and not job.validate:
            raise ConfigurationError(
                f"{job.label}: a replace over the Redshift Data API loads its objects in one "
                f"transaction, and one BatchExecuteStatement holds {size} object(s) here; "
                f"{len(objects)} are under the source: use mode='incremental' or 'merge', or "
                "a direct connection"
            )
        if not objects and job.mode == "replace" and not job.validate:
            conn.execute(sa.delete(job.table))
        entries: list[Entry] = []
        rejects: list[Reject] = []
        for start in range(0, len(objects), size):
            chunk = objects[start : start + size]
            part.before = rejects
            rows, found = part.run(chunk, views, start, job.max_errors - len(rejects))
            new = list(found)
            rejects += new
            for info in chunk:
                entries.append(
                    Entry(
                        info,
                        rows.get(info.key, 0),
                        sum(r.key == info.key for r in new),
                        part.queries.get(info.key),
                    )
                )
                if job.on_object is not None:
                    job.on_object(info)
            if len(rejects) > job.max_errors:
                raise TooManyRejectsError(job.label, rejects[: job.max_errors + 1], job.max_errors)
        return LoadResult(entries, rejects)


class _Part:
    """Sends one part of a step's objects as one batch, and reads back what it did."""

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
        self.queries: dict[str, str] = {}  # per key, the query id of its COPY (telemetry)
        self.before: list[Reject] = []  # the step's rejects in the parts before
        self.views: Any = None

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

    def run(
        self, objects: Sequence[ObjectInfo], views: Any, start: int, budget: int
    ) -> tuple[dict[str, int], list[Reject]]:
        job, conn, table = self.job, self.conn, self.job.table
        self.views = views
        if not self.driver.pending and not job.validate:  # a later part: the lock again
            for statement in conn.info.get(_LOCK_KEY, []):
                conn.exec_driver_sql(statement)
        saved = self.driver.take_pending() if job.validate else []
        if job.mode == "incremental" and not job.validate:
            keys = [info.key for info in objects]
            name = f"{table.schema}.{table.name}" if table.schema else table.name
            seen = sa.exists().where(
                journal.JOURNAL.c.target == name, journal.JOURNAL.c.key.in_(keys)
            )
            self._keep(_fail_when(seen, _JOURNALED))
        loading = load_table(table, job.run_id, self.dates, with_position=True)
        conn.execute(CreateTable(loading))
        reads: list[int] = []
        self._keys: dict[int, str] = {}
        for number, info in enumerate(objects, start=start + 1):
            run_copy(conn, self._copy(loading, info, budget))
            self._keys[len(self.driver.pending) - 1] = info.key
            reads.append(self._keep(views.last_copy))
            conn.execute(number_rows(loading, number))
        chunk = loading.c[POSITION_COLUMNS[0]]
        if not job.validate:
            self._apply(loading, objects)
            counts = {
                info.key: sa.select(sa.func.count()).select_from(loading).where(chunk == n)
                for n, info in enumerate(objects, start=start + 1)
            }
            self._journal(objects, counts)
        counted = self._keep(sa.select(chunk, sa.func.count()).group_by(chunk))
        statements = self.driver.take_pending()
        try:
            done = self.driver.send_batch(statements)
        except Error as exc:
            self._explain(exc, statements)
            raise self._failed(exc) from None
        finally:
            # a validation sends only its own temporary work; the step's own statements
            # stay, to be rolled back
            self.driver.pending[:0] = saved
        numbered = dict(self.driver.result(done[counted]["Id"])[0])
        rows: dict[str, int] = {}
        rejects: list[Reject] = []
        for offset, info in enumerate(objects):
            found = self.driver.result(done[reads[offset]]["Id"])[0][0]
            _, new, query = recorded(
                conn, views, job.label, info.key, self.dates, found, no_load=job.validate
            )
            self.queries[info.key] = str(query)
            rows[info.key] = int(numbered.get(start + offset + 1, 0))
            rejects += new
        return rows, rejects

    def _copy(self, loading: sa.Table, info: ObjectInfo, budget: int) -> Any:
        job = self.job
        manifest_url = put_manifest(job, self.manifests, info)
        self.manifests += 1
        return build_copy(
            loading,
            self.columns,
            manifest_url=manifest_url,
            jsonpaths_url=self.jsonpaths_url,
            iam_role=job.iam_role,
            credentials=job.credentials,
            region=job.region,
            compression=compression_of(info.key, job.compression),
            time_format=job.options.time_format,
            max_error=min(max(budget, 0), MAX_MAXERROR),
            truncate_columns=job.options.truncate_columns,
            no_load=job.validate,
        )

    def _apply(self, loading: sa.Table, objects: Sequence[ObjectInfo]) -> None:
        job, conn, table = self.job, self.conn, self.job.table
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
                from arbalest.backends.base import staging_table

                staging = staging_table(table, job.run_id, with_position=True)
                conn.execute(CreateTable(staging))
                conn.execute(settle(loading, staging, self.dates))
            upsert_from(conn, table, staging)
            return
        if job.mode == "replace":
            conn.execute(sa.delete(table))
        conn.execute(settle(loading, table, self.dates))

    def _journal(self, objects: Sequence[ObjectInfo], counts: dict[str, sa.Select[Any]]) -> None:
        job, conn, j = self.job, self.conn, journal.JOURNAL
        table = job.schema.__table__
        target = f"{table.schema}.{table.name}" if table.schema else table.name
        if job.mode == "replace":
            conn.execute(sa.delete(j).where(j.c.target == target))
        else:
            keys = [info.key for info in objects]
            conn.execute(sa.delete(j).where(j.c.target == target, j.c.key.in_(keys)))
        names = [c.name for c in j.columns]
        now = dt.datetime.now(dt.UTC)

        def value(column: str, given: Any) -> sa.ColumnElement[Any]:
            # typed in the SQL: the Data API's parameters are strings, and a UNION of them
            # would be text
            return sa.cast(sa.literal(given), j.c[column].type).label(column)

        selects = [
            sa.select(
                value("target", target),
                value("key", info.key),
                value("etag", info.etag),
                value("size", info.size),
                value("last_modified", info.last_modified),
                counts[info.key].scalar_subquery().label("rows_loaded"),
                value("rows_rejected", 0),
                value("mode", job.mode),
                value("store", job.store.url),
                value("run_id", job.run_id),
                value("loaded_at", now),
            )
            for info in objects
        ]
        conn.execute(sa.insert(j).from_select(names, sa.union_all(*selects)))

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
            _, new, _ = recorded(
                self.conn, self.views, label, "", self.dates, (query, 0), no_load=True
            )
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
                "nothing of this part was committed: run again to load the rest",
            ) from None
        if _AMBIGUOUS in sql:
            raise CopyError(
                label,
                "an object holds different records for one primary key; Redshift's COPY "
                "does not keep the order of the records within an object, so which is the "
                "newest cannot be told (identical repeats are fine)",
            ) from None
