"""Redshift's ``COPY`` as Arbalest writes it: the statement (sqlalchemy-redshift's
``CopyCommand`` plus ZSTD and ``IAM_ROLE default``), the one-object manifest it reads, and how
it is run on each driver."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy_redshift.commands import Compression, CopyCommand, Format, visit_copy_command

from arbalest.errors import ConfigurationError
from arbalest.loading.reader import compression_of
from arbalest.stores.base import ObjectInfo, join_key
from arbalest.stores.credentials import Credentials

if TYPE_CHECKING:
    from arbalest.backends.base import CopyJob

__all__ = [
    "MAX_MAXERROR",
    "RedshiftCopy",
    "build_copy",
    "checked_copy",
    "copy_auth",
    "copy_object",
    "copy_settings",
    "manifest_document",
    "run_copy",
]

#: COPY refuses a MAXERROR above this.
MAX_MAXERROR: Final = 100_000
_ROLE_PLACEHOLDER: Final = "arn:aws:iam::000000000000:role/arbalest-default-role"
_COMPRESSION: Final = {"gzip": Compression.gzip, "bzip2": Compression.bzip2}


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
    return checked_copy(
        to=[table.c[c] for c in columns],
        data_location=manifest_url,
        format=Format.json,
        path_file=jsonpaths_url,
        manifest=True,
        **copy_settings(compression, time_format, truncate_columns),
        max_error=max_error,
        no_load=no_load,
        region=region,
        **copy_auth(iam_role, credentials),
    )


def copy_settings(compression: str | None, time_format: str, truncate: bool) -> dict[str, Any]:
    """``RedshiftCopy``'s arguments for the settings a JSON and a CSV ``COPY`` share: the
    objects' compression (``"gzip"``, ``"bzip2"``, ``"zstd"`` or ``None``), ``TIMEFORMAT``
    and ``TRUNCATECOLUMNS``."""
    return {
        "compression": _COMPRESSION.get(compression or ""),
        "zstd": compression == "zstd",
        "time_format": time_format,
        "truncate_columns": truncate,
    }


def checked_copy(**kw: Any) -> RedshiftCopy:
    """``RedshiftCopy(**kw)``; arguments it refuses are a ``ConfigurationError``."""
    try:
        return RedshiftCopy(**kw)
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


def copy_object(
    job: CopyJob,
    table: sa.Table,
    columns: Sequence[str],
    jsonpaths_url: str,
    number: int,
    info: ObjectInfo,
    *,
    max_error: int,
) -> RedshiftCopy:
    """The ``COPY`` of one JSON object of a step into ``table``, through its manifest
    (written now: the step's ``number``-th), with the step's options."""
    return build_copy(
        table,
        columns,
        manifest_url=put_manifest(job, number, info),
        jsonpaths_url=jsonpaths_url,
        iam_role=job.iam_role,
        credentials=job.credentials,
        region=job.region,
        compression=compression_of(info.key, job.compression),
        time_format=job.options.time_format,
        max_error=max_error,
        truncate_columns=job.options.truncate_columns,
        no_load=job.validate,
    )


def put_manifest(job: CopyJob, number: int, info: ObjectInfo) -> str:
    """Write the manifest of one object (the step's ``number``-th ``COPY`` of this run) under
    the pipeline's metadata folder, and return its URL."""
    store = job.store
    key = join_key(
        job.metadata_prefix,
        "manifests",
        job.schema.__table__.name,
        f"{job.run_id}-{number:04d}.json",
    )
    document = manifest_document([(store.uri(info.key), info.size)])
    store.put(key, json.dumps(document, indent=2).encode())
    return store.uri(key)
