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
import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy_redshift.commands import Compression, CopyCommand, Format, visit_copy_command

from arbalest import journal
from arbalest.backends._redshift_iam import SECRET_OPTIONS, sign_in_for
from arbalest.backends.base import (
    POSITION_COLUMNS,
    Backend,
    Capabilities,
    CopyJob,
    LoadResult,
    quote_table,
    sqlstate,
    staging_name,
    staging_table,
    upsert_from,
)
from arbalest.convert import BAD_DATE, BAD_TIMESTAMP, DateRule
from arbalest.errors import (
    ConcurrentRunError,
    ConfigurationError,
    CopyError,
    TooManyRejectsError,
)
from arbalest.journal import Entry
from arbalest.loading.reader import compression_of
from arbalest.loading.rejects import Reject, clip
from arbalest.stores.base import ObjectInfo, join_key
from arbalest.stores.credentials import Credentials

__all__ = [
    "CREATION_LOCK",
    "STL",
    "SYS",
    "LoadViews",
    "RedshiftBackend",
    "RedshiftCopy",
    "WarehouseFacts",
    "build_copy",
    "lock_table",
    "manifest_document",
]

logger = logging.getLogger(__name__)

#: COPY refuses a MAXERROR above this.
MAX_MAXERROR: Final = 100_000
_ROLE_PLACEHOLDER: Final = "arn:aws:iam::000000000000:role/arbalest-default-role"
_COMPRESSION: Final = {"gzip": Compression.gzip, "bzip2": Compression.bzip2}
_STATEMENT_TIMEOUT: Final = "57014"  # query_canceled: statement_timeout elapsed


class RedshiftCopy(CopyCommand):  # type: ignore[misc]  # the library is untyped
    """``CopyCommand`` with what it lacks: ``ZSTD``, and the cluster's default IAM role.

    Args:
        zstd: The objects are compressed with Zstandard.
        default_role: Authorise with ``IAM_ROLE default`` (the cluster's default role).
        **kw: ``CopyCommand``'s arguments.
    """

    inherit_cache = False

    def __init__(self, *, zstd: bool = False, default_role: bool = False, **kw: Any) -> None:
        if default_role:
            kw["iam_role_arns"] = _ROLE_PLACEHOLDER  # replaced when compiled
        super().__init__(**kw)
        self.zstd = zstd
        self.default_role = default_role


@compiles(RedshiftCopy)
def _compile_copy(element: RedshiftCopy, compiler: Any, **kw: Any) -> str:
    text: str = visit_copy_command(element, compiler, **kw)
    if element.default_role:
        text = re.sub(r"WITH CREDENTIALS AS \S+", "IAM_ROLE default", text, count=1)
    if element.zstd:
        text = text.rstrip() + " ZSTD"
    return text


def manifest_document(entries: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """A COPY manifest: every URL mandatory, with its content length."""
    return {
        "entries": [
            {"url": url, "mandatory": True, "meta": {"content_length": size}}
            for url, size in entries
        ]
    }


def build_copy(
    table: sa.Table,
    columns: Sequence[str],
    *,
    manifest_url: str,
    jsonpaths_url: str,
    iam_role: str | None = None,
    credentials: Credentials | None = None,
    region: str | None = None,
    compression: str | None = None,
    time_format: str = "auto",
    max_error: int = 0,
    truncate_columns: bool = False,
    no_load: bool = False,
) -> RedshiftCopy:
    """The ``COPY`` of one manifest of JSON objects into ``table``'s ``columns``.

    An IAM role is preferred; access keys (with a session token) are accepted; with neither,
    the cluster's default role (``IAM_ROLE default``).
    """
    auth: dict[str, Any] = {}
    if iam_role is not None:
        auth["iam_role_arns"] = iam_role
    elif credentials is not None:
        auth["access_key_id"] = credentials.access_key_id
        auth["secret_access_key"] = credentials.secret_access_key
        auth["session_token"] = credentials.session_token
    else:
        auth["default_role"] = True
    try:
        return RedshiftCopy(
            to=[table.c[c] for c in columns],
            data_location=manifest_url,
            format=Format.json,
            path_file=jsonpaths_url,
            compression=_COMPRESSION.get(compression or ""),
            zstd=compression == "zstd",
            time_format=time_format,
            max_error=max_error,
            truncate_columns=truncate_columns,
            no_load=no_load,
            manifest=True,
            region=region,
            **auth,
        )
    except (TypeError, ValueError) as exc:
        # CopyCommand checks the shapes of ARNs and keys; never echo the values
        raise ConfigurationError(f"cannot build the COPY command: {_without_values(exc)}") from None


def _without_values(exc: Exception) -> str:
    return str(exc).split(";")[0]


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


_LOCK_COLUMN: Final = "held"
#: The lock runs take while they create Arbalest's tables and a new target.
CREATION_LOCK: Final = sa.Table(
    "_arbalest_lock", sa.MetaData(), sa.Column(_LOCK_COLUMN, sa.SmallInteger)
)


def lock_table(target: str) -> sa.Table:
    """The empty table whose ``LOCK`` is ``target``'s run lock: ``_arbalest_lock_`` and the
    target's name (letters, digits and ``_``, at most 40) and 12 hex digits of its SHA-1.
    Redshift folds names to lowercase, so ``Events`` and ``events`` share one."""
    folded = target.lower()
    digest = hashlib.sha1(folded.encode(), usedforsecurity=False).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")[:40]
    name = f"_arbalest_lock_{slug}_{digest}" if slug else f"_arbalest_lock_{digest}"
    return sa.Table(name, sa.MetaData(), sa.Column(_LOCK_COLUMN, sa.SmallInteger))


@contextlib.contextmanager
def _bounded(conn: sa.Connection, timeout: float, what: str, why: str) -> Iterator[None]:
    """Run the statements inside with ``statement_timeout`` = ``timeout``, then put the
    session's own value back; a timeout is a ``ConcurrentRunError`` (``what``, ``why``)."""
    milliseconds = max(int(timeout * 1000), 1)
    # statement_timeout bounds the wait for the LOCK only: the session's own value (a
    # user's or a cluster's setting) is put back for the COPY and whatever follows
    previous = str(conn.exec_driver_sql("SHOW statement_timeout").scalar_one())
    conn.exec_driver_sql(f"SET statement_timeout TO {milliseconds}")
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if sqlstate(exc.orig) == _STATEMENT_TIMEOUT or "timeout" in str(exc.orig):
            raise ConcurrentRunError(what, why) from None
        raise
    # A failed LOCK aborts the transaction, and its rollback undoes the SET; on success
    # the value is restored as a bound parameter, never pasted into SQL.
    conn.execute(
        sa.text("SELECT set_config('statement_timeout', :value, false)"), {"value": previous}
    )


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
        tables = [lock_table(target)]
        if not journal.table_exists(conn, tables[0]):
            # the runner creates it with the journal; a caller of its own gets it here, in
            # its transaction
            conn.execute(CreateTable(tables[0], if_not_exists=True))
        serializable = self.facts(conn).serializable
        if serializable:
            tables.append(journal.JOURNAL)  # always last: every run locks in one order
        names = ", ".join(quote_table(conn.dialect, t) for t in tables)
        why = (
            f"another run has been loading {target!r} for more than {timeout:g} s "
            "(lock_timeout); try again later"
        )
        if serializable:
            why = (
                f"another run has held Arbalest's journal for more than {timeout:g} s "
                "(lock_timeout; with SERIALIZABLE isolation, runs on every target take turns); "
                "try again later"
            )
        with _bounded(conn, timeout, f"lock {target}", why):
            conn.exec_driver_sql(f"LOCK {names}")
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
        why = (
            f"another run has been creating Arbalest's tables for more than {timeout:g} s "
            "(lock_timeout); try again later"
        )
        with _bounded(conn, timeout, "create tables", why):
            conn.exec_driver_sql(f"LOCK {quote_table(conn.dialect, CREATION_LOCK)}")
        yield

    def _create_creation_lock(self) -> None:
        """Create ``_arbalest_lock`` and commit at once, on a connection of its own: runs
        that start together both get to ``LOCK`` it. Two creating it at the same moment: one
        is refused (a duplicate in the catalog), and finds it there."""
        try:
            with self.engine.begin() as side:
                side.execute(CreateTable(CREATION_LOCK, if_not_exists=True))
        except sa.exc.DBAPIError:
            with self.engine.connect() as side:
                if not journal.table_exists(side, CREATION_LOCK):
                    raise

    def load(self, conn: sa.Connection, job: CopyJob, objects: Sequence[ObjectInfo]) -> LoadResult:
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
                loading = _like(conn, table, job.run_id)
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
            _refuse_ambiguous(conn, job, table, staging, objects)
            upsert_from(conn, table, staging)
            conn.execute(DropTable(staging))
        entries = [
            Entry(info, copier.rows[info.key], copier.rejected[info.key]) for info in objects
        ]
        for info in objects:
            if job.on_object is not None:
                job.on_object(info)
        return LoadResult(entries, copier.rejects)


def load_table(
    table: sa.Table, run_id: str, dates: frozenset[str], *, with_position: bool = False
) -> sa.Table:
    """A temporary table that a COPY loads for ``table``: the same columns (NOT NULL kept,
    so that COPY rejects a missing value as it would in the target), but ``DATE`` columns
    as ``TIMESTAMPTZ`` (see the module docstring), and the position columns for a merge."""
    columns = [
        sa.Column(
            c.name,
            sa.TIMESTAMP(timezone=True) if c.name in dates else c.type,
            nullable=c.nullable,
        )
        for c in table.columns
    ]
    if with_position:
        columns += [sa.Column(name, sa.BigInteger) for name in POSITION_COLUMNS]
    return sa.Table(
        staging_name(table, run_id, "_load"), sa.MetaData(), *columns, prefixes=["TEMPORARY"]
    )


def settle(loading: sa.Table, target: sa.Table, dates: frozenset[str]) -> sa.Insert:
    """Insert the load table's rows into ``target``, with each ``DATE`` column's value the
    date in UTC of the instant loaded (``TIMEZONE('UTC', ...)`` is Redshift's and
    PostgreSQL's; the session's time zone plays no part)."""
    names = [c.name for c in target.columns]
    values = [
        sa.cast(sa.func.timezone("UTC", loading.c[n]), sa.Date).label(n)
        if n in dates
        else loading.c[n]
        for n in names
    ]
    return sa.insert(target).from_select(names, sa.select(*values))


def number_rows(loading: sa.Table, number: int) -> sa.Update:
    """Give the rows just copied (those without a position) their object's number.

    COPY keeps no order among an object's records, so every other position column is 0;
    ``_refuse_ambiguous`` makes sure that no merge depends on it.
    """
    chunk, *within = POSITION_COLUMNS
    return (
        sa.update(loading)
        .where(loading.c[chunk].is_(None))
        .values({chunk: number, **dict.fromkeys(within, 0)})
    )


#: How many ambiguous keys an error names.
_SHOWN: Final = 5


def _refuse_ambiguous(
    conn: sa.Connection,
    job: CopyJob,
    table: sa.Table,
    staging: sa.Table,
    objects: Sequence[ObjectInfo],
) -> None:
    """Fail the step when one object holds different records for one primary key.

    Which of them is the newest is the order of the records in the object, which Redshift's
    COPY does not keep (nor does an IDENTITY column filled by COPY). Identical records are
    fine: whichever wins, the row is the same.
    """
    keys = [c.name for c in table.primary_key]
    if not keys:
        return
    chunk = POSITION_COLUMNS[0]
    repeated = (
        sa.select(sa.literal(1))
        .select_from(staging)
        .group_by(staging.c[chunk], *[staging.c[k] for k in keys])
        .having(sa.func.count() > 1)
        .limit(1)
    )
    if conn.execute(repeated).first() is None:  # the common case: one record per key
        return
    super_columns = {spec.name for spec in job.schema.__fields__ if spec.rule.takes_json}
    distinct = sa.select(
        staging.c[chunk],
        *[
            sa.func.json_serialize(staging.c[c.name]).label(c.name)
            if c.name in super_columns
            else staging.c[c.name]
            for c in table.columns
        ],
    ).distinct()
    records = distinct.subquery("records")
    found = conn.execute(
        sa.select(records.c[chunk], *[records.c[k] for k in keys], sa.func.count())
        .group_by(records.c[chunk], *[records.c[k] for k in keys])
        .having(sa.func.count() > 1)
        .order_by(records.c[chunk], *[records.c[k] for k in keys])
        .limit(_SHOWN)
    ).all()
    if not found:
        return
    named = ", ".join(keys)
    shown = "; ".join(
        f"{objects[int(row[0]) - 1].key} holds {row[-1]} different records for "
        f"({named}) = ({', '.join(repr(v) for v in row[1:-1])})"
        for row in found
    )
    raise CopyError(
        job.label,
        f"{shown}{' ...' if len(found) == _SHOWN else ''}. Redshift's COPY does not keep the "
        "order of the records within an object, so which of them is the newest cannot be "
        "told; a merge needs at most one record per primary key in each object on Redshift "
        "(identical repeats are fine).",
    )


def _like(conn: sa.Connection, table: sa.Table, run_id: str) -> sa.Table:
    """A temporary table ``LIKE`` the target (same distribution, sort keys, encodings)."""
    staging = sa.Table(
        staging_name(table, run_id),
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in table.columns),
    )
    preparer = conn.dialect.identifier_preparer
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {preparer.quote(staging.name)} "
        f"(LIKE {quote_table(conn.dialect, table)})"
    )
    return staging


class _Copier:
    """Uploads manifests, runs COPYs and reads back what each loaded and rejected."""

    def __init__(
        self,
        conn: sa.Connection,
        job: CopyJob,
        columns: list[str],
        jsonpaths_url: str,
        dates: frozenset[str],
        views: LoadViews,
    ) -> None:
        self.conn = conn
        self.job = job
        self.columns = columns
        self.jsonpaths_url = jsonpaths_url
        self.dates = dates
        self.views = views
        self.rejects: list[Reject] = []
        self.rows: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.manifests = 0

    def copy(self, table: sa.Table, info: ObjectInfo) -> None:
        """COPY one object into ``table``: its rows are the COPY's count, its rejects all
        the COPY's load errors (no URL is matched against a truncated file name)."""
        job = self.job
        store = job.store
        key = join_key(
            job.metadata_prefix,
            "manifests",
            job.schema.__table__.name,
            f"{job.run_id}-{self.manifests:04d}.json",
        )
        self.manifests += 1
        document = manifest_document([(store.uri(info.key), info.size)])
        store.put(key, json.dumps(document, indent=2).encode())
        remaining = job.max_errors - len(self.rejects)
        statement = build_copy(
            table,
            self.columns,
            manifest_url=store.uri(key),
            jsonpaths_url=self.jsonpaths_url,
            iam_role=job.iam_role,
            credentials=job.credentials,
            region=job.region,
            compression=compression_of(info.key, job.compression),
            time_format=job.options.time_format,
            # one more than the budget left: we count, and fail the step, ourselves
            max_error=min(remaining + 1, MAX_MAXERROR),
            truncate_columns=job.options.truncate_columns,
            no_load=job.validate,
        )
        (pid,) = self.conn.execute(sa.text("SELECT pg_backend_pid()")).one()
        try:
            run_copy(self.conn, statement)
        except sa.exc.DBAPIError:
            # COPY failed (too many errors, or worse): the transaction is lost, so read what
            # Redshift recorded for this session on a connection of its own.
            recorded = _errors_of_session(
                self.conn.engine, self.views, int(pid), info.key, self.dates
            )
            if len(self.rejects) + len(recorded) > job.max_errors:
                raise TooManyRejectsError(
                    job.label, (self.rejects + recorded)[: job.max_errors + 1], job.max_errors
                ) from None
            raise
        count, new = read_back(
            self.conn, self.views, job.label, info.key, self.dates, no_load=job.validate
        )
        self.rejects += new
        self.rejected[info.key] += len(new)
        self.rows[info.key] += count
        if len(self.rejects) > job.max_errors:
            raise TooManyRejectsError(job.label, self.rejects[: job.max_errors + 1], job.max_errors)


#: The drivers that write bound values into the statement text themselves.
_CLIENT_SIDE_BINDS: Final = frozenset({"psycopg2", "psycopg2cffi"})


def run_copy(conn: sa.Connection, statement: RedshiftCopy) -> None:
    """Run a ``COPY``. Redshift refuses server-side parameters in a ``COPY`` (``syntax error
    at or near "$1"``), so for drivers that bind on the server (redshift_connector) the
    statement is compiled with its values written in; psycopg2 does the same itself."""
    if conn.dialect.driver in _CLIENT_SIDE_BINDS:
        conn.execute(statement)
        return
    text = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    conn.exec_driver_sql(str(text))


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


def read_back(
    conn: sa.Connection,
    views: LoadViews,
    label: str,
    key: str,
    dates: frozenset[str],
    *,
    no_load: bool = False,
) -> tuple[int, list[Reject]]:
    """The rows loaded and the rejects of the ``COPY`` that ``conn`` ran last (``no_load``:
    a ``COPY ... NOLOAD``, which loads no rows).

    Raises:
        CopyError: If the ``SYS`` views do not record a loading ``COPY`` in time.
    """
    found = conn.execute(sa.text(views.last_copy)).one()
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
    return rows, [_reject(row, key, dates) for row in found_errors]


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
