"""The error hierarchy: one root, builtin bases, context attributes, and pickling."""

from __future__ import annotations

import pickle

import pytest

import arbalest
from arbalest import errors

ALL_ERRORS: list[errors.ArbalestError] = [
    errors.ArbalestError("base"),
    errors.SchemaError("bad schema"),
    errors.ConfigurationError("bad option"),
    errors.UnknownBackendError("mysql", ["duckdb", "postgresql"]),
    errors.MissingDependencyError("luigi", "luigi"),
    errors.LoadError("amount", "12x", "Invalid digit", 1207),
    errors.StoreError("cannot list"),
    errors.ObjectNotFoundError("no such key"),
    errors.StoreUnavailableError("timed out"),
    errors.PipelineError("copy events (incremental)", "boom"),
    errors.TooManyRejectsError("copy events (incremental)", ["r1", "r2"], 1),
    errors.CopyError("copy events (replace)", "refused", "COPY events FROM ..."),
    errors.SQLStepError("sql", "syntax error", "SELEC 1"),
    errors.ConcurrentRunError("copy events (merge)", "lock held"),
    errors.WarehouseUnavailableError("copy events (merge)", "connection lost"),
    errors.WarehouseUnavailableError("", "cannot open the warehouse duckdb:///w.duckdb: lock"),
    errors.WarehouseAccessError("duckdb:///x/w.duckdb", "No such file", "create the folder"),
    errors.TableMismatchError(
        "copy events (incremental)",
        "events",
        ["referrer"],
        ["column referrer (VARCHAR(256)) is not in the table"],
        "copy(..., evolve=True) adds new columns",
    ),
]


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_survives_pickling(error: errors.ArbalestError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_is_public_and_under_the_root(error: errors.ArbalestError) -> None:
    assert isinstance(error, arbalest.ArbalestError)
    assert getattr(arbalest, type(error).__name__) is type(error)


def test_builtin_bases() -> None:
    assert issubclass(errors.SchemaError, TypeError)
    assert issubclass(errors.ConfigurationError, ValueError)
    assert issubclass(errors.LoadError, ValueError)
    assert issubclass(errors.UnknownBackendError, LookupError)
    assert issubclass(errors.MissingDependencyError, ImportError)
    assert issubclass(errors.ObjectNotFoundError, LookupError)
    assert issubclass(errors.TooManyRejectsError, errors.PipelineError)
    assert issubclass(errors.ConcurrentRunError, errors.PipelineError)


def test_retryable_flags() -> None:
    assert errors.ConcurrentRunError.retryable
    assert errors.WarehouseUnavailableError.retryable
    assert errors.StoreUnavailableError.retryable
    assert not errors.PipelineError.retryable
    assert not errors.TooManyRejectsError.retryable


def test_messages_say_what_and_where() -> None:
    load = errors.LoadError("amount", "12x", "Invalid digit", 1207)
    assert (load.column, load.value, load.reason, load.code) == (
        "amount",
        "12x",
        "Invalid digit",
        1207,
    )
    assert str(load) == "column 'amount': Invalid digit (value '12x') [code 1207]"
    step = errors.TooManyRejectsError("copy events (incremental)", ["first"], 0)
    assert step.step == "copy events (incremental)"
    assert "max_errors=0" in str(step)
    assert "first" in str(step)
    missing = errors.MissingDependencyError("luigi", "luigi")
    assert "pip install 'arbalest[luigi]>=2'" in str(missing)


def test_retryable_can_be_decided_by_the_cause_and_survives_pickling() -> None:
    deadlock = errors.SQLStepError("sql", "deadlock detected", "UPDATE t SET a = 1")
    deadlock.retryable = True
    assert not errors.SQLStepError.retryable
    copy = pickle.loads(pickle.dumps(deadlock))
    assert copy.retryable


def test_a_warehouse_that_cannot_be_opened_names_no_step() -> None:
    closed = errors.WarehouseUnavailableError("", "cannot open the warehouse w: refused")
    assert (str(closed), closed.step, closed.retryable) == (
        "cannot open the warehouse w: refused",
        "",
        True,
    )
    lost = errors.WarehouseUnavailableError("copy events (merge)", "connection lost")
    assert str(lost) == "step 'copy events (merge)' failed: connection lost"
    access = errors.WarehouseAccessError("duckdb:///x/w.duckdb", "No such file", "create it")
    assert isinstance(access, errors.ConfigurationError)
    assert not access.retryable
    assert str(access) == "cannot open the warehouse duckdb:///x/w.duckdb: No such file; create it"
