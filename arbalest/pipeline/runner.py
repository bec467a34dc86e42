"""run, validate and plan: one step loop; only the transactions' outcome differs.

``run`` commits each step on its own; ``validate`` runs every step inside one transaction
that is rolled back at the end (so SQL steps see the tables the copies would create);
``plan`` opens no transaction that writes.

A copy step, inside its transaction: create the journal and the target if missing (under
the backend's creation lock), take the target's run lock (before the transaction begins
where the backend says so: DuckDB), check the table against its class, list the source,
subtract the journal, load, write the journal, commit. The lock is taken before the journal
is read, so two runs never pick the same objects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable, DropTable

from arbalest import journal
from arbalest.backends.base import CopyJob, LoadResult, staging_table
from arbalest.errors import (
    ArbalestError,
    ConcurrentRunError,
    CopyError,
    PipelineError,
    SQLStepError,
    StoreUnavailableError,
    WarehouseAccessError,
    WarehouseUnavailableError,
)
from arbalest.loading.drift import Drift, KeyShape, drift_report, read_objects
from arbalest.loading.formats import resolve_format
from arbalest.loading.tabular import check_fields
from arbalest.pipeline import evolution
from arbalest.pipeline._failures import connect_error, retryable_statement, statement_hint
from arbalest.pipeline._warnings import empty_source, unfilled_columns
from arbalest.pipeline.description import RunDescription
from arbalest.pipeline.engines import duckdb_file
from arbalest.pipeline.result import Plan, PlanStep, Reject, RunResult, StepResult
from arbalest.pipeline.steps import CopyStep, SQLStep, TimeSeriesStep
from arbalest.stores.base import ObjectInfo, ObjectStore, folder_prefix

__all__ = [
    "Progress",
    "StoreUnavailableStepError",
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


class Progress(Protocol):
    """Receives progress events (the command line draws a bar with them).

    An object may also have ``chunk_loaded(label, info, nbytes, rows)``: it is then called as
    each piece of an object (about 8 MB of its lines) is read and converted, with the bytes
    of that piece (uncompressed) and its rows, so that a large object shows progress before
    it is done. Loads that Redshift's ``COPY`` reads itself report whole objects only.
    """

    def step_started(self, label: str, objects: int, nbytes: int) -> None: ...

    def object_loaded(self, label: str, info: ObjectInfo) -> None: ...

    def step_finished(self, result: StepResult) -> None: ...


class _Silent:
    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        pass

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        pass


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


def _secrets(pipeline: RunDescription) -> list[str]:
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
def _empty_database() -> Iterator[sa.Connection]:
    """A connection to an empty in-memory DuckDB database: what read-only verbs read when the
    warehouse's DuckDB file does not exist yet (so that reading it creates nothing)."""
    engine = sa.create_engine("duckdb:///:memory:", hide_parameters=True)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _not_there_yet(pipeline: RunDescription, path: Path, verb: str) -> None:
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
        message = redact(str(exc.orig).strip(), _secrets(pipeline))
        raise connect_error(exc.orig, where, message) from None
    with conn:
        yield conn


def select_objects(
    listing: Sequence[ObjectInfo], loaded: dict[str, str], mode: str
) -> tuple[list[ObjectInfo], list[str]]:
    """Which listed objects a step loads, and which loaded ones changed since.

    ``replace``: all. ``incremental``: those not in the journal, in key order; changed ones
    are reported, not loaded. ``merge``: new and changed ones, oldest first (by last
    modification, then key), so that the newest record for a key wins.
    """
    if mode == "replace":
        return sorted(listing, key=lambda o: o.key), []
    new = [o for o in listing if o.key not in loaded]
    changed = [o for o in listing if o.key in loaded and loaded[o.key] != o.etag]
    if mode == "merge":
        return sorted(new + changed, key=lambda o: (o.last_modified, o.key)), []
    return sorted(new, key=lambda o: o.key), [o.key for o in changed]


def execute(
    pipeline: RunDescription, *, validate: bool, progress: Progress | None = None
) -> RunResult:
    """Run (or validate) every step of ``pipeline``; see the module docstring."""
    path = missing_database(pipeline) if validate else None
    if path is not None:
        # validated against an empty database of the same kind: nothing is left behind
        _not_there_yet(pipeline, path, "validating")
        stand_in = sa.create_engine("duckdb:///:memory:", hide_parameters=True)
        try:
            return execute(pipeline.using(warehouse=stand_in), validate=True, progress=progress)
        finally:
            stand_in.dispose()
    listener: Progress = progress if progress is not None else _Silent()
    secrets = _secrets(pipeline)
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
                with _step_errors(step, secrets):
                    if isinstance(step, CopyStep | TimeSeriesStep):
                        run_step = _copy if isinstance(step, CopyStep) else _time_series
                        loaded, changed, warnings = run_step(
                            pipeline,
                            conn,
                            step,  # type: ignore[arg-type]  # matched to its function
                            run_id,
                            validate,
                            held,
                            listener,
                        )
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
                            _drift(step, loaded),
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
    run = RunResult(results, validated=validate)
    logger.info(
        "%s: %s in %.2f s: %d row(s) loaded, %d rejected",
        who,
        "validated" if validate else "done",
        run.seconds,
        run.rows_loaded,
        run.rows_rejected,
    )
    return run


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


def _job(
    pipeline: RunDescription,
    step: CopyStep,
    store: ObjectStore,
    run_id: str,
    validate: bool,
    listener: Progress,
    *,
    label: str | None = None,
    source: str | None = None,
    into: sa.Table | None = None,
    max_errors: int | None = None,
) -> CopyJob:
    label = label or step.label
    chunk_loaded = getattr(listener, "chunk_loaded", None)  # optional: see Progress
    job = CopyJob(
        label=label,
        schema=step.schema,
        mode=step.mode,
        store=store,
        source=step.source if source is None else source,
        options=step.options,
        compression=step.compression,
        max_errors=step.max_errors if max_errors is None else max_errors,
        metadata_prefix=pipeline.metadata,
        run_id=run_id,
        validate=validate,
        on_object=lambda info: listener.object_loaded(label, info),
        on_chunk=(
            None
            if chunk_loaded is None
            else lambda info, nbytes, rows: chunk_loaded(label, info, nbytes, rows)
        ),
        iam_role=pipeline.iam_role,
        credentials=pipeline.credentials,
        region=pipeline.region,
        into=into,
    )
    pipeline.backend.check_job(job)
    return job


def _with_format(
    pipeline: RunDescription, job: CopyJob, step: CopyStep, listing: Sequence[ObjectInfo]
) -> CopyJob:
    """The job with the format its objects are read in (``step.format``, or named by the
    objects' suffixes), checked against the schema and the warehouse.

    Raises:
        ConfigurationError: An object of another format is under the source (named).
    """
    fmt = resolve_format(step.format, listing)
    check_fields(fmt, step.schema.__fields__)
    job = dataclasses.replace(job, format=fmt, csv=step.csv_options)
    pipeline.backend.check_job(job)
    return job


@contextlib.contextmanager
def _step_transaction(
    pipeline: RunDescription,
    conn: sa.Connection,
    step: CopyStep | TimeSeriesStep,
    validate: bool,
    held: contextlib.ExitStack,
) -> Iterator[list[str]]:
    """The step's transaction (none of its own when validating), with the journal and the
    target created if missing, the target's run lock held, and an existing target checked
    against its class (and evolved, with ``evolve=True``: see ``evolution``). Yields the
    step's warnings so far."""
    backend = pipeline.backend
    table, target = step.table, step.target
    evolve = step.copy.evolve if isinstance(step, TimeSeriesStep) else step.evolve
    if evolve and not validate and not backend.capabilities.alter_type_in_transaction:
        # Redshift: ALTER COLUMN ... TYPE only outside a transaction block
        evolution.widen_first(pipeline.engine, table, backend, step=step.label)
    with contextlib.ExitStack() as stack:
        if backend.lock_before_transaction and not validate:
            # taken first, so that the transaction sees what the previous holder committed
            stack.enter_context(backend.lock(conn, target, pipeline.lock_timeout))
        if not validate:
            stack.enter_context(conn.begin())
        created = False
        locks = backend.lock_tables(target)
        tables = (journal.JOURNAL, journal.CURSORS, table, *locks)
        if not all(journal.table_exists(conn, t) for t in tables):
            # Runs starting at once on a new warehouse would race to create the same tables;
            # the creation lock makes them take turns (held until the step ends).
            creating = backend.creation_lock(conn, pipeline.lock_timeout, validate=validate)
            (held if validate else stack).enter_context(creating)
            journal.ensure(conn)
            if not journal.table_exists(conn, table):
                conn.execute(CreateTable(table, if_not_exists=True))
                created = True
            for lock_table in locks:
                if not journal.table_exists(conn, lock_table):
                    conn.execute(CreateTable(lock_table, if_not_exists=True))
        if not backend.lock_before_transaction or validate:
            lock = backend.lock(conn, target, pipeline.lock_timeout)
            (held if validate else stack).enter_context(lock)
        warnings = []
        if not created:
            # with the lock held: two runs never both alter the table
            warnings = evolution.reconcile(
                conn, table, backend, step=step.label, evolve=evolve, validate=validate
            )
        yield warnings


def _copy(
    pipeline: RunDescription,
    conn: sa.Connection,
    step: CopyStep,
    run_id: str,
    validate: bool,
    held: contextlib.ExitStack,
    listener: Progress,
) -> tuple[LoadResult, list[str], list[str]]:
    store = pipeline.store
    assert store is not None  # checked when the step was added
    job = _job(pipeline, step, store, run_id, validate, listener)
    with _step_transaction(pipeline, conn, step, validate, held) as warnings:
        listing = list(store.list(step.source, exclude=pipeline.metadata))
        job = _with_format(pipeline, job, step, listing)
        loaded = journal.loaded(conn, step.target, step.source)
        objects, changed = select_objects(listing, loaded, step.mode)
        for key in changed:
            logger.warning(
                "%s%s: %s changed since it was loaded (new ETag); incremental copies load an "
                "object once: use mode='merge' or 'replace' to load changes",
                f"{pipeline.name}: " if pipeline.name else "",
                step.label,
                key,
            )
        listener.step_started(step.label, len(objects), sum(o.size for o in objects))
        result = pipeline.backend.load(conn, job, objects)
        journal.record(
            conn,
            target=step.target,
            entries=result.entries,
            mode=step.mode,
            store=store.url,
            run_id=run_id,
            replace_prefix=step.source if step.mode == "replace" else None,
        )
    if not listing:
        warnings.append(empty_source(store, step.source))
    if result.rows_loaded and result.filled is not None:
        specs = step.schema.__fields__
        warnings += unfilled_columns(
            specs,
            result.filled,
            store,
            objects,
            step.compression,
            fmt=job.format,
            csv=step.csv_options,
        )
    return result, changed, warnings


def _drift(step: CopyStep | TimeSeriesStep, loaded: LoadResult) -> Drift | None:
    """The step's drift report; ``None`` where the warehouse read the objects itself."""
    if loaded.shapes is None or loaded.filled is None:
        return None
    specs = step.schema.__fields__ if isinstance(step, CopyStep) else step.copy.schema.__fields__
    return drift_report(read_objects(specs), loaded.shapes, loaded.filled, loaded.rows_loaded)


def _new_partitions(conn: sa.Connection, step: TimeSeriesStep) -> list[str]:
    committed, _ = journal.cursor_point(conn, step.sources.cursor)
    partitions = step.sources.partitions()
    if committed is None:
        return partitions
    after = step.sources.sort_key(committed)
    return [p for p in partitions if step.sources.sort_key(p) > after]


def _time_series(
    pipeline: RunDescription,
    conn: sa.Connection,
    step: TimeSeriesStep,
    run_id: str,
    validate: bool,
    held: contextlib.ExitStack,
    listener: Progress,
) -> tuple[LoadResult, list[str], list[str]]:
    store = step.sources.store
    table = step.table
    entries: list[journal.Entry] = []
    rejects: list[Reject] = []
    filled: Counter[str] | None = Counter()
    shapes: Counter[KeyShape] | None = Counter()
    loaded_objects: list[ObjectInfo] = []
    with _step_transaction(pipeline, conn, step, validate, held) as warnings:
        new = _new_partitions(conn, step)
        if not new:
            return LoadResult([], [], {}, {}), [], warnings
        stagings = []
        listings = [list(store.list(p, exclude=pipeline.metadata)) for p in new]
        listener.step_started(
            step.label, sum(map(len, listings)), sum(o.size for ls in listings for o in ls)
        )
        for number, (partition, objects) in enumerate(zip(new, listings, strict=True)):
            staging = staging_table(table, run_id, suffix=f"_{number}")
            conn.execute(CreateTable(staging))
            stagings.append(staging)
            job = _job(
                pipeline,
                step.copy,
                store,
                run_id,
                validate,
                listener,
                label=step.label,
                source=folder_prefix(partition),
                into=staging,
                max_errors=step.copy.max_errors - len(rejects),
            )
            job = _with_format(pipeline, job, step.copy, objects)
            loaded = pipeline.backend.load(conn, job, objects)
            rejects += loaded.rejects
            entries += loaded.entries
            loaded_objects += objects
            if filled is not None and loaded.filled is not None:
                filled.update(loaded.filled)
            else:
                filled = None
            if shapes is not None and loaded.shapes is not None:
                shapes.update(loaded.shapes)
            else:
                shapes = None
            journal.record(
                conn,
                target=step.target,
                entries=loaded.entries,
                mode="time_series",
                store=store.url,
                run_id=run_id,
                replace_prefix=folder_prefix(partition),
            )
        conn.execute(sa.delete(table).where(step.replaced_from(new[0])))
        names = table.c.keys()
        union = sa.union_all(*(sa.select(*(s.c[n] for n in names)) for s in stagings))
        conn.execute(sa.insert(table).from_select(names, union))
        for staging in stagings:
            conn.execute(DropTable(staging))
        journal.cursor_commit(conn, step.sources.cursor, new[-1])
    result = LoadResult(
        entries,
        rejects,
        None if filled is None else dict(filled),
        None if shapes is None else dict(shapes),
    )
    if result.rows_loaded and filled is not None:
        specs = step.copy.schema.__fields__
        warnings += unfilled_columns(
            specs,
            filled,
            store,
            loaded_objects,
            step.copy.compression,
            fmt=job.format if loaded_objects else "json",
            csv=step.copy.csv_options,
        )
    return result, [], warnings


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
        _not_there_yet(pipeline, path, "planning")
    with _empty_database() if path is not None else connect(pipeline) as conn:
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
            if isinstance(step, TimeSeriesStep):
                objects = [
                    info
                    for partition in _new_partitions(conn, step)
                    for info in step.sources.store.list(partition, exclude=pipeline.metadata)
                ]
                steps.append(
                    PlanStep(
                        step.label,
                        step.target,
                        ddl=ddl,
                        keys=[o.key for o in objects],
                        **table_changes,
                    )
                )
                continue
            store = pipeline.store
            assert store is not None
            listing = list(store.list(step.source, exclude=pipeline.metadata))
            loaded = journal.loaded(conn, step.target, step.source)
            objects, changed = select_objects(listing, loaded, step.mode)
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
