"""One copy step's work in a Redshift Data API session (see ``redshift_data``): its objects
staged batch by batch into the session's temporary tables, then moved into the target with
their journal rows in one final batch; or, for a time series' partition, left for the step's
own last batch, which goes to the same session when the step commits."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from arbalest import journal
from arbalest.backends._redshift_copy import MAX_MAXERROR, copy_object, run_copy
from arbalest.backends._redshift_data import BATCH_LIMIT
from arbalest.backends._redshift_driver import Connection, Error
from arbalest.backends._redshift_tables import load_table, number_rows, settle
from arbalest.backends._redshift_views import LoadViews, recorded
from arbalest.backends.base import (
    POSITION_COLUMNS,
    CopyJob,
    staging_name,
    staging_table,
    upsert_from,
)
from arbalest.backends.redshift_tabular import TabularShapes, misfit
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
from arbalest.stores.base import ObjectInfo

__all__ = ["STAGING_FIXED", "SessionStep", "journal_stage", "per_object"]

#: The words of the guards' failures (a string that is not an integer).
_JOURNALED: Final = "arbalest: another run journaled these objects meanwhile"
_AMBIGUOUS: Final = "arbalest: an object holds different records for one primary key"
_MOVED: Final = "arbalest: another run moved this time series cursor meanwhile"
#: Redshift's words for a failure that may pass on another try.
_RETRYABLE: Final = re.compile(
    r"(?i)serializable isolation violation|deadlock|statement timeout|lock timeout|1023"
)
#: Dropping one of Arbalest's staging tables (every one of them is temporary).
_DROP_STAGED: Final = re.compile(r'^\s*DROP TABLE (?:\S+\.)?"?_arbalest_stage_', re.I)
#: Statements a staging batch needs besides those of its objects (tables, journal rows,
#: counts).
STAGING_FIXED: Final = 4


def per_object(fmt: str) -> int:
    """Statements a staging batch holds per object: JSON's ``COPY``, its read-back and the
    numbering of its rows; Parquet and CSV add the object's load table and the ``INSERT``
    by name from it."""
    return 3 if fmt == "json" else 5


def journal_stage(table: sa.Table, run_id: str) -> sa.Table:
    """The session's temporary table of a step's journal rows, until its final batch: the
    journal's columns, without its key (rows of one batch are staged in the next)."""
    columns = [sa.Column(c.name, c.type) for c in journal.JOURNAL.columns]
    name = staging_name(table, run_id, "_journal")
    return sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])


def _target(table: sa.Table) -> str:
    """The journal's name of a target table."""
    return f"{table.schema}.{table.name}" if table.schema else table.name


def _fail_when(condition: sa.ColumnElement[bool], words: str) -> sa.Select[Any]:
    """A ``SELECT`` that fails (casting ``words`` to an integer) when ``condition`` holds:
    plain SQL has no ``RAISE``, and a batch fails, whole, when one statement does."""
    failing = sa.case((condition, sa.literal_column(f"'{words}'")), else_=sa.literal_column("'0'"))
    return sa.select(sa.cast(failing, sa.Integer))


class SessionStep:
    """Stages a step's objects in a Data API session, batch by batch, then moves them into
    the target with their journal rows in one last batch (see ``redshift_data``).

    A time series' partition (a job ``into`` a staging table) stages the same way; its rows
    go into the partition's staging table, and its journal rows are the step's own, in the
    step's last batch (``hand_over``)."""

    def __init__(
        self,
        conn: sa.Connection,
        driver: Connection,
        job: CopyJob,
        views: LoadViews,
        jsonpaths_url: str,
    ) -> None:
        self.conn, self.driver, self.job, self.views = conn, driver, job, views
        specs = job.schema.__fields__
        self.columns = [spec.name for spec in specs]
        self.jsonpaths_url = jsonpaths_url
        self.shapes = TabularShapes(job) if job.format != "json" else None
        #: The DATE fields: their load columns are TIMESTAMPTZ, their bad values 1205.
        self.dates = frozenset(s.name for s in specs if isinstance(s.rule, DateRule))
        #: The session's load table's DATE columns (TIMESTAMPTZ, settled in UTC when the
        #: rows move on); Parquet and CSV rows come into it settled already.
        self.settle_dates = self.dates if self.shapes is None else frozenset()
        self.manifests = 0
        self.before: list[Reject] = []  # the step's rejects in the batches before
        self.queries: dict[str, str] = {}  # per key, the query id of its COPY (telemetry)
        self.loading = load_table(job.table, job.run_id, self.settle_dates, with_position=True)
        self.staged = journal_stage(job.table, job.run_id)
        #: Journal rows are staged in the session (a time series writes its own).
        self.journals = not job.validate and job.into is None
        #: A time series' partition whose staging table the session makes and fills
        #: itself, in its staging batches (``take_creation``).
        self.owns_table = False
        self._keys: dict[int, str] = {}  # per statement of the batch, its object
        self._inserts: set[int] = set()  # the statements moving a Parquet object's rows

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

    def _mark(self, key: str) -> None:
        """The statement just kept is object ``key``'s."""
        self._keys[len(self.driver.pending) - 1] = key

    def _journal_rows(self, entries: Sequence[Entry]) -> None:
        """Stage the journal rows of the objects staged in the batch before (their counts
        are known now)."""
        if not entries:
            return
        job = self.job
        rows = journal.journal_rows(
            entries,
            target=_target(job.schema.__table__),
            mode=job.mode,
            store=job.store.url,
            run_id=job.run_id,
        )
        self.conn.execute(sa.insert(self.staged), rows)

    def stage(
        self,
        objects: Sequence[ObjectInfo],
        start: int,
        budget: int,
        previous: Sequence[Entry],
        *,
        last: bool,
        moving: bool = False,
    ) -> tuple[dict[str, int], list[Reject]]:
        """Copy ``objects`` into the session's load table (one batch); their row counts
        and rejects. Nothing outside the session's temporary tables changes. ``moving``:
        the step's last objects, whose batch also fills a partition's staging table (with
        ``owns_table``)."""
        job, conn, loading = self.job, self.conn, self.loading
        if start == 0:
            if self.owns_table:
                conn.execute(CreateTable(job.table))
            conn.execute(CreateTable(loading))
            if self.journals:
                conn.execute(CreateTable(self.staged))
        elif self.journals:
            self._journal_rows(previous)
        reads: list[int | None] = []
        self._keys, self._inserts = {}, set()
        max_error = min(max(budget, 0), MAX_MAXERROR)
        for number, info in enumerate(objects, start=start + 1):
            if self.shapes is None:
                run_copy(conn, self._copy(loading, info, max_error))
                self._mark(info.key)
                reads.append(self._keep(self.views.last_copy))
            else:
                shaped = self.shapes.layout(info)
                if shaped is None:  # an empty CSV object: nothing to copy
                    reads.append(None)
                    continue
                conn.execute(CreateTable(shaped.load))
                run_copy(conn, self.shapes.copy_of(shaped, max_error=max_error))
                self._mark(info.key)
                reads.append(self._keep(self.views.last_copy))
                # the object's rows by name into the load table (its load table goes when
                # the session closes)
                conn.execute(self.shapes.insert(loading, shaped))
                self._mark(info.key)
                self._inserts.add(len(self.driver.pending) - 1)
            conn.execute(number_rows(loading, number))
        chunk = loading.c[POSITION_COLUMNS[0]]
        counted = self._keep(sa.select(chunk, sa.func.count()).where(chunk > start).group_by(chunk))
        if moving and self.owns_table:
            self._apply()
        done = self._send(last=last)
        numbered = dict(self.driver.result(done[counted]["Id"])[0])
        rows: dict[str, int] = {}
        rejects: list[Reject] = []
        for offset, info in enumerate(objects):
            read = reads[offset]
            rows[info.key] = int(numbered.get(start + offset + 1, 0))
            if read is None:
                continue
            found = self.driver.result(done[read]["Id"])[0][0]
            _, new, query = recorded(
                conn, self.views, job.label, info.key, self.dates, found, no_load=job.validate
            )
            self.queries[info.key] = str(query)
            if self.shapes is None or self.shapes.rejects:
                rejects += new  # (COPY from Parquet loads every row, or fails)
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
        self._send(last=True)

    def take_creation(self, held: list[Any]) -> None:
        """A time series' partition: take the creation of its staging table (temporary, so
        the session's own) out of the statements the step ran so far, for the session to
        make and fill while staging (``owns_table``); left where it is if not found."""
        made = str(CreateTable(self.job.table).compile(dialect=self.conn.dialect)).strip()
        for number, pending in enumerate(held):
            if pending.sql.strip() == made:
                del held[number]
                self.owns_table = True
                return

    def hand_over(self, held: list[Any]) -> None:
        """A time series' partition, staged: what the step ran before (and, unless the
        session filled it, the partition's staging table) kept for the step's last batch,
        and the session left open: the step's commit sends that batch to it (``close``),
        and so closes it."""
        self._keys = {}
        self.driver.pending[:0] = held
        if self.driver.closing is None and self.job.cursor is not None:
            # (after the lock, once per step) the cursor read outside it, unmoved
            name, read = self.job.cursor
            cursors = journal.CURSORS
            point = sa.select(cursors.c.point).where(cursors.c.name == name).scalar_subquery()
            moved = sa.func.coalesce(point, "") != (read or "")
            self._keep(_fail_when(moved, _MOVED))
        if not self.owns_table:
            self._apply()
        self.driver.closing = self.close

    def close(self, statements: list[Any]) -> None:
        """Send the step's last batch (``statements``) to the session, which it closes.
        Dropping the step's temporary tables is left out: they go with the session."""
        self._keys = {}
        statements = [s for s in statements if _DROP_STAGED.match(s.sql) is None]
        if len(statements) > BATCH_LIMIT:
            self.driver.session_id = None  # left to expire
            raise ConfigurationError(
                f"{self.job.label}: the step's last Data API batch would hold "
                f"{len(statements)} statements, over the {BATCH_LIMIT} one "
                "BatchExecuteStatement runs: load fewer partitions at once "
                "(SortedSources(..., end=...)), or use a direct connection"
            )
        self.driver.pending[:] = statements
        self._send(last=True)

    def _send(self, *, last: bool) -> list[dict[str, Any]]:
        statements = self.driver.take_pending()
        try:
            return self.driver.send_batch(statements, session=True, last=last)
        except Error as exc:
            self._explain(exc, statements)
            raise self._failed(exc) from None

    def _copy(self, loading: sa.Table, info: ObjectInfo, max_error: int) -> Any:
        number, self.manifests = self.manifests, self.manifests + 1
        return copy_object(
            self.job, loading, self.columns, self.jsonpaths_url, number, info, max_error=max_error
        )

    def _apply(self) -> None:
        """The staged rows into the target, by the step's mode."""
        job, conn, table, loading = self.job, self.conn, self.job.table, self.loading
        dates = self.settle_dates
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
            if dates:
                staging = staging_table(table, job.run_id, with_position=True)
                conn.execute(CreateTable(staging))
                conn.execute(settle(loading, staging, dates))
            upsert_from(conn, table, staging)
            return
        if job.mode == "replace":
            conn.execute(sa.delete(table))
        conn.execute(settle(loading, table, dates))

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
        key = self._keys.get(failed, "")
        if sql.lstrip().startswith("COPY ") and query is not None:
            # over MAXERROR: the COPY's load errors outlive the rollback, by its query id
            new = recorded(
                self.conn, self.views, label, "", self.dates, (query, 0), no_load=True
            ).rejects
            rejects = self.before + [dataclasses.replace(r, key=key) for r in new]
            if len(rejects) > self.job.max_errors:
                raise TooManyRejectsError(
                    label, rejects[: self.job.max_errors + 1], self.job.max_errors
                ) from None
        if failed in self._inserts:
            # a Parquet value that does not fit its column (COPY from Parquet takes no
            # MAXERROR): as on a direct connection
            raise misfit(label, key, str(exc)) from None
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
        if _MOVED in sql:
            raise ConcurrentRunError(
                label,
                "another run of this time series moved its cursor while this one was "
                "loading; nothing of this step was committed: run again to load the rest",
            ) from None
        if _AMBIGUOUS in sql:
            raise CopyError(
                label,
                "an object holds different records for one primary key; Redshift's COPY "
                "does not keep the order of the records within an object, so which is the "
                "newest cannot be told (identical repeats are fine)",
            ) from None
