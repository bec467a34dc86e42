"""The Redshift Data API as a DBAPI driver (for a ``RedshiftDataAPI``): statements sent
through boto3's ``redshift-data`` client instead of a connection into the VPC.

A transaction cannot span two Data API calls, even in one session. What this driver does
instead:

- A statement that only reads (``SELECT``, ``SHOW``) runs at once, alone
  (``ExecuteStatement``), and sees what is committed.
- Every other statement is kept until the transaction ends: ``commit()`` sends them all in
  one ``BatchExecuteStatement`` (one transaction: all or nothing); ``rollback()`` drops them.
  A backend may send a batch of its own before that (``send_batch``), in a Data API
  *session* if it asks (``session=True``): the first such batch opens one
  (``SessionKeepAliveSeconds``), the next ones name it (``SessionId``) and so see its
  temporary tables, and the one sent with ``last=True`` closes it (a keep-alive of 0). The
  Data API backend stages a step's rows that way, then moves them in one last batch; or,
  for a time series, leaves the session open with a ``closing`` sender, and ``commit()``
  sends the step's statements to the session through it.
- Each call is polled with ``DescribeStatement``, pausing longer each time, up to
  ``RedshiftDataAPI.timeout`` seconds (then the statement is cancelled); rows come from
  ``GetStatementResult``, page by page.
- Values are sent as the Data API's named parameters where they are non-empty strings
  (never pasted into SQL text); numbers, booleans, ``NULL`` and ``''`` are written as SQL
  literals (the Data API takes non-empty strings only).

Errors are this module's DBAPI exceptions, so SQLAlchemy wraps them as it wraps any driver's:
throttling, a lost connection and a timeout are ``OperationalError`` with ``lost=True`` (the
dialect calls them disconnects: retryable), a refused permission has SQLSTATE ``42501``, and a
statement Redshift refused is a ``ProgrammingError`` with Redshift's message.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from arbalest.backends import _redshift_data
from arbalest.backends._redshift_data import BATCH_LIMIT, RedshiftDataAPI

__all__ = [
    "SESSION_KEEP_ALIVE",
    "Connection",
    "Cursor",
    "Error",
    "OperationalError",
    "ProgrammingError",
    "connect",
]

logger = logging.getLogger(__name__)

apilevel: Final = "2.0"
threadsafety: Final = 1
paramstyle: Final = "named"


class Warning(Exception):
    """DBAPI warning."""


class Error(Exception):
    """The root of this driver's errors (DBAPI).

    Attributes:
        sqlstate: A SQLSTATE where the cause is known (``42501``: refused permission), else
            ``""``.
        lost: Trying again can help: throttling, a lost connection, a timeout.
    """

    def __init__(self, message: str, *, sqlstate: str = "", lost: bool = False) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.lost = lost


class InterfaceError(Error):
    """DBAPI interface error."""


class DatabaseError(Error):
    """DBAPI database error."""


class DataError(DatabaseError):
    """DBAPI data error."""


class OperationalError(DatabaseError):
    """The Data API could not run the call (throttling, connection, timeout, access)."""


class IntegrityError(DatabaseError):
    """DBAPI integrity error."""


class InternalError(DatabaseError):
    """DBAPI internal error."""


class ProgrammingError(DatabaseError):
    """Redshift refused a statement."""


class NotSupportedError(DatabaseError):
    """DBAPI not-supported error."""


#: botocore error codes that trying again can help with.
_RETRYABLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ActiveStatementsExceededException",
        "ActiveSessionsExceededException",
        "ActiveWaitingRequestsExceededException",
        "InternalServerException",
        "DatabaseConnectionException",
        "QueryTimeoutException",
        "ServiceUnavailable",
        "RequestTimeout",
    }
)
_DENIED_CODES: Final = frozenset({"AccessDeniedException", "UnrecognizedClientException"})
_FINAL: Final = frozenset({"FINISHED", "FAILED", "ABORTED"})
#: How long (seconds) an idle session of ``send_batch(session=True)`` is kept: long enough
#: for the reads between two batches of a step; a run that dies leaves it to close itself.
SESSION_KEEP_ALIVE: Final = 300


def _mapped(exc: Exception, secrets: Sequence[str]) -> Error:
    """A botocore error as this driver's, without secret values."""
    response = getattr(exc, "response", None)
    code = ""
    message = str(exc)
    if isinstance(response, Mapping):
        details = response.get("Error", {})
        code = str(details.get("Code", ""))
        message = f"{code}: {details.get('Message', '')}" if code else message
    for secret in secrets:
        message = message.replace(secret, "***")
    if code in _RETRYABLE_CODES:
        return OperationalError(f"Redshift Data API: {message}", lost=True)
    if code in _DENIED_CODES:
        return OperationalError(f"Redshift Data API: {message}", sqlstate="42501")
    if code == "ResourceNotFoundException":
        return OperationalError(f"Redshift Data API: {message}", sqlstate="3D000")
    if response is None and type(exc).__module__.startswith(("botocore", "urllib3")):
        # no answer at all: an endpoint not reached, a read timeout
        return OperationalError(f"Redshift Data API: {message}", lost=True)
    return ProgrammingError(f"Redshift Data API: {message}")


@dataclass
class _Pending:
    sql: str
    parameters: dict[str, str]


#: How long a multi-row statement may grow (the Data API refuses a statement over 100 KB).
_STATEMENT_BYTES: Final = 90_000
_NAME: Final = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_READ: Final = re.compile(r"^\s*(?:SELECT|SHOW|WITH)\b", re.I)
_VALUES: Final = re.compile(r"\bVALUES\s*(\(.*\))\s*$", re.I | re.S)


def _literal(value: Any) -> str | None:
    """``value`` as a SQL literal, or ``None`` when it goes as a parameter."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str) and value == "":
        return "''"
    return None


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def bind(sql: str, params: Mapping[str, Any], prefix: str) -> _Pending:
    """``sql`` with its ``:name`` values written as literals or renamed to parameters of
    their own (``prefix``: the Data API shares one parameter list across a batch)."""
    sent: dict[str, str] = {}

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            return match.group(0)
        literal = _literal(params[name])
        if literal is not None:
            return literal
        renamed = f"{prefix}{name}"
        sent[renamed] = _text(params[name])
        return f":{renamed}"

    return _Pending(_NAME.sub(one, sql), sent)


def _value(cell: Mapping[str, Any], kind: str) -> Any:
    if cell.get("isNull"):
        return None
    for name in ("longValue", "booleanValue", "doubleValue"):
        if name in cell:
            return cell[name]
    text = cell.get("stringValue")
    if text is None:
        return cell.get("blobValue")
    kind = kind.lower()
    if kind in ("numeric", "decimal"):
        return decimal.Decimal(text)
    if kind.startswith("timestamp"):
        return dt.datetime.fromisoformat(text.replace(" ", "T"))
    if kind == "date":
        return dt.date.fromisoformat(text)
    return text


class Connection:
    """A DBAPI connection that reaches Redshift through the Data API (see the module)."""

    def __init__(self, api: RedshiftDataAPI) -> None:
        self.api = api
        self.client = _redshift_data.make_client(api)  # looked up here: tests replace it
        self.pending: list[_Pending] = []
        self.autocommit = False
        self._numbers = itertools.count(1)
        #: The open Data API session of ``send_batch(session=True)``, if any.
        self.session_id: str | None = None
        #: Sends the transaction's statements to the open session when it commits (set by
        #: a backend that left its session open for the step's last batch), which closes it.
        self.closing: Callable[[list[_Pending]], None] | None = None
        self.sleep: Callable[[float], None] = time.sleep

    # DBAPI
    def cursor(self) -> Cursor:
        return Cursor(self)

    def commit(self) -> None:
        pending, self.pending = self.pending, []
        closing, self.closing = self.closing, None
        if closing is not None and self.session_id is not None:
            closing(pending)
        elif pending:
            self.send_batch(pending)

    def rollback(self) -> None:
        # an open session is left to close itself when idle, its temporary tables with it
        self.pending, self.session_id, self.closing = [], None, None

    def close(self) -> None:
        self.rollback()

    # the Data API
    def prepared(self, sql: str, params: Mapping[str, Any] | None) -> _Pending:
        """``sql`` bound to ``params``, with parameter names unique on this connection."""
        return bind(sql, params or {}, f"p{next(self._numbers)}_")

    def take_pending(self) -> list[_Pending]:
        """The statements kept so far in this transaction (and forget them)."""
        pending, self.pending = self.pending, []
        return pending

    def send_batch(
        self, statements: Sequence[_Pending], *, session: bool = False, last: bool = False
    ) -> list[dict[str, Any]]:
        """Run ``statements`` as one transaction; their ``SubStatements`` descriptions.

        With ``session``, in this connection's Data API session (opened by the first such
        batch), whose temporary tables outlive the batch; ``last`` closes it.

        Raises:
            ProgrammingError: If a statement failed (all are rolled back); ``.failed`` is the
                index of that statement. A failure forgets the session.
        """
        if len(statements) > BATCH_LIMIT:
            raise ProgrammingError(
                f"Redshift Data API: a transaction of {len(statements)} statements; "
                f"BatchExecuteStatement runs at most {BATCH_LIMIT}"
            )
        parameters = [{"name": n, "value": v} for s in statements for n, v in s.parameters.items()]
        request: dict[str, Any] = {"Sqls": [s.sql for s in statements]}
        if session and self.session_id is not None:
            # the session knows the warehouse and the user: it is named alone
            request["SessionId"] = self.session_id
        else:
            request.update(self.api.target())
        if session and (self.session_id is not None or not last):
            request["SessionKeepAliveSeconds"] = 0 if last else SESSION_KEEP_ALIVE
        if parameters:
            request["Parameters"] = parameters
        logger.debug("Data API: a batch of %d statement(s)", len(statements))
        if last:
            self.session_id = None  # closed by this call, whatever its outcome
        try:
            started = self._call("batch_execute_statement", **request)
            if session and not last:
                if not started.get("SessionId"):
                    raise ProgrammingError(
                        "Redshift Data API: BatchExecuteStatement answered without a SessionId; "
                        "this endpoint does not keep sessions (SessionKeepAliveSeconds)"
                    )
                self.session_id = str(started["SessionId"])
            described = self._wait(started["Id"], statements=len(statements))
        except BaseException:
            if session:
                self.session_id = None  # a failed step starts afresh; the session expires
            raise
        return list(described.get("SubStatements", []))

    def run(self, statement: _Pending) -> dict[str, Any]:
        """Run one statement on its own; its description."""
        request: dict[str, Any] = {"Sql": statement.sql, **self.api.target()}
        if statement.parameters:
            request["Parameters"] = [
                {"name": n, "value": v} for n, v in statement.parameters.items()
            ]
        started = self._call("execute_statement", **request)
        return self._wait(started["Id"])

    def result(self, statement_id: str) -> tuple[list[tuple[Any, ...]], list[str], list[str]]:
        """All rows of a finished statement (``id`` or ``id:n`` for one of a batch), with
        the column names and types."""
        rows: list[tuple[Any, ...]] = []
        names: list[str] = []
        kinds: list[str] = []
        token: str | None = None
        while True:
            page = self._call(
                "get_statement_result", Id=statement_id, **({"NextToken": token} if token else {})
            )
            if not names:
                metadata = page.get("ColumnMetadata", [])
                names = [str(c.get("name", "")) for c in metadata]
                kinds = [str(c.get("typeName", "")) for c in metadata]
            rows += [
                tuple(_value(cell, kind) for cell, kind in zip(record, kinds, strict=False))
                for record in page.get("Records", [])
            ]
            token = page.get("NextToken")
            if not token:
                return rows, names, kinds

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(self.client, operation)(**request)
        except Exception as exc:
            raise _mapped(exc, self.api.secrets()) from None
        return answer

    def _wait(self, statement_id: str, *, statements: int = 1) -> dict[str, Any]:
        """Poll ``DescribeStatement`` until the call ends, pausing longer each time."""
        deadline = time.monotonic() + self.api.timeout
        pause = 0.05
        while True:
            described = self._call("describe_statement", Id=statement_id)
            status = described.get("Status")
            if status in _FINAL:
                break
            if time.monotonic() >= deadline:
                try:
                    self._call("cancel_statement", Id=statement_id)
                except Error:
                    logger.warning("Data API: could not cancel statement %s", statement_id)
                raise OperationalError(
                    f"Redshift Data API: the statement did not finish within "
                    f"{self.api.timeout:g} s (timeout), and was cancelled",
                    lost=True,
                )
            self.sleep(pause)
            pause = min(pause * 1.5, 2.0)
        if status == "FINISHED":
            return described
        message = str(described.get("Error") or f"the statement was {status.lower()}")
        for secret in self.api.secrets():
            message = message.replace(secret, "***")
        failed = next(
            (
                i
                for i, sub in enumerate(described.get("SubStatements", []))
                if sub.get("Status") in ("FAILED", "ABORTED")
            ),
            None,
        )
        error = ProgrammingError(message)
        error.failed = failed  # type: ignore[attr-defined]  # which statement of a batch
        error.substatements = described.get("SubStatements", [])  # type: ignore[attr-defined]
        raise error


class Cursor:
    """A DBAPI cursor: reads run at once; other statements wait for ``commit()``."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        statement = self.connection.prepared(sql, parameters)
        self.description, self._rows, self.rowcount = None, [], -1
        if not _READ.match(sql):
            self.connection.pending.append(statement)
            return
        described = self.connection.run(statement)
        if described.get("HasResultSet"):
            rows, names, kinds = self.connection.result(described["Id"])
            self.description = [
                (n, k, None, None, None, None, None) for n, k in zip(names, kinds, strict=True)
            ]
            self._rows = rows
            self.rowcount = len(rows)

    def executemany(self, sql: str, seq: Sequence[Mapping[str, Any]]) -> None:
        """An ``INSERT ... VALUES (...)`` for many rows becomes multi-row statements of up to
        ``_STATEMENT_BYTES`` each: a batch holds at most 40 statements, each at most 100 KB."""
        found = _VALUES.search(sql)
        if found is None or not seq:
            for params in seq:
                self.execute(sql, params)
            return
        head, row = sql[: found.start(1)], found.group(1)
        parts: list[str] = []
        parameters: dict[str, str] = {}
        size = len(head)
        for params in seq:
            bound = self.connection.prepared(row, params)
            grown = len(bound.sql) + sum(len(v) + len(k) for k, v in bound.parameters.items())
            if parts and size + grown > _STATEMENT_BYTES:
                self.connection.pending.append(_Pending(head + ", ".join(parts), parameters))
                parts, parameters, size = [], {}, len(head)
            parts.append(bound.sql)
            parameters.update(bound.parameters)
            size += grown + 2
        self.connection.pending.append(_Pending(head + ", ".join(parts), parameters))
        self.rowcount = len(seq)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        size = size or self.arraysize
        taken, self._rows = self._rows[:size], self._rows[size:]
        return taken

    def fetchall(self) -> list[tuple[Any, ...]]:
        taken, self._rows = self._rows, []
        return taken

    def close(self) -> None:
        self._rows = []

    def setinputsizes(self, *args: Any) -> None:
        pass

    def setoutputsize(self, *args: Any) -> None:
        pass


def connect(api: RedshiftDataAPI | None = None, **options: Any) -> Connection:
    """Open a Data API "connection" (no network until a statement is sent)."""
    if api is None:
        api = RedshiftDataAPI(**options)
    elif options:
        api = replace(api, **options)
    return Connection(api)
