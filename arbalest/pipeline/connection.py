"""The warehouse connection of a run: opened with the driver's errors mapped to Arbalest's,
an empty stand-in for a DuckDB file not there yet, and credentials kept out of messages.

``runner`` opens one connection per run (``connect``); ``cli`` opens one to read the journal.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa

from arbalest.errors import WarehouseAccessError
from arbalest.pipeline._failures import connect_error
from arbalest.pipeline.description import RunDescription
from arbalest.pipeline.engines import duckdb_file

__all__ = [
    "connect",
    "empty_database",
    "missing_database",
    "not_there_yet",
    "redact",
    "secrets_of",
]

# the run's log lines come from one logger, the one the docs and the command name
logger = logging.getLogger("arbalest.pipeline.runner")

# Credentials as they appear in COPY statements, which a warehouse may quote back in an error
# (cut to a window of context, so the secret itself may be cut short there)
_CREDENTIAL_TEXT = re.compile(
    r"(?i)(aws_access_key_id=|aws_secret_access_key=|token=)[^;'\"\s]*"
    r"|((?:ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)\s+')[^']*"
)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret, and every credential written as COPY writes it, replaced
    by ``***``."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _CREDENTIAL_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def secrets_of(pipeline: RunDescription) -> list[str]:
    """What ``redact`` hides in the run's messages: the backend's and the store credentials'
    secrets, and the warehouse URL's password."""
    found = list(pipeline.backend.secrets())
    if pipeline.credentials is not None:
        found += pipeline.credentials.secrets()
    password = pipeline.engine.url.password
    if password:
        found.append(str(password))
    return found


def missing_database(pipeline: RunDescription) -> Path | None:
    """The DuckDB file the pipeline's warehouse names, if it does not exist but its folder
    does (a connection would create it); ``None`` for any other warehouse (a missing folder
    is the connection's own error)."""
    path = duckdb_file(pipeline.engine.url)
    if path is None or path.exists() or not path.parent.is_dir():
        return None
    return path


@contextlib.contextmanager
def empty_database() -> Iterator[sa.Connection]:
    """A connection to an empty in-memory DuckDB database: what read-only verbs read when the
    warehouse's DuckDB file does not exist yet (so that reading it creates nothing)."""
    engine = sa.create_engine("duckdb:///:memory:", hide_parameters=True)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def not_there_yet(pipeline: RunDescription, path: Path, verb: str) -> None:
    """Log that ``verb`` (planning, validating) reads an empty database in place of ``path``."""
    # not a warning: planning or validating before the first run is the quick start's way
    logger.info(
        "%sthere is no DuckDB database at %s: %s as for an empty one, creating nothing "
        "(run() creates it; check the path if there should be one)",
        f"{pipeline.name}: " if pipeline.name else "",
        path,
        verb,
    )


@contextlib.contextmanager
def connect(pipeline: RunDescription, *, create: bool = True) -> Iterator[sa.Connection]:
    """A connection to the pipeline's warehouse. One that cannot be opened is not a driver's
    exception: for a server down or a timeout, a retryable ``WarehouseUnavailableError``;
    for a failed sign-in, a missing database, role or folder, or a refused permission, a
    ``WarehouseAccessError`` saying what to fix. A DuckDB file another process holds is
    waited for, up to ``lock_timeout``, then a ``ConcurrentRunError``.

    With ``create=False`` (for verbs that only read), a DuckDB file that does not exist is a
    ``WarehouseAccessError`` instead of a new, empty database."""
    path = None if create else missing_database(pipeline)
    if path is not None:
        raise WarehouseAccessError(
            pipeline.engine.url.render_as_string(hide_password=True),
            f"there is no DuckDB database at {str(path)!r}",
            "check the path of the warehouse URL (only run() creates a new database)",
        )
    try:
        conn = pipeline.backend.connect(pipeline.lock_timeout)
    except sa.exc.DBAPIError as exc:
        where = pipeline.engine.url.render_as_string(hide_password=True)
        message = redact(str(exc.orig).strip(), secrets_of(pipeline))
        raise connect_error(exc.orig, where, message) from None
    with conn:
        yield conn
