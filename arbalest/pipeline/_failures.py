"""What a driver's error means: can trying again help, and if not, what is there to fix.

The drivers (psycopg2, psycopg 3, redshift_connector, DuckDB) say it in different ways: a
SQLSTATE where there is one (psycopg 3 and redshift_connector give it for a refused sign-in,
psycopg2 only once connected), else their words. Both are read here, so that the runner maps
every driver the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Final

from arbalest.backends.base import sqlstate as _sqlstate
from arbalest.errors import ArbalestError, WarehouseAccessError, WarehouseUnavailableError

__all__ = ["connect_error", "one_line", "retryable_statement", "statement_hint"]


@dataclass(frozen=True)
class _Permanent:
    sqlstates: frozenset[str]
    words: re.Pattern[str]
    fix: str


# Reasons a connection cannot be opened that trying again will not fix, and what to do;
# the first that matches wins. Anything else (a refused connection, a timeout, too many
# clients, a server starting up, a DuckDB file another process holds) is retryable.
# Each row: the SQLSTATEs (space-separated), the driver's words (case-insensitive), the fix.
_PERMANENT_ROWS: Final = (
    ("28P01", r"password authentication failed|authentication failed|no password",
     "check the user name and password of the warehouse URL"),
    ("", r'\b(role|user) "[^"]*" does not exist',
     "check the user name of the warehouse URL, or create that role"),
    ("", r"is not permitted to log in", "use a role that may log in (ALTER ROLE ... LOGIN)"),
    ("3D000", r'database "[^"]*" does not exist',
     "check the database name of the warehouse URL, or create that database"),
    ("", r'(?-i:Cannot open file "[^"]+": Permission denied)',
     "this process may not open that file: check the permissions of the file and its folder"),
    ("42501 28000", r"permission denied|CONNECT privilege|no pg_hba\.conf entry|access denied",
     "grant the warehouse user access (or use one that has it)"),
    # redshift_connector, refusing its options before it connects
    ("", r"connection parameter \S+ must be specified|invalid connection propert",
     "add the missing option to the warehouse URL's query (redshift_connector's names: "
     "db_user, cluster_identifier, region, serverless_work_group...)"),
    ("", r"not a valid DuckDB database file",
     "check the path of the warehouse URL: that file is not a DuckDB database"),
    ("", r"read-only mode: database does not exist",
     "check the path of the warehouse URL: there is no DuckDB database there"),
    ("", r"could not translate host name .* (Name or service not known|"
     r"nodename nor servname provided|No such host is known)",
     "check the host name of the warehouse URL"),
)  # fmt: skip
_PERMANENT: Final = tuple(
    _Permanent(frozenset(states.split()), re.compile(words, re.IGNORECASE), fix)
    for states, words, fix in _PERMANENT_ROWS
)

# a DuckDB file in a folder that does not exist
_NO_FOLDER: Final = re.compile(r'Cannot open file "(?P<path>[^"]+)": No such file or directory')

# A statement that failed for a reason that may pass: a lost or refused connection (08),
# serialization (40001) or a deadlock (40P01), too many connections or no resources (53),
# a lock or statement timeout (55P03, 57014), a server shutting down (57P01..57P03).
_RETRYABLE_STATES: Final = re.compile(r"^(08|40001|40P01|53|55P03|57014|57P0[123])")
_RETRYABLE_WORDS: Final = re.compile(
    r"(?i)deadlock detected|could not obtain lock|lock timeout|statement timeout"
    r"|could not serialize|serializable isolation violation|Conflict on"
    r"|too many (connections|clients)|throttl|rate exceeded|SlowDown"
)


def one_line(text: str) -> str:
    """A driver's multi-line message on one line: lines stripped, empty and caret-only lines
    dropped, joined with ``"; "`` (or a space after a line that ends in punctuation)."""
    lines = [line.strip() for line in text.splitlines()]
    out = ""
    for line in lines:
        if not line or set(line) <= {"^", " "}:
            continue
        if out:
            out += " " if out[-1] in ".:;,!?" else "; "
        out += line
    return out


def connect_error(orig: BaseException | None, warehouse: str, reason: str) -> ArbalestError:
    """The error for a connection that could not be opened.

    ``reason`` is the driver's message, already redacted; ``warehouse`` the URL without its
    password. A cause that trying again will not fix gives a ``WarehouseAccessError`` saying
    what to fix; any other a retryable ``WarehouseUnavailableError`` that names no step.
    """
    reason = one_line(reason)
    state = _sqlstate(orig)
    folder = _NO_FOLDER.search(reason)
    if folder is not None:
        parent = PurePath(folder["path"]).parent
        return WarehouseAccessError(
            warehouse,
            reason,
            f"the folder {str(parent)!r} does not exist: create it, or check the path of "
            "the warehouse URL",
        )
    for rule in _PERMANENT:
        if state in rule.sqlstates or rule.words.search(reason):
            return WarehouseAccessError(warehouse, reason, rule.fix)
    return WarehouseUnavailableError("", f"cannot open the warehouse {warehouse}: {reason}")


def retryable_statement(orig: BaseException | None, reason: str) -> bool:
    """Whether a statement that failed may pass if tried again (a lock, a timeout, a
    deadlock, a serialization failure, throttling), judged by its SQLSTATE or by the
    driver's words."""
    # Redshift gives some of these (error 1023, a serializable isolation violation) under a
    # SQLSTATE of its own, so the words are read too.
    state = _sqlstate(orig)
    if state and _RETRYABLE_STATES.match(state) is not None:
        return True
    return _RETRYABLE_WORDS.search(reason) is not None


def statement_hint(orig: BaseException | None, reason: str) -> str:
    """What to fix, for a statement refused for a reason the user must fix, else ``""``."""
    if _sqlstate(orig) == "42501" or re.search(r"(?i)permission denied", reason):
        return "; grant the warehouse user the privilege (or use one that has it)"
    return ""
