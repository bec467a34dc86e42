"""Redshift through the Data API (``redshift+data://``, ``RedshiftDataAPI``): the same
``COPY`` from S3 as ``redshift``, sent in batches. A transaction cannot span two Data API
calls, but one ``BatchExecuteStatement`` (at most 40 statements) is one transaction, and a
Data API *session* keeps its temporary tables from one call to the next.

So a copy step runs in one session, in two phases:

1. *Staging*, as many batches as its objects need (12 JSON objects a batch, 7 Parquet or
   CSV ones; one with ``max_errors`` > 0, whose ``COPY`` gets the rest of the step's budget
   as ``MAXERROR``): per object its ``COPY`` (with its one-object manifest) into the
   session's temporary load table, the ``SELECT`` of ``LoadViews.last_copy`` (read back
   with ``GetStatementResult``) and the numbering of its rows; then the count of the
   batch's rows per object. A Parquet or CSV object is copied as on a direct connection
   (``redshift_tabular``): into a temporary table shaped like it, whose fields then go by
   name into the load table. After each
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

A time series stages each new partition's objects the same way, in one session; each
partition's rows then go into its staging table, and everything else the step does (the
journal rows, replacing the target's rows, the cursor) waits for the step's commit, which
sends it, with what the step ran before its loads and a guard that fails it when another
run has moved the cursor since this one read it (a retryable ``ConcurrentRunError``), as
the session's last batch: one transaction again.

What differs from a direct connection: the final batch holds the statements the step ran
before its load plus about ten, and a time series about five per partition more (a
``ConfigurationError`` says so if that passes 40, before anything is committed).
"""

from __future__ import annotations

import contextlib
import json
import typing
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Final

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from arbalest import journal
from arbalest.backends._redshift_data import BATCH_LIMIT, RedshiftDataAPI
from arbalest.backends._redshift_driver import Connection
from arbalest.backends._redshift_session import (
    STAGING_FIXED,
    SessionStep,
    journal_stage,
    per_object,
)
from arbalest.backends.base import CopyJob, LoadResult, quote_table
from arbalest.backends.redshift import CREATION_LOCK, RedshiftBackend, lock_table
from arbalest.errors import TooManyRejectsError
from arbalest.journal import Entry
from arbalest.loading.rejects import Reject
from arbalest.stores.base import ObjectInfo, join_key

__all__ = ["STAGED_PER_BATCH", "RedshiftDataBackend", "data_api_of", "journal_stage"]

#: Objects a staging batch holds (with ``max_errors`` = 0): JSON objects; fewer Parquet or
#: CSV objects, which take more statements each (``per_object``).
STAGED_PER_BATCH: Final = (BATCH_LIMIT - STAGING_FIXED) // per_object("json")


def data_api_of(engine: sa.Engine) -> RedshiftDataAPI | None:
    """The ``RedshiftDataAPI`` an engine was made for (``None``: another engine)."""
    api = getattr(engine.dialect, "arbalest_data_api", None)
    return api if isinstance(api, RedshiftDataAPI) else None


def _driver(conn: sa.Connection) -> Connection:
    dbapi: Any = conn.connection.dbapi_connection  # a redshift+data engine's
    return typing.cast(Connection, dbapi)


def _chunk_size(job: CopyJob) -> int:
    """How many objects one staging batch holds."""
    if job.max_errors > 0:
        return 1
    fits = (BATCH_LIMIT - STAGING_FIXED) // per_object(job.format)
    return max(1, min(STAGED_PER_BATCH, fits))


class RedshiftDataBackend(RedshiftBackend):
    """Loads with ``COPY`` through the Data API (see the module docstring)."""

    name = "redshift"
    #: The Data API's driver sends each batch itself: statements are compiled here.
    uses_batches: ClassVar[bool] = True

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
        jsonpaths_url = ""
        if job.format == "json":
            jsonpaths_key = join_key(
                job.metadata_prefix, "jsonpaths", f"{job.schema.__table__.name}.json"
            )
            job.store.put(jsonpaths_key, json.dumps(job.schema.__jsonpaths__, indent=2).encode())
            jsonpaths_url = job.store.uri(jsonpaths_key)
        step = SessionStep(conn, driver, job, self.facts(conn).views, jsonpaths_url)
        size = _chunk_size(job)
        # what the step ran so far (creating tables, the lock) goes into the final batch
        held = driver.take_pending()
        if job.into is not None and not job.validate:
            step.take_creation(held)
        entries: list[Entry] = []
        rejects: list[Reject] = []
        chunks = [objects[start : start + size] for start in range(0, len(objects), size)]
        kept = False
        try:
            for number, chunk in enumerate(chunks):
                step.before = rejects
                last = job.validate and number == len(chunks) - 1
                previous = entries[-len(chunks[number - 1]) :] if number else []
                rows, new = step.stage(
                    chunk,
                    len(entries),
                    job.max_errors - len(rejects),
                    previous,
                    last=last,
                    moving=number == len(chunks) - 1,
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
            if job.validate:
                pass
            elif job.into is None:
                step.finish(held, entries[-len(chunks[-1]) :])
            else:
                # a time series' partition: the step's own last batch moves its rows on
                step.hand_over(held)
                kept = True
        finally:
            if not kept:
                driver.session_id = None  # an unfinished session closes itself when idle
                driver.closing = None
            if job.validate:
                # a validation sends only its own temporary work; the step's own statements
                # stay, to be rolled back
                driver.pending[:0] = held
        return LoadResult(entries, rejects)
