"""Copy and time-series steps, each in its own transaction (none when validating).

A copy step: create the journal and the target if missing (under the backend's creation
lock), take the target's run lock, check the table against its class, list the source,
subtract the journal (``select_objects``), load, write the journal. A time-series step does
the same per new partition, each into a staging table, then replaces the target's rows from
the first new partition on and moves the cursor. ``runner`` calls them and commits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable, DropTable

from arbalest import journal
from arbalest.backends.base import CopyJob, LoadResult, staging_table
from arbalest.loading.drift import Drift, KeyShape, drift_report, read_objects
from arbalest.loading.formats import resolve_format
from arbalest.loading.tabular import check_fields
from arbalest.pipeline import evolution
from arbalest.pipeline._warnings import empty_source, unfilled_columns
from arbalest.pipeline.description import RunDescription
from arbalest.pipeline.result import Reject, StepResult
from arbalest.pipeline.steps import CopyStep, TimeSeriesStep
from arbalest.stores.base import ObjectInfo, ObjectStore, folder_prefix

__all__ = [
    "Progress",
    "load_copy",
    "load_time_series",
    "new_partitions",
    "select_objects",
    "step_drift",
]

# the run's log lines come from one logger, the one the docs and the command name
logger = logging.getLogger("arbalest.pipeline.runner")


class Progress(Protocol):
    """Receives progress events (the command line draws a bar with them).

    An object may also have ``chunk_loaded(label, info, nbytes, rows)``: it is then called as
    each piece of an object (a chunk: about 2 MB of its lines, a whole local object of up to
    8 MB, or about 4 MB of Parquet or CSV rows) is read and converted, with the bytes
    of that piece (uncompressed) and its rows, so that a large object shows progress before
    it is done. Loads that Redshift's ``COPY`` reads itself report whole objects only.
    """

    def step_started(self, label: str, objects: int, nbytes: int) -> None: ...

    def object_loaded(self, label: str, info: ObjectInfo) -> None: ...

    def step_finished(self, result: StepResult) -> None: ...


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
    cursor: tuple[str, str | None] | None = None,
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
        cursor=cursor,
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


def load_copy(
    pipeline: RunDescription,
    conn: sa.Connection,
    step: CopyStep,
    run_id: str,
    validate: bool,
    held: contextlib.ExitStack,
    listener: Progress,
) -> tuple[LoadResult, list[str], list[str]]:
    """Load a copy step's new objects (by its mode) and write the journal, in the step's
    transaction. Returns what was loaded, the keys that changed since they were loaded
    (incremental: left, and logged), and the step's warnings."""
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


def step_drift(step: CopyStep | TimeSeriesStep, loaded: LoadResult) -> Drift | None:
    """The step's drift report; ``None`` where the warehouse read the objects itself."""
    if loaded.shapes is None or loaded.filled is None:
        return None
    specs = step.schema.__fields__ if isinstance(step, CopyStep) else step.copy.schema.__fields__
    return drift_report(read_objects(specs), loaded.shapes, loaded.filled, loaded.rows_loaded)


def new_partitions(conn: sa.Connection, step: TimeSeriesStep) -> list[str]:
    """The step's partitions after its cursor's committed point (all of them at first)."""
    committed, _ = journal.cursor_point(conn, step.sources.cursor)
    partitions = step.sources.partitions()
    if committed is None:
        return partitions
    after = step.sources.sort_key(committed)
    return [p for p in partitions if step.sources.sort_key(p) > after]


def load_time_series(
    pipeline: RunDescription,
    conn: sa.Connection,
    step: TimeSeriesStep,
    run_id: str,
    validate: bool,
    held: contextlib.ExitStack,
    listener: Progress,
) -> tuple[LoadResult, list[str], list[str]]:
    """Load a time-series step's new partitions, each into a staging table, then replace the
    target's rows from the first of them on and move the cursor, in the step's transaction.
    Returns what was loaded, no changed keys, and the step's warnings."""
    store = step.sources.store
    table = step.table
    entries: list[journal.Entry] = []
    rejects: list[Reject] = []
    filled: Counter[str] | None = Counter()
    shapes: Counter[KeyShape] | None = Counter()
    loaded_objects: list[ObjectInfo] = []
    with _step_transaction(pipeline, conn, step, validate, held) as warnings:
        read, _ = journal.cursor_point(conn, step.sources.cursor)
        new = new_partitions(conn, step)
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
                cursor=(step.sources.cursor, read),
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
        # one write for every partition (over the Data API, the step's last batch has room
        # for a few statements only, whatever the number of partitions)
        journal.record(
            conn,
            target=step.target,
            entries=entries,
            mode="time_series",
            store=store.url,
            run_id=run_id,
            replace_prefix=[folder_prefix(p) for p in new],
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
