"""Amazon Redshift: the cluster reads the objects from S3 itself, with ``COPY``.

For each copy step, inside the step's transaction:

1. ``LOCK`` the journal table (Redshift has no advisory locks, and two transactions that read
   and write the journal at once would fail Redshift's serializable isolation); waiting is
   bounded by ``statement_timeout`` = ``lock_timeout``, and the session's own
   ``statement_timeout`` is put back once the lock is held.
2. Upload the schema's JSONPaths file and, per object, a manifest listing exactly that object
   (its full ``s3://`` URL, ``mandatory: true``, ``content_length``) under the pipeline's
   metadata folder. Nothing to load: no manifest, no ``COPY``.
3. One ``COPY`` per object (sqlalchemy-redshift's ``CopyCommand``, plus ZSTD and
   ``IAM_ROLE default``, which it lacks), in the order the objects come (``merge``: oldest
   first). One object per COPY is what makes its counts exact: Redshift reports rows per
   COPY (``pg_last_copy_count()``), while ``STL_LOAD_COMMITS`` only has the *lines* each
   file held (a pretty-printed record spans many, a line may hold several), and its
   ``filename``, like ``STL_LOAD_ERRORS``', keeps only the first 256 bytes of a URL. So
   every reject and row of a COPY is its one object's, however long the URL.
4. Where the rows go: straight into the target (``incremental``), or into a temporary load
   table first: ``replace`` then deletes the target's rows (``DELETE``: ``TRUNCATE`` would
   commit) and inserts the load table's; ``merge`` numbers each object's rows, refuses an
   object holding different records for one primary key (COPY keeps no record order within
   an object, so the newest could not be told), and upserts the newest row of each key.
   ``DATE`` columns load through the load table as ``TIMESTAMPTZ`` read with the step's
   ``TIMEFORMAT`` (Redshift reads ``DATE`` with ``DATEFORMAT``, which knows no epoch formats
   and whose handling of offsets is not documented), and then take the date in UTC: the
   local rule exactly.
5. Read the rejects of each ``COPY`` back from ``STL_LOAD_ERRORS``; more rejects than
   ``max_errors`` fails the step.

Every mode uses a manifest: a ``COPY`` of ``s3://bucket/events/a.json`` is a prefix, and
would also load ``events/a.json.old``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Final

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy_redshift.commands import Compression, CopyCommand, Format, visit_copy_command

from arbalest import journal
from arbalest.backends.base import (
    POSITION_COLUMNS,
    Backend,
    Capabilities,
    CopyJob,
    LoadResult,
    quote_table,
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

__all__ = ["RedshiftBackend", "RedshiftCopy", "build_copy", "manifest_document"]

logger = logging.getLogger(__name__)

#: COPY refuses a MAXERROR above this.
MAX_MAXERROR: Final = 100_000
_ROLE_PLACEHOLDER: Final = "arn:aws:iam::000000000000:role/arbalest-default-role"
_COMPRESSION: Final = {"gzip": Compression.gzip, "bzip2": Compression.bzip2}
_STATEMENT_TIMEOUT: Final = "57014"  # query_canceled: statement_timeout elapsed


class RedshiftCopy(CopyCommand):  # type: ignore[misc]  # the library is untyped
    """``CopyCommand`` with what it lacks: ``ZSTD``, the cluster's default IAM role, and
    ``SERIALIZETOJSON``.

    Args:
        zstd: The objects are compressed with Zstandard.
        default_role: Authorise with ``IAM_ROLE default`` (the cluster's default role).
        serialize_to_json: Load Parquet structs, lists and maps into SUPER columns.
        **kw: ``CopyCommand``'s arguments.
    """

    inherit_cache = False

    def __init__(
        self,
        *,
        zstd: bool = False,
        default_role: bool = False,
        serialize_to_json: bool = False,
        **kw: Any,
    ) -> None:
        if default_role:
            kw["iam_role_arns"] = _ROLE_PLACEHOLDER  # replaced when compiled
        super().__init__(**kw)
        self.zstd = zstd
        self.default_role = default_role
        self.serialize_to_json = serialize_to_json


@compiles(RedshiftCopy)
def _compile_copy(element: RedshiftCopy, compiler: Any, **kw: Any) -> str:
    text: str = visit_copy_command(element, compiler, **kw)
    if element.default_role:
        text = re.sub(r"WITH CREDENTIALS AS \S+", "IAM_ROLE default", text, count=1)
    if element.zstd:
        text = text.rstrip() + " ZSTD"
    if element.serialize_to_json:  # Parquet structs, lists and maps into SUPER
        text = text.rstrip() + " SERIALIZETOJSON"
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
    auth = copy_auth(iam_role, credentials)
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


def copy_auth(iam_role: str | None, credentials: Credentials | None) -> dict[str, Any]:
    """``RedshiftCopy``'s authorisation arguments: the IAM role if given, else the access
    keys, else the cluster's default role."""
    auth: dict[str, Any] = {}
    if iam_role is not None:
        auth["iam_role_arns"] = iam_role
    elif credentials is not None:
        auth["access_key_id"] = credentials.access_key_id
        auth["secret_access_key"] = credentials.secret_access_key
        auth["session_token"] = credentials.session_token
    else:
        auth["default_role"] = True
    return auth


def _without_values(exc: Exception) -> str:
    return str(exc).split(";")[0]


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
        return ()

    @contextlib.contextmanager
    def lock(self, conn: sa.Connection, target: str, timeout: float) -> Iterator[None]:
        milliseconds = max(int(timeout * 1000), 1)
        # statement_timeout bounds the wait for the LOCK only: the session's own value (a
        # user's or a cluster's setting) is put back for the COPY and whatever follows
        previous = str(conn.exec_driver_sql("SHOW statement_timeout").scalar_one())
        conn.exec_driver_sql(f"SET statement_timeout TO {milliseconds}")
        try:
            conn.exec_driver_sql(f"LOCK {quote_table(conn.dialect, journal.JOURNAL)}")
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "pgcode", None) == _STATEMENT_TIMEOUT or "timeout" in str(
                exc.orig
            ):
                raise ConcurrentRunError(
                    f"lock {target}",
                    f"another run has held Arbalest's journal for more than {timeout:g} s "
                    "(lock_timeout); try again later",
                ) from None
            raise
        # A failed LOCK aborts the transaction, and its rollback undoes the SET; on success
        # the value is restored as a bound parameter, never pasted into SQL.
        conn.execute(
            sa.text("SELECT set_config('statement_timeout', :value, false)"), {"value": previous}
        )
        yield

    def load(self, conn: sa.Connection, job: CopyJob, objects: Sequence[ObjectInfo]) -> LoadResult:
        if job.format != "json":  # Parquet and CSV: see redshift_tabular
            from arbalest.backends.redshift_tabular import load_tabular

            return load_tabular(conn, job, objects)
        table = job.table
        specs = job.schema.__fields__
        columns = [spec.name for spec in specs]
        dates = frozenset(spec.name for spec in specs if isinstance(spec.rule, DateRule))
        jsonpaths_key = join_key(
            job.metadata_prefix, "jsonpaths", f"{job.schema.__table__.name}.json"
        )
        if objects:
            job.store.put(jsonpaths_key, json.dumps(job.schema.__jsonpaths__, indent=2).encode())
        copier = _Copier(conn, job, columns, job.store.uri(jsonpaths_key), dates)
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
    ) -> None:
        self.conn = conn
        self.job = job
        self.columns = columns
        self.jsonpaths_url = jsonpaths_url
        self.dates = dates
        self.rejects: list[Reject] = []
        self.rows: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.manifests = 0

    def copy(self, table: sa.Table, info: ObjectInfo) -> None:
        """COPY one object into ``table``: its rows are the COPY's count, its rejects all
        the COPY's load errors (no URL is matched against a truncated ``filename``)."""
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
            self.conn.execute(statement)
        except sa.exc.DBAPIError:
            # COPY failed (too many errors, or worse): the transaction is lost, so read what
            # Redshift recorded for this session on a connection of its own.
            recorded = _errors_of_session(self.conn.engine, int(pid), info.key, self.dates)
            if len(self.rejects) + len(recorded) > job.max_errors:
                raise TooManyRejectsError(
                    job.label, (self.rejects + recorded)[: job.max_errors + 1], job.max_errors
                ) from None
            raise
        query, count = self.conn.execute(
            sa.text("SELECT pg_last_copy_id(), pg_last_copy_count()")
        ).one()
        new = _errors_of_query(self.conn, int(query), info.key, self.dates)
        self.rejects += new
        self.rejected[info.key] += len(new)
        self.rows[info.key] += int(count)
        if len(self.rejects) > job.max_errors:
            raise TooManyRejectsError(job.label, self.rejects[: job.max_errors + 1], job.max_errors)


_ERRORS: Final = (
    "SELECT line_number, trim(colname), trim(raw_field_value), trim(err_reason), err_code "
    "FROM stl_load_errors WHERE {where} ORDER BY starttime, line_number"
)


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


def _errors_of_query(
    conn: sa.Connection, query: int, key: str, dates: frozenset[str]
) -> list[Reject]:
    rows = conn.execute(sa.text(_ERRORS.format(where="query = :query")), {"query": query})
    return [_reject(row, key, dates) for row in rows]


def _errors_of_session(
    engine: sa.Engine, pid: int, key: str, dates: frozenset[str]
) -> list[Reject]:
    """The load errors of the last COPY of session ``pid``, read on another connection."""
    try:
        with engine.connect() as other:
            rows = other.execute(
                sa.text(
                    _ERRORS.format(
                        where="session = :pid AND query = (SELECT max(query) FROM "
                        "stl_load_errors WHERE session = :pid)"
                    )
                ),
                {"pid": pid},
            ).all()
    except sa.exc.DBAPIError:
        logger.warning("could not read STL_LOAD_ERRORS after a failed COPY")
        return []
    return [_reject(row, key, dates) for row in rows]
