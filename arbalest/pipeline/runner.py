"""run, validate and plan: one step loop; only the transactions' outcome differs.

``run`` commits each step on its own; ``validate`` runs every step inside one transaction
that is rolled back at the end (so SQL steps see the tables the copies would create);
``plan`` opens no transaction that writes.

A copy step, inside its transaction (``copying``): create the journal and the target if
missing (under the backend's creation lock), take the target's run lock (before the
transaction begins where the backend says so: DuckDB), check the table against its class,
list the source, subtract the journal, load, write the journal, commit. The lock is taken
before the journal is read, so two runs never pick the same objects. Whatever a step raises
leaves here as a ``PipelineError`` naming the step, with credentials redacted
(``connection``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from arbalest import journal
from arbalest.errors import (
    ArbalestError,
    ConcurrentRunError,
    CopyError,
    PipelineError,
    SQLStepError,
    StoreUnavailableError,
    WarehouseUnavailableError,
)
from arbalest.pipeline import evolution, telemetry
from arbalest.pipeline._failures import retryable_statement, statement_hint
from arbalest.pipeline.connection import (
    connect,
    empty_database,
    missing_database,
    not_there_yet,
    redact,
    secrets_of,
)
from arbalest.pipeline.copying import (
    Progress,
    load_copy,
    load_time_series,
    new_partitions,
    select_objects,
    step_drift,
)
from arbalest.pipeline.description import RunDescription
from arbalest.pipeline.result import Plan, PlanStep, RunResult, StepResult
from arbalest.pipeline.steps import CopyStep, SQLStep, TimeSeriesStep
from arbalest.stores.base import ObjectInfo

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = [
    "Progress",
    "StoreUnavailableStepError",
    "connect",
    "execute",
    "missing_database",
    "plan",
    "redact",
    "select_objects",
]

logger = logging.getLogger(__name__)


class StoreUnavailableStepError(PipelineError, StoreUnavailableError):
    """A step failed because the object store could not be reached.

    Both a ``PipelineError`` (``.step`` names the step; the warehouse is as it was before
    it) and a ``StoreUnavailableError``, so it stays ``retryable``.
    """

    retryable = True


class _Silent:
    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        pass

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        pass


def execute(
    pipeline: RunDescription,
    *,
    validate: bool,
    progress: Progress | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> RunResult:
    """Run (or validate) every step of ``pipeline``; see the module docstring. Spans and
    metrics go to the providers given, or the global ones (``telemetry``)."""
    path = missing_database(pipeline) if validate else None
    if path is not None:
        # validated against an empty database of the same kind: nothing is left behind
        not_there_yet(pipeline, path, "validating")
        stand_in = sa.create_engine("duckdb:///:memory:", hide_parameters=True)
        try:
            return execute(
                pipeline.using(warehouse=stand_in),
                validate=True,
                progress=progress,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
            )
        finally:
            stand_in.dispose()
    secrets = secrets_of(pipeline)
    with telemetry.run(
        pipeline,
        validate=validate,
        secrets=secrets,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    ) as watch:
        listener = watch.listening(progress if progress is not None else _Silent())
        results = _steps(pipeline, validate, listener, watch, secrets)
        run = RunResult(results, validated=validate)
        watch.finished(run)
    who = f"pipeline {pipeline.name}" if pipeline.name else "pipeline"
    logger.info(
        "%s: %s in %.2f s: %d row(s) loaded, %d rejected",
        who,
        "validated" if validate else "done",
        run.seconds,
        run.rows_loaded,
        run.rows_rejected,
    )
    return run


def _steps(
    pipeline: RunDescription,
    validate: bool,
    listener: Progress,
    watch: telemetry.RunTelemetry,
    secrets: Sequence[str],
) -> list[StepResult]:
    """Every step, in order, on one connection; what each did."""
    run_id = journal.new_run_id()
    results: list[StepResult] = []
    who = f"pipeline {pipeline.name}" if pipeline.name else "pipeline"
    # step lines name the pipeline too, when it has a name: logs of several pipelines mix
    prefix = f"{pipeline.name}: " if pipeline.name else ""
    if validate:
        logger.info("%s: validating %d step(s), rolled back at the end", who, len(pipeline.steps))
    else:
        logger.info("%s: running %d step(s)", who, len(pipeline.steps))
    with connect(pipeline) as conn, contextlib.ExitStack() as held:
        if validate and pipeline.backend.lock_before_transaction:
            # one transaction for the whole validation: its lock must come before it
            held.enter_context(pipeline.backend.lock(conn, "validate", pipeline.lock_timeout))
        outer = conn.begin() if validate else None
        try:
            for step in pipeline.steps:
                started = time.monotonic()
                with watch.step(step) as watching, _step_errors(step, secrets):
                    if isinstance(step, CopyStep | TimeSeriesStep):
                        run_step = load_copy if isinstance(step, CopyStep) else load_time_series
                        loaded, changed, warnings = run_step(
                            pipeline,
                            conn,
                            step,  # type: ignore[arg-type]  # matched to its function
                            run_id,
                            validate,
                            held,
                            listener,
                        )
                        watching.loaded(loaded)
                        result = StepResult(
                            step.label,
                            step.target,
                            len(loaded.entries),
                            loaded.rows_loaded,
                            len(loaded.rejects),
                            loaded.rejects,
                            time.monotonic() - started,
                            changed,
                            warnings,
                            step_drift(step, loaded),
                        )
                        for warning in warnings:
                            # marked: the command shows them in its summary, not twice
                            logger.warning(
                                "%s%s: %s",
                                prefix,
                                step.label,
                                warning,
                                extra={"arbalest_step_warning": True},
                            )
                    else:
                        _sql(conn, step, validate)
                        result = StepResult(
                            step.label, None, 0, 0, 0, [], time.monotonic() - started
                        )
                    watching.finished(result)
                logger.info(
                    "%s%s: %d object(s), %d row(s), %d rejected, %.2f s",
                    prefix,
                    result.label,
                    result.objects_loaded,
                    result.rows_loaded,
                    result.rows_rejected,
                    result.seconds,
                )
                listener.step_finished(result)
                results.append(result)
        finally:
            if outer is not None:
                outer.rollback()
    return results


@contextlib.contextmanager
def _step_errors(
    step: CopyStep | SQLStep | TimeSeriesStep, secrets: Sequence[str]
) -> Iterator[None]:
    """Turn whatever a step raises into a ``PipelineError`` labelled with the step."""
    try:
        with _translated(step, secrets):
            yield
    except PipelineError as exc:
        if exc.__suppress_context__:
            # not even kept out of sight: the driver's error may list bound parameters
            # (credentials, with an engine made without hide_parameters=True)
            exc.__context__ = None
        raise


@contextlib.contextmanager
def _translated(
    step: CopyStep | SQLStep | TimeSeriesStep, secrets: Sequence[str]
) -> Iterator[None]:
    try:
        yield
    except ConcurrentRunError as exc:
        raise ConcurrentRunError(step.label, redact(exc.detail, secrets)) from None
    except PipelineError:
        raise
    except StoreUnavailableError as exc:
        # an outage is worth retrying: keep the class (and so ``retryable``), add the step
        raise StoreUnavailableStepError(step.label, redact(str(exc), secrets)) from exc
    except ArbalestError as exc:
        raise PipelineError(step.label, redact(str(exc), secrets)) from exc
    except sa.exc.DBAPIError as exc:
        message = redact(str(exc.orig).strip(), secrets)
        statement = redact(str(exc.statement or ""), secrets) or None
        if exc.connection_invalidated:
            raise WarehouseUnavailableError(
                step.label, f"the connection to the warehouse was lost: {message}"
            ) from None
        message += statement_hint(exc.orig, message)
        error: CopyError | SQLStepError = (
            SQLStepError(step.label, message, statement)
            if isinstance(step, SQLStep)
            else CopyError(step.label, message, statement)
        )
        # a deadlock, a lock or statement timeout, throttling: trying again can help
        error.retryable = retryable_statement(exc.orig, message)
        raise error from None
    except sa.exc.SQLAlchemyError as exc:
        raise PipelineError(step.label, redact(str(exc), secrets)) from None


def _sql(conn: sa.Connection, step: SQLStep, validate: bool) -> None:
    with contextlib.ExitStack() as stack:
        if not validate:
            stack.enter_context(conn.begin())
        for statement, params in step.statements:
            conn.execute(statement, params)


def plan(pipeline: RunDescription) -> Plan:
    """What ``run()`` would do, read from the store and the journal; nothing is written."""
    steps: list[PlanStep] = []
    dialect = pipeline.engine.dialect
    path = missing_database(pipeline)
    if path is not None:
        not_there_yet(pipeline, path, "planning")
    with empty_database() if path is not None else connect(pipeline) as conn:
        for step in pipeline.steps:
            if isinstance(step, SQLStep):
                steps.append(
                    PlanStep(
                        step.label,
                        None,
                        sql=[str(statement) for statement, _ in step.statements],
                    )
                )
                continue
            ddl = []
            table_changes: dict[str, Any] = {}
            if not journal.table_exists(conn, step.table):
                ddl.append(str(CreateTable(step.table).compile(dialect=dialect)).strip())
            else:
                table_changes = _planned_changes(pipeline, conn, step)
            objects, changed = _planned_objects(pipeline, conn, step)
            steps.append(
                PlanStep(
                    step.label,
                    step.target,
                    ddl=ddl,
                    keys=[o.key for o in objects],
                    objects_changed=changed,
                    **table_changes,
                )
            )
        conn.rollback()
    return Plan(steps)


def _planned_objects(
    pipeline: RunDescription, conn: sa.Connection, step: CopyStep | TimeSeriesStep
) -> tuple[list[ObjectInfo], list[str]]:
    """The objects the step would load, and the loaded ones that changed since (which an
    incremental copy leaves)."""
    if isinstance(step, TimeSeriesStep):
        partitions = new_partitions(conn, step)
        store = step.sources.store
        return [o for p in partitions for o in store.list(p, exclude=pipeline.metadata)], []
    assert pipeline.store is not None  # checked when the step was added
    listing = list(pipeline.store.list(step.source, exclude=pipeline.metadata))
    return select_objects(listing, journal.loaded(conn, step.target, step.source), step.mode)


def _planned_changes(
    pipeline: RunDescription, conn: sa.Connection, step: CopyStep | TimeSeriesStep
) -> dict[str, Any]:
    """How the existing table differs from the class, and what the step would do about it
    (``PlanStep``'s ``changes``, ``alter``, ``alter_before`` and ``refused``)."""
    evolve = step.copy.evolve if isinstance(step, TimeSeriesStep) else step.evolve
    changes = evolution.compare(conn, step.table, pipeline.backend)
    if not changes:
        return {}
    refused = changes.refused(evolve)
    if refused:
        return {
            "changes": changes.changes,
            "refused": evolution.mismatch(step.label, changes, evolve).fix,
        }
    return {
        "changes": changes.changes,
        "alter": changes.statements(in_transaction=True),
        "alter_before": changes.statements(in_transaction=False),
    }
