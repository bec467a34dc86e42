"""Amazon Redshift: the cluster reads the objects from S3 itself, with ``COPY``.

For each copy step, inside the step's transaction:

1. ``LOCK`` the journal table (Redshift has no advisory locks, and two transactions that read
   and write the journal at once would fail Redshift's serializable isolation); waiting is
   bounded by ``statement_timeout`` = ``lock_timeout``, and the session's own
   ``statement_timeout`` is put back once the lock is held.
2. Upload the schema's JSONPaths file and, per compression, a manifest listing exactly the
   objects to load (full ``s3://`` URLs, ``mandatory: true``, ``content_length``) under the
   pipeline's metadata folder. Nothing to load: no manifest, no ``COPY`` (an empty manifest
   fails).
3. ``COPY`` (sqlalchemy-redshift's ``CopyCommand``, plus ZSTD and ``IAM_ROLE default``, which
   it lacks) into the target (``incremental``), or into a staging table that replaces the
   target's rows (``replace``, with ``DELETE``: ``TRUNCATE`` would commit) or is upserted
   into it (``merge``: one ``COPY`` per object, in order, so that newer objects win).
4. Read the rejects of that ``COPY`` back from ``STL_LOAD_ERRORS`` and the rows per object
   from ``STL_LOAD_COMMITS``; more rejects than ``max_errors`` fails the step.

Every mode uses a manifest, ``replace`` included: a prefix ``COPY`` of ``events/`` would
also load the pipeline's metadata when the source is the whole store, and objects that
arrive between the listing and the ``COPY`` would be loaded without being journaled.
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
    Backend,
    Capabilities,
    CopyJob,
    LoadResult,
    quote_table,
    staging_name,
    staging_table,
    upsert_from,
)
from arbalest.errors import ConcurrentRunError, ConfigurationError, TooManyRejectsError
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


class RedshiftBackend(Backend):
    """Loads with Redshift's own ``COPY`` from S3 (see the module docstring)."""

    name = "redshift"
    capabilities: ClassVar[Capabilities] = Capabilities(
        reads_objects_itself=True,
        requires_s3=True,
        max_identifier_bytes=127,
        advisory_locks=False,
    )

    def check_job(self, job: CopyJob) -> None:
        if not job.store.url.startswith("s3://"):
            raise ConfigurationError(
                f"{job.label}: Redshift loads from S3 only; give an s3:// store"
            )

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
        table = job.table
        columns = [spec.name for spec in job.schema.__fields__]
        jsonpaths_key = join_key(
            job.metadata_prefix, "jsonpaths", f"{job.schema.__table__.name}.json"
        )
        if objects:
            job.store.put(jsonpaths_key, json.dumps(job.schema.__jsonpaths__, indent=2).encode())
        copier = _Copier(conn, job, columns, job.store.uri(jsonpaths_key))
        if job.mode == "incremental":
            copier.copy_groups(table, objects)
        elif job.mode == "replace":
            staging = _like(conn, table, job.run_id)
            copier.copy_groups(staging, objects)
            conn.execute(sa.delete(table))
            conn.execute(sa.insert(table).from_select(table.c.keys(), sa.select(staging)))
            conn.execute(DropTable(staging))
        else:  # merge: one COPY per object, oldest first, so that the newest record wins
            staging = staging_table(table, job.run_id, with_position=True)
            conn.execute(CreateTable(staging))
            for number, info in enumerate(objects, start=1):
                copier.copy_groups(staging, [info])
                conn.execute(
                    sa.update(staging)
                    .where(staging.c._arbalest_chunk.is_(None))
                    .values(_arbalest_chunk=number, _arbalest_line=0)
                )
            upsert_from(conn, table, staging)
            conn.execute(DropTable(staging))
        entries = [
            Entry(info, copier.rows[info.key], copier.rejected[info.key]) for info in objects
        ]
        for info in objects:
            if job.on_object is not None:
                job.on_object(info)
        return LoadResult(entries, copier.rejects)


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
        self, conn: sa.Connection, job: CopyJob, columns: list[str], jsonpaths_url: str
    ) -> None:
        self.conn = conn
        self.job = job
        self.columns = columns
        self.jsonpaths_url = jsonpaths_url
        self.rejects: list[Reject] = []
        self.rows: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.manifests = 0

    def copy_groups(self, table: sa.Table, objects: Sequence[ObjectInfo]) -> None:
        """One COPY per compression (a COPY reads one compression)."""
        groups: dict[str | None, list[ObjectInfo]] = {}
        for info in objects:
            groups.setdefault(compression_of(info.key, self.job.compression), []).append(info)
        for compression, infos in groups.items():
            self._copy(table, infos, compression)

    def _copy(self, table: sa.Table, objects: list[ObjectInfo], compression: str | None) -> None:
        job = self.job
        store = job.store
        urls = {store.uri(info.key): info.key for info in objects}
        key = join_key(
            job.metadata_prefix,
            "manifests",
            job.schema.__table__.name,
            f"{job.run_id}-{self.manifests:04d}.json",
        )
        self.manifests += 1
        document = manifest_document([(store.uri(i.key), i.size) for i in objects])
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
            compression=compression,
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
            recorded = _errors_of_session(self.conn.engine, int(pid), urls)
            if len(self.rejects) + len(recorded) > job.max_errors:
                raise TooManyRejectsError(
                    job.label, (self.rejects + recorded)[: job.max_errors + 1], job.max_errors
                ) from None
            raise
        (query,) = self.conn.execute(sa.text("SELECT pg_last_copy_id()")).one()
        new = _errors_of_query(self.conn, int(query), urls)
        self.rejects += new
        for reject in new:
            self.rejected[reject.key] += 1
        for filename, lines in self.conn.execute(
            sa.text(
                "SELECT trim(filename), sum(lines_scanned) FROM stl_load_commits "
                "WHERE query = :query GROUP BY 1"
            ),
            {"query": int(query)},
        ):
            object_key = urls.get(str(filename).strip())
            if object_key is not None:
                self.rows[object_key] += int(lines) - self.rejected[object_key]
        if len(self.rejects) > job.max_errors:
            raise TooManyRejectsError(job.label, self.rejects[: job.max_errors + 1], job.max_errors)


_ERRORS: Final = (
    "SELECT trim(filename), line_number, trim(colname), trim(raw_field_value), "
    "trim(err_reason), err_code FROM stl_load_errors WHERE {where} "
    "ORDER BY starttime, trim(filename), line_number"
)


def _reject(row: Sequence[Any], urls: dict[str, str]) -> Reject:
    url, line, column, value, reason, code = row
    url = str(url).strip()
    return Reject(
        urls.get(url, url),
        int(line),
        str(column).strip() or None if column is not None else None,
        None if value is None else clip(str(value).rstrip()),
        str(reason).strip(),
        int(code),
    )


def _errors_of_query(conn: sa.Connection, query: int, urls: dict[str, str]) -> list[Reject]:
    rows = conn.execute(sa.text(_ERRORS.format(where="query = :query")), {"query": query})
    return [_reject(row, urls) for row in rows]


def _errors_of_session(engine: sa.Engine, pid: int, urls: dict[str, str]) -> list[Reject]:
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
    return [_reject(row, urls) for row in rows]
