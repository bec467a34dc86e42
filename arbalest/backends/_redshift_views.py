"""Reading back what Redshift recorded of a ``COPY``: its rows and its load errors, from
``STL_LOAD_ERRORS`` on a provisioned cluster or from the ``SYS_`` views (Redshift Serverless),
the facts about a warehouse that decide which (found once per connection), and the tally of a
step's COPYs (rows and rejects per object, against the step's ``max_errors``)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import sqlalchemy as sa

from arbalest.backends._redshift_copy import MAX_MAXERROR, run_copy
from arbalest.backends.base import CopyJob, LoadResult
from arbalest.convert import BAD_DATE, BAD_TIMESTAMP, DateRule
from arbalest.errors import CopyError, TooManyRejectsError
from arbalest.journal import Entry
from arbalest.loading.rejects import Reject, clip
from arbalest.stores.base import ObjectInfo

__all__ = [
    "STL",
    "SYS",
    "CopyTally",
    "LoadViews",
    "Recorded",
    "WarehouseFacts",
    "probe",
    "read_back",
    "recorded",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadViews:
    """Where a warehouse records what each ``COPY`` did, as the SQL that reads it back.

    Each ``errors`` row is ``(line, column, value, reason, code)``, as a ``Reject`` takes them.

    Attributes:
        name: ``"stl"`` or ``"sys"``.
        last_copy: The statement, run right after a ``COPY``, that gives its query id (and,
            for ``STL``, its rows).
        history: For ``SYS``: the ``COPY``'s rows and error count, by ``:query``.
        errors: The ``COPY``'s load errors, by ``:query``.
        session_errors: The load errors of the last ``COPY`` of session ``:pid``.
        lags: The views fill in a moment after the statement returns: read again until they
            hold what was asked for.
    """

    name: str
    last_copy: str
    history: str | None
    errors: str
    session_errors: str
    lags: bool


#: A provisioned cluster's ``STL_LOAD_ERRORS``: ``query`` is ``pg_last_copy_id()``.
STL: Final = LoadViews(
    name="stl",
    last_copy="SELECT pg_last_copy_id(), pg_last_copy_count()",
    history=None,
    errors=(
        "SELECT line_number, trim(colname), trim(raw_field_value), trim(err_reason), err_code "
        "FROM stl_load_errors WHERE query = :query ORDER BY starttime, line_number"
    ),
    session_errors=(
        "SELECT line_number, trim(colname), trim(raw_field_value), trim(err_reason), err_code "
        "FROM stl_load_errors WHERE session = :pid AND query = "
        "(SELECT max(query) FROM stl_load_errors WHERE session = :pid) "
        "ORDER BY starttime, line_number"
    ),
    lags=False,
)
#: The ``SYS_`` monitoring views (Redshift Serverless; provisioned clusters have them too).
#: Their ``query_id`` is not ``pg_last_copy_id()``'s: ``last_user_query_id()`` gives it, for
#: the statement before. They keep no raw field value, so a reject's ``value`` is ``None``.
SYS: Final = LoadViews(
    name="sys",
    last_copy="SELECT last_user_query_id()",
    history="SELECT loaded_rows, error_count FROM sys_load_history WHERE query_id = :query",
    errors=(
        "SELECT line_number, trim(column_name), CAST(NULL AS VARCHAR), trim(error_message), "
        "error_code FROM sys_load_error_detail WHERE query_id = :query "
        "ORDER BY start_time, line_number"
    ),
    session_errors=(
        "SELECT line_number, trim(column_name), CAST(NULL AS VARCHAR), trim(error_message), "
        "error_code FROM sys_load_error_detail WHERE session_id = :pid AND query_id = "
        "(SELECT max(query_id) FROM sys_load_error_detail WHERE session_id = :pid) "
        "ORDER BY start_time, line_number"
    ),
    lags=True,
)

#: Where the facts found on a connection are kept (``Connection.info`` lives as long as the
#: driver's connection).
_FACTS_KEY: Final = "arbalest.redshift"
_PROBE_STL: Final = "SELECT 1 FROM stl_load_errors LIMIT 1"
_PROBE_ISOLATION: Final = (
    "SELECT trim(isolation_level) FROM stv_db_isolation_level WHERE db_name = current_database()"
)


@dataclass(frozen=True)
class WarehouseFacts:
    """What Arbalest found out about a Redshift warehouse on one connection.

    Attributes:
        views: Where loads are recorded (``STL``, or ``SYS`` where ``STL_`` cannot be read).
        serializable: The database has ``SERIALIZABLE`` isolation (then the journal is locked
            with a target's lock). Where ``STV_DB_ISOLATION_LEVEL`` cannot be read: assumed
            on a provisioned cluster (its default before ``SNAPSHOT``), not on Serverless
            (``SNAPSHOT`` is the default of every workgroup).
    """

    views: LoadViews
    serializable: bool


def probe(conn: sa.Connection) -> WarehouseFacts:
    """Find out ``WarehouseFacts`` with two small queries, each in a transaction of its own
    (a query that fails aborts its transaction). ``conn`` must not be in a transaction."""
    stl = _answers(conn, _PROBE_STL) is not None
    level = _answers(conn, _PROBE_ISOLATION)
    # the level as the view shows it ("Serializable", "Snapshot Isolation"), else assumed
    found = str(level[0][0]).strip().lower() if level else None
    serializable = found.startswith("serializable") if found is not None else stl
    facts = WarehouseFacts(STL if stl else SYS, serializable)
    logger.debug(
        "Redshift: loads recorded in the %s views, %s isolation (%s)",
        facts.views.name.upper(),
        "SERIALIZABLE" if serializable else "SNAPSHOT",
        "found" if level else "assumed",
    )
    return facts


def _answers(conn: sa.Connection, sql: str) -> list[Any] | None:
    """The rows of ``sql``, or ``None`` if the warehouse refuses it (no such view, no
    permission): a refusal that is not a lost connection."""
    try:
        with conn.begin():
            return list(conn.exec_driver_sql(sql).all())
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        return None


#: How long to wait, at most, for a view that fills in a moment after the statement (SYS):
#: for the COPY's history row (without it, its rows cannot be counted), and for as many
#: error rows as the history counts.
_LAG_SECONDS: Final = 10.0
_DETAIL_LAG_SECONDS: Final = 5.0


def _waited(read: Any, done: Any, seconds: float | None = None) -> Any:
    """``read()`` until ``done(result)``, pausing longer each time, for up to ``seconds``
    (default ``_LAG_SECONDS``); the last result either way."""
    deadline = time.monotonic() + (_LAG_SECONDS if seconds is None else seconds)
    pause = 0.05
    result = read()
    while not done(result) and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
        result = read()
    return result


class Recorded(NamedTuple):
    """What Redshift recorded of one ``COPY``: the rows it loaded, its rejects, and its
    query id (``pg_last_copy_id()``, or ``last_user_query_id()`` on Serverless)."""

    rows: int
    rejects: list[Reject]
    query: int


def read_back(
    conn: sa.Connection,
    views: LoadViews,
    label: str,
    key: str,
    dates: frozenset[str],
    *,
    no_load: bool = False,
) -> Recorded:
    """The rows loaded, the rejects and the query id of the ``COPY`` that ``conn`` ran last
    (``no_load``: a ``COPY ... NOLOAD``, which loads no rows).

    Raises:
        CopyError: If the ``SYS`` views do not record a loading ``COPY`` in time.
    """
    found = conn.execute(sa.text(views.last_copy)).one()
    return recorded(conn, views, label, key, dates, tuple(found), no_load=no_load)


def recorded(
    conn: sa.Connection,
    views: LoadViews,
    label: str,
    key: str,
    dates: frozenset[str],
    found: tuple[Any, ...],
    *,
    no_load: bool = False,
) -> Recorded:
    """As ``read_back``, from the row ``views.last_copy`` gave right after the ``COPY``
    (``found``; read through the Data API, where that row comes back with the batch)."""
    query = int(found[0])
    expected: int | None = None
    if views.history is None:
        rows = int(found[1])
    else:
        history = _waited(
            lambda: conn.execute(sa.text(views.history), {"query": query}).first(),
            lambda row: row is not None,
        )
        if history is None and no_load:
            # nothing was loaded to count: the rejects are what a validation is after
            history = (0, None)
        if history is None:
            raise CopyError(
                label,
                f"Redshift has not recorded the COPY of {key} (query {query}) in "
                f"SYS_LOAD_HISTORY after {_LAG_SECONDS:g} s, so its rows cannot be counted; "
                "the step is rolled back: run it again",
            )
        rows = int(history[0])
        expected = None if history[1] is None else int(history[1])

    def read() -> list[Any]:
        return list(conn.execute(sa.text(views.errors), {"query": query}))

    found_errors = _waited(
        read,
        lambda r: expected is None or len(r) >= expected,
        min(_DETAIL_LAG_SECONDS, _LAG_SECONDS),
    )
    if expected is not None and len(found_errors) < expected:
        logger.warning(
            "%s: SYS_LOAD_HISTORY counts %d load error(s) for %s, SYS_LOAD_ERROR_DETAIL holds %d",
            label,
            expected,
            key,
            len(found_errors),
        )
    return Recorded(rows, [_reject(row, key, dates) for row in found_errors], query)


def _reject(row: Sequence[Any], key: str, dates: frozenset[str]) -> Reject:
    line, column, value, reason, code = row
    column = str(column).strip() or None if column is not None else None
    reason, code = str(reason).strip(), int(code)
    if column in dates and code == BAD_TIMESTAMP:
        # a DATE column loads as TIMESTAMPTZ (see the module docstring): its bad values are
        # the local rule's 1205, not the load table's 1206
        reason, code = _DATE_RULE.reason(BAD_DATE), BAD_DATE
    return Reject(
        key,
        int(line),
        column,
        None if value is None else clip(str(value).rstrip()),
        reason,
        code,
    )


_DATE_RULE: Final = DateRule()


def _errors_of_session(
    engine: sa.Engine, views: LoadViews, pid: int, key: str, dates: frozenset[str]
) -> list[Reject]:
    """The load errors of the last COPY of session ``pid``, read on another connection."""
    try:
        with engine.connect() as other:

            def read() -> list[Any]:
                return list(other.execute(sa.text(views.session_errors), {"pid": pid}).all())

            rows = _waited(read, bool) if views.lags else read()
    except sa.exc.DBAPIError:
        logger.warning("could not read the load errors after a failed COPY")
        return []
    return [_reject(row, key, dates) for row in rows]


class CopyTally:
    """What the ``COPY``s of one step loaded and rejected, object by object; more rejects
    than the step's ``max_errors`` fail it (``TooManyRejectsError``)."""

    def __init__(self, conn: sa.Connection, job: CopyJob, views: LoadViews) -> None:
        self.conn = conn
        self.job = job
        self.views = views
        self.rejects: list[Reject] = []
        self.rows: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.queries: dict[str, str] = {}  # per key, the query id of its COPY (telemetry)

    def max_error(self) -> int:
        """The next ``COPY``'s ``MAXERROR``: one more than the budget left, so that we
        count, and fail the step, ourselves."""
        return min(self.job.max_errors - len(self.rejects) + 1, MAX_MAXERROR)

    def copy(
        self, statement: Any, key: str, dates: frozenset[str], *, rejects: bool = True
    ) -> None:
        """Run ``statement``, the ``COPY`` of object ``key``: its rows are the COPY's count,
        its rejects all the COPY's load errors (no URL is matched against a truncated file
        name). ``rejects=False``: a COPY that loads every row or fails (no ``MAXERROR``)."""
        job = self.job
        (pid,) = self.conn.execute(sa.text("SELECT pg_backend_pid()")).one()
        try:
            run_copy(self.conn, statement)
        except sa.exc.DBAPIError:
            if not rejects:
                raise
            # COPY failed (too many errors, or worse): the transaction is lost, so read what
            # Redshift recorded for this session on a connection of its own.
            found = _errors_of_session(self.conn.engine, self.views, int(pid), key, dates)
            if len(self.rejects) + len(found) > job.max_errors:
                raise TooManyRejectsError(
                    job.label, (self.rejects + found)[: job.max_errors + 1], job.max_errors
                ) from None
            raise
        count, new, query = read_back(
            self.conn, self.views, job.label, key, dates, no_load=job.validate
        )
        if not rejects:
            new = []
        self.rejects += new
        self.rejected[key] += len(new)
        self.rows[key] += count
        self.queries[key] = str(query)
        if len(self.rejects) > job.max_errors:
            raise TooManyRejectsError(job.label, self.rejects[: job.max_errors + 1], job.max_errors)

    def result(self, objects: Sequence[ObjectInfo]) -> LoadResult:
        """The step's ``LoadResult``, once every object is loaded (each one reported to the
        job's ``on_object``)."""
        entries = [
            Entry(info, self.rows[info.key], self.rejected[info.key], self.queries.get(info.key))
            for info in objects
        ]
        if self.job.on_object is not None:
            for info in objects:
                self.job.on_object(info)
        return LoadResult(entries, self.rejects)
