"""Every exception Arbalest raises.

All of them derive from ``ArbalestError``, and most also derive from the builtin they
resemble, so ``except ValueError`` keeps working for people who expect it:

```text
ArbalestError                          retryable: bool = False (by class, or by cause)
├── SchemaError (TypeError)            raised while a class statement runs; names the field(s)
├── ConfigurationError (ValueError)    bad arguments to Pipeline/.copy()/CLI; raised at once
│   ├── UnknownBackendError (LookupError)
│   ├── MissingDependencyError (ImportError)   says which extra to install
│   └── WarehouseAccessError           the warehouse refuses to open: a failed sign-in, a
│                                      missing database, role or directory, a refused
│                                      permission; says what to fix
├── LoadError (ValueError)             one value or record that cannot be converted
├── StoreError                         listing/reading/writing objects
│   ├── ObjectNotFoundError (LookupError)
│   └── StoreUnavailableError          retryable = True
└── PipelineError                      a step failed; the warehouse is as it was before it
    ├── TooManyRejectsError            .rejects: the rejected records
    ├── CopyError                      the warehouse refused a load; .statement (redacted)
    ├── SQLStepError                   .statement (redacted)
    ├── ConcurrentRunError             the run lock is held; retryable = True
    ├── TableMismatchError (SchemaError)  the target table's columns differ from its
    │                                  class; .table, .columns, .differences
    └── WarehouseUnavailableError      cannot connect, or connection lost; retryable = True
```

``retryable`` is true only where trying again can help: a refused connection, a timeout,
throttling, a lock. A ``CopyError`` or ``SQLStepError`` is retryable when the warehouse gave
up for one of those reasons (a deadlock, a lock or statement timeout), not otherwise.

Errors carry plain data (labels, keys, redacted statements), never connections or steps, so
that they pickle: Luigi workers and multiprocessing send them between processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ArbalestError",
    "ConcurrentRunError",
    "ConfigurationError",
    "CopyError",
    "LoadError",
    "MissingDependencyError",
    "ObjectNotFoundError",
    "PipelineError",
    "SQLStepError",
    "SchemaError",
    "StoreError",
    "StoreUnavailableError",
    "TableMismatchError",
    "TooManyRejectsError",
    "UnknownBackendError",
    "WarehouseAccessError",
    "WarehouseUnavailableError",
]


class ArbalestError(Exception):
    """The base of every error Arbalest raises."""

    # Whether trying the same thing again can succeed. Set by class (``ConcurrentRunError``)
    # or, where the cause decides, on the instance (a deadlock in a ``CopyError``).
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take more than a message, so the default (calling the class with
        # self.args) would fail; rebuild them from their attributes instead.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(
    cls: type[ArbalestError], args: tuple[Any, ...], state: dict[str, Any]
) -> ArbalestError:
    obj = cls.__new__(cls)
    Exception.__init__(obj, *args)
    obj.__dict__.update(state)
    return obj


class SchemaError(ArbalestError, TypeError):
    """A schema is wrong; raised while its ``class`` statement runs."""

    #: The file and line of the mistake, when known (a field's declaration).
    filename: str | None = None
    lineno: int | None = None


class ConfigurationError(ArbalestError, ValueError):
    """Bad arguments to ``Pipeline``, a step or the command line; raised at once."""


class UnknownBackendError(ConfigurationError, LookupError):
    """No backend serves the warehouse's SQLAlchemy dialect."""

    def __init__(self, dialect: str, known: Sequence[str]) -> None:
        super().__init__(
            f"no Arbalest backend for the SQLAlchemy dialect {dialect!r}; "
            f"known dialects: {', '.join(sorted(known))}"
        )
        self.dialect = dialect
        self.known = tuple(known)


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install 'arbalest[{extra}]>=2'"
        )
        self.package = package
        self.extra = extra


class WarehouseAccessError(ConfigurationError):
    """The warehouse refuses to open for a reason that trying again cannot fix: a failed
    sign-in, a missing database, role or directory, a refused permission, a file that is not a
    database. Raised when the first connection is made, before any step runs.

    Attributes:
        warehouse: The warehouse URL, its password hidden.
        reason: The driver's own words, on one line (credentials redacted).
        fix: What to change, e.g. ``"check the database name in the warehouse URL"``.
    """

    def __init__(self, warehouse: str, reason: str, fix: str) -> None:
        super().__init__(f"cannot open the warehouse {warehouse}: {reason}; {fix}")
        self.warehouse = warehouse
        self.reason = reason
        self.fix = fix


class LoadError(ArbalestError, ValueError):
    """One value or record cannot be converted to its column's type.

    Attributes:
        column: The column name (``None`` for a record that is not valid JSON).
        value: The raw value, as text, or ``None``.
        reason: What is wrong with it, in Redshift's words where it has some.
        code: Redshift's STL_LOAD_ERRORS error code (1204, 1206, 1207, ...).
    """

    def __init__(self, column: str | None, value: str | None, reason: str, code: int) -> None:
        where = f"column {column!r}" if column else "record"
        shown = "" if value is None else f" (value {_clip(value)!r})"
        super().__init__(f"{where}: {reason}{shown} [code {code}]")
        self.column = column
        self.value = value
        self.reason = reason
        self.code = code


class StoreError(ArbalestError):
    """Listing, reading or writing objects failed."""


class ObjectNotFoundError(StoreError, LookupError):
    """An object or prefix does not exist."""


class StoreUnavailableError(StoreError):
    """The object store could not be reached, even after retries."""

    retryable = True


class PipelineError(ArbalestError):
    """A step failed; the warehouse and the journal are as they were before it.

    Attributes:
        step: The step's label, e.g. ``"copy events (incremental)"``.
    """

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"step {step!r} failed: {message}")
        self.step = step
        self.detail = message


class TooManyRejectsError(PipelineError):
    """More records were rejected than ``max_errors`` allows; nothing was committed.

    Attributes:
        rejects: The rejected records (``Reject`` objects), in the order they were found.
        max_errors: The limit that was exceeded.
    """

    def __init__(self, step: str, rejects: Sequence[Any], max_errors: int) -> None:
        first = rejects[0] if rejects else None
        detail = f"; first: {first}" if first is not None else ""
        super().__init__(
            step,
            f"{len(rejects)} record(s) rejected, more than max_errors={max_errors}"
            f"{detail}. Fix the data or raise max_errors.",
        )
        self.rejects = list(rejects)
        self.max_errors = max_errors


class CopyError(PipelineError):
    """The warehouse refused a load.

    Attributes:
        statement: The statement that failed, with credentials redacted.
    """

    def __init__(self, step: str, message: str, statement: str | None = None) -> None:
        super().__init__(step, message)
        self.statement = statement


class SQLStepError(PipelineError):
    """A statement of a SQL step failed.

    Attributes:
        statement: The statement that failed, with credentials redacted.
    """

    def __init__(self, step: str, message: str, statement: str | None = None) -> None:
        super().__init__(step, message)
        self.statement = statement


class ConcurrentRunError(PipelineError):
    """Another run holds the lock on the target table for longer than ``lock_timeout``."""

    retryable = True


class TableMismatchError(PipelineError, SchemaError):
    """A copy step's target table exists and its columns differ from the class in a way the
    step may not change (any way at all, without ``evolve=True``); nothing was changed.

    Both a ``PipelineError`` (``.step`` names the step) and a ``SchemaError`` (the class and
    the table disagree).

    Attributes:
        table: The target table.
        columns: Every differing column: the class's, in its order, then the table's.
        differences: One sentence per difference, e.g. ``"column name is VARCHAR(64) in the
            table, VARCHAR(256) in the class (evolve=True widens it)"``.
        fix: What to do: ``evolve=True``, or a migration (Alembic), or change the class.
    """

    def __init__(
        self,
        step: str,
        table: str,
        columns: Sequence[str],
        differences: Sequence[str],
        fix: str,
    ) -> None:
        shown = ", ".join(dict.fromkeys(columns))
        super().__init__(
            step,
            f"the table {table} differs from its class in column(s) {shown}: "
            f"{'; '.join(differences)}. To fix: {fix}. Nothing was changed.",
        )
        self.table = table
        self.columns = list(dict.fromkeys(columns))
        self.differences = list(differences)
        self.fix = fix


class WarehouseUnavailableError(PipelineError):
    """The warehouse cannot be reached (a refused connection, a timeout, too many clients, a
    DuckDB file another process holds), or the connection to it was lost.

    Attributes:
        step: The step that lost its connection, or ``""`` when the warehouse could not be
            opened before any step ran (the message then names no step).
    """

    retryable = True

    def __init__(self, step: str, message: str) -> None:
        super().__init__(step, message)
        if not step:
            self.message = message
            self.args = (message,)


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
