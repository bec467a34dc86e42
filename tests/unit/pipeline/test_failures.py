"""Each driver's words for a failure, read the same way: retryable or a mistake to fix.

The integration tests (tests/integration/test_connect_errors.py) meet the real PostgreSQL
and DuckDB; these cover what the test server cannot produce (it trusts every local sign-in
and we run as root): failed passwords, refused permissions, timeouts, throttling, and the
SQLSTATEs of psycopg 3 and redshift_connector.
"""

from __future__ import annotations

from typing import Any

import pytest

from arbalest import WarehouseAccessError, WarehouseUnavailableError
from arbalest.pipeline._failures import connect_error, one_line, retryable_statement

URL = "postgresql+psycopg2://loader:***@db.example:5432/dw"
PG = 'connection to server at "10.0.0.5", port 5432 failed: '


class Psycopg2Error(Exception):
    pgcode: str | None = None


class Psycopg3Error(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


PERMANENT = {
    "password": (
        PG + 'FATAL:  password authentication failed for user "loader"\n',
        "check the user name and password of the warehouse URL",
    ),
    "no password": (
        PG + "fe_sendauth: no password supplied\n",
        "check the user name and password of the warehouse URL",
    ),
    "role": (
        PG + 'FATAL:  role "loadr" does not exist\n',
        "check the user name of the warehouse URL, or create that role",
    ),
    "redshift user": (
        PG + 'FATAL:  user "loadr" does not exist\n',
        "check the user name of the warehouse URL, or create that role",
    ),
    "nologin": (
        PG + 'FATAL:  role "reader" is not permitted to log in\n',
        "use a role that may log in (ALTER ROLE ... LOGIN)",
    ),
    "database": (
        PG + 'FATAL:  database "dw2" does not exist\n',
        "check the database name of the warehouse URL, or create that database",
    ),
    "connect privilege": (
        PG + 'FATAL:  permission denied for database "dw"\nDETAIL:  User does not have '
        "CONNECT privilege.\n",
        "grant the warehouse user access (or use one that has it)",
    ),
    "pg_hba": (
        PG + 'FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "loader", database "dw"\n',
        "grant the warehouse user access (or use one that has it)",
    ),
    "duckdb permission": (
        'IO Error: Cannot open file "/srv/w.duckdb": Permission denied',
        "this process may not open that file: check the permissions of the file and its folder",
    ),
    "not duckdb": (
        'IO Error: The file "/srv/w.duckdb" exists, but it is not a valid DuckDB database file!',
        "check the path of the warehouse URL: that file is not a DuckDB database",
    ),
    "host": (
        'could not translate host name "db.exmaple" to address: Name or service not known\n',
        "check the host name of the warehouse URL",
    ),
}


@pytest.mark.parametrize("case", PERMANENT)
def test_a_connection_refused_for_a_reason_to_fix_is_not_retryable(case: str) -> None:
    reason, fix = PERMANENT[case]
    error = connect_error(Psycopg2Error(reason), URL, reason)
    assert isinstance(error, WarehouseAccessError)
    assert not error.retryable
    assert error.fix == fix
    assert str(error) == f"cannot open the warehouse {URL}: {one_line(reason)}; {fix}"
    assert "\n" not in str(error)


RETRYABLE = {
    "refused": PG + "Connection refused\n\tIs the server running on that host and accepting "
    "TCP/IP connections?\n",
    "timeout": PG + "timeout expired\n",
    "too many clients": PG + "FATAL:  sorry, too many clients already\n",
    "starting up": PG + "FATAL:  the database system is starting up\n",
    "dns outage": 'could not translate host name "db" to address: Temporary failure in name '
    "resolution\n",
    "duckdb lock": 'IO Error: Could not set lock on file "/srv/w.duckdb": Conflicting lock is '
    "held in /usr/bin/python3.11 (PID 4242)",
}


@pytest.mark.parametrize("case", RETRYABLE)
def test_a_connection_that_may_open_later_is_retryable(case: str) -> None:
    reason = RETRYABLE[case]
    error = connect_error(Psycopg2Error(reason), URL, reason)
    assert isinstance(error, WarehouseUnavailableError)
    assert error.retryable
    assert error.step == ""
    assert str(error) == f"cannot open the warehouse {URL}: {one_line(reason)}"


@pytest.mark.parametrize(
    ("sqlstate", "fix"),
    [
        ("28P01", "check the user name and password of the warehouse URL"),
        ("3D000", "check the database name of the warehouse URL, or create that database"),
        ("42501", "grant the warehouse user access (or use one that has it)"),
    ],
)
def test_psycopg3_sqlstates_decide_without_the_words(sqlstate: str, fix: str) -> None:
    error = connect_error(Psycopg3Error("FATAL: nein", sqlstate), URL, "FATAL: nein")
    assert isinstance(error, WarehouseAccessError)
    assert error.fix == fix


def test_redshift_connector_error_dictionaries_are_read() -> None:
    orig = Exception({"S": "FATAL", "C": "28P01", "M": "authentifizierung fehlgeschlagen"})
    error = connect_error(orig, URL, str(orig))
    assert isinstance(error, WarehouseAccessError)
    assert not error.retryable


@pytest.mark.parametrize(
    ("sqlstate", "retryable"),
    [
        ("40P01", True),  # deadlock
        ("40001", True),  # serialization failure
        ("55P03", True),  # lock not available (lock_timeout)
        ("57014", True),  # statement timeout
        ("53300", True),  # too many connections
        ("08006", True),  # connection failure
        ("57P01", True),  # the server is shutting down
        ("42501", False),  # permission denied
        ("42P01", False),  # no such table
        ("23505", False),  # unique violation
        ("22P02", False),  # invalid text representation
    ],
)
def test_a_statement_is_retryable_by_its_sqlstate(sqlstate: str, retryable: bool) -> None:
    orig: Any = Psycopg2Error("ERROR: whatever")
    orig.pgcode = sqlstate
    assert retryable_statement(orig, "ERROR: whatever") is retryable


@pytest.mark.parametrize(
    ("message", "retryable"),
    [
        ("TransactionContext Error: Conflict on tuple deletion!", True),
        ("Rate exceeded", True),
        ("Catalog Error: Table with name t does not exist!", False),
        ("Conversion Error: Could not convert string 'x' to INT32", False),
    ],
)
def test_a_statement_without_sqlstate_is_judged_by_its_words(message: str, retryable: bool) -> None:
    assert retryable_statement(Exception(message), message) is retryable


def test_redshift_connector_refusing_its_options_is_not_retryable() -> None:
    message = "Connection parameter db_user must be specified when using IAM authentication"
    error = connect_error(Exception(message), URL, message)
    assert isinstance(error, WarehouseAccessError)
    assert "db_user" in error.fix


def test_redshifts_serializable_isolation_violation_is_retryable_under_its_own_sqlstate() -> None:
    """Redshift reports error 1023 under an internal SQLSTATE: the words decide."""
    message = "ERROR: 1023 DETAIL: Serializable isolation violation on table - 123, transactions"
    orig = Exception({"S": "ERROR", "C": "XX000", "M": message})
    assert retryable_statement(orig, message) is True
    refused = Exception({"S": "ERROR", "C": "XX000", "M": "Load into table 'events' failed"})
    assert retryable_statement(refused, "Load into table 'events' failed") is False


def test_a_multi_line_message_is_folded_into_one_line() -> None:
    text = 'ERROR:  syntax error at or near "SELEC"\nLINE 1: SELEC 1\n        ^\n'
    assert one_line(text) == 'ERROR:  syntax error at or near "SELEC"; LINE 1: SELEC 1'
    assert one_line("refused.\n\tIs it running?\n") == "refused. Is it running?"
