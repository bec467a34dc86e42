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
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import ClassVar, Final

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable, DropTable

from arbalest import journal
from arbalest.backends._redshift_copy import (
    MAX_MAXERROR,
    RedshiftCopy,
    build_copy,
    manifest_document,
    put_manifest,
    run_copy,
)
from arbalest.backends._redshift_iam import SECRET_OPTIONS, sign_in_for
from arbalest.backends._redshift_views import (
    _FACTS_KEY,
    STL,
    SYS,
    LoadViews,
    WarehouseFacts,
    _errors_of_session,
    probe,
    read_back,
)
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
from arbalest.convert import DateRule
from arbalest.errors import (
    ConcurrentRunError,
    ConfigurationError,
    CopyError,
    TooManyRejectsError,
)
from arbalest.journal import Entry
from arbalest.loading.reader import compression_of
from arbalest.loading.rejects import Reject
from arbalest.stores.base import ObjectInfo, join_key

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

_STATEMENT_TIMEOUT: Final = "57014"  # query_canceled: statement_timeout elapsed


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
            Entry(
                info,
                copier.rows[info.key],
                copier.rejected[info.key],
                copier.queries.get(info.key),
            )
            for info in objects
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
        self.queries: dict[str, str] = {}  # per key, the query id of its COPY (telemetry)
        self.manifests = 0

    def copy(self, table: sa.Table, info: ObjectInfo) -> None:
        """COPY one object into ``table``: its rows are the COPY's count, its rejects all
        the COPY's load errors (no URL is matched against a truncated file name)."""
        job = self.job
        manifest_url = put_manifest(job, self.manifests, info)
        self.manifests += 1
        remaining = job.max_errors - len(self.rejects)
        statement = build_copy(
            table,
            self.columns,
            manifest_url=manifest_url,
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
        count, new, query = read_back(
            self.conn, self.views, job.label, info.key, self.dates, no_load=job.validate
        )
        self.rejects += new
        self.rejected[info.key] += len(new)
        self.rows[info.key] += count
        self.queries[info.key] = str(query)
        if len(self.rejects) > job.max_errors:
            raise TooManyRejectsError(job.label, self.rejects[: job.max_errors + 1], job.max_errors)


#: The drivers that write bound values into the statement text themselves.
