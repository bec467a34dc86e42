"""The backend interface, and the load loop shared by the warehouses that Arbalest feeds.

A backend loads one copy step's objects into its target, inside the transaction the runner
opened for the step; it never commits. PostgreSQL and DuckDB read the objects through
Arbalest (``TransformBackend``); Redshift pulls them from S3 itself with ``COPY``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable, DropTable

from arbalest._typing import CopyMode
from arbalest.backends import duplicates
from arbalest.backends._stream import BatchStream
from arbalest.convert import ConvertOptions
from arbalest.errors import CopyError, TooManyRejectsError
from arbalest.journal import Entry
from arbalest.loading import reader, scratch
from arbalest.loading.converter import Converter, batches
from arbalest.loading.drift import KeyShape
from arbalest.loading.formats import CsvOptions
from arbalest.loading.reader import Feed
from arbalest.loading.rejects import Reject
from arbalest.loading.tabular import TabularConverter
from arbalest.loading.tabular_feed import TabularFeed
from arbalest.loading.transform import Batch
from arbalest.schema.base import Schema
from arbalest.stores.base import ObjectInfo, ObjectStore
from arbalest.stores.credentials import Credentials

__all__ = [
    "Backend",
    "Capabilities",
    "CopyJob",
    "LoadResult",
    "TransformBackend",
    "quote_table",
    "sqlstate",
    "staging_table",
    "upsert_from",
]

logger = logging.getLogger(__name__)

#: The transform converts about this many bytes of JSON per query (a batch: one conversion
#: and one write; 4 MB rather than 8 holds less in each of the threads at the same CPU).
BATCH_BYTES: Final = 4 * 1024 * 1024
#: Where each row of a merge comes from: the chunk (chunks are numbered in the order the
#: objects are loaded, by last modified and key), the line, and the record's place among the
#: records ending on that line (0-based). The newest row for a key is the last in this order.
POSITION_COLUMNS: Final = ("_arbalest_chunk", "_arbalest_line", "_arbalest_index")


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, as data (tests and the pipeline check these, not names).

    Attributes:
        reads_objects_itself: The warehouse reads the objects (Redshift's COPY from S3).
        requires_s3: The objects must be in S3.
        max_identifier_bytes: The longest table or column name.
        advisory_locks: Runs are serialised with the warehouse's own locks.
        varchar_lengths: ``VARCHAR(n)`` keeps its length ``n`` (DuckDB's ``VARCHAR`` has
            none: every length is one type, and there is nothing to widen).
        alter_type_in_transaction: ``ALTER TABLE ... ALTER COLUMN ... TYPE`` can run inside a
            transaction block (Redshift refuses it there).
    """

    reads_objects_itself: bool
    requires_s3: bool
    max_identifier_bytes: int
    advisory_locks: bool
    varchar_lengths: bool = True
    alter_type_in_transaction: bool = True


@dataclass(frozen=True)
class CopyJob:
    """One copy step, resolved: what to load, from where, into what, how."""

    label: str
    schema: type[Schema]
    mode: CopyMode
    store: ObjectStore
    source: str
    options: ConvertOptions
    compression: str | None
    max_errors: int
    metadata_prefix: str
    run_id: str
    validate: bool = False
    on_object: Callable[[ObjectInfo], None] | None = None
    # progress within an object: (object, bytes of the chunk read, rows of it), per chunk
    on_chunk: Callable[[ObjectInfo, int, int], None] | None = None
    iam_role: str | None = None
    credentials: Credentials | None = None
    region: str | None = None
    into: sa.Table | None = None  # load here instead of the schema's table (staging)
    # a time series' cursor and the point this run read (a backend that takes the run lock
    # only as the step commits checks that no other run moved it meanwhile)
    cursor: tuple[str, str | None] | None = None
    format: str = "json"  # the objects' format, resolved ("json", "parquet" or "csv")
    csv: CsvOptions = field(default_factory=CsvOptions)

    @property
    def table(self) -> sa.Table:
        """Where the rows go: the schema's table, or the staging table ``into``."""
        return self.into if self.into is not None else self.schema.__table__


@dataclass
class LoadResult:
    """What a backend loaded: one journal entry per object, and the rejects; ``filled``:
    per column, the rows loaded with a value (not NULL), or ``None`` where the warehouse read
    the objects itself; ``shapes``: the rows loaded per key shape (``Batch.shapes``), or
    ``None`` likewise."""

    entries: list[Entry]
    rejects: list[Reject]
    filled: dict[str, int] | None = None
    shapes: dict[KeyShape, int] | None = None

    @property
    def rows_loaded(self) -> int:
        return sum(e.rows_loaded for e in self.entries)


def sqlstate(orig: BaseException | None) -> str:
    """The SQLSTATE of a driver's error: ``pgcode`` (psycopg2), ``sqlstate`` (psycopg 3), or
    the ``C`` field of redshift_connector's error dictionary; ``""`` when it has none."""
    for attribute in ("pgcode", "sqlstate"):
        value = getattr(orig, attribute, None)
        if isinstance(value, str) and value:
            return value
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], dict):
        code = args[0].get("C")
        if isinstance(code, str):
            return code
    return ""


def quote_table(dialect: sa.Dialect, table: sa.Table) -> str:
    """The table's name, quoted for the dialect (with its schema)."""
    return dialect.identifier_preparer.format_table(table)


def staging_table(
    table: sa.Table, run_id: str, *, with_position: bool = False, suffix: str = ""
) -> sa.Table:
    """A temporary table shaped like ``table`` (no constraints), for one step."""
    columns = [sa.Column(c.name, c.type) for c in table.columns]
    if with_position:
        columns += [sa.Column(name, sa.BigInteger) for name in POSITION_COLUMNS]
    return sa.Table(
        staging_name(table, run_id, suffix), sa.MetaData(), *columns, prefixes=["TEMPORARY"]
    )


def staging_name(table: sa.Table, run_id: str, suffix: str = "") -> str:
    """A staging table's name: short whatever the table's (PostgreSQL keeps 63 bytes of a
    name, and would make the staging tables of two partitions one); temporary tables are
    the session's own, so the run and the table suffice to keep them apart."""
    digest = hashlib.sha1(table.name.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"_arbalest_stage_{digest}_{run_id[:8]}{suffix}"


def upsert_from(conn: sa.Connection, table: sa.Table, staging: sa.Table) -> None:
    """Replace ``table``'s rows that share a primary key with ``staging``'s newest rows.

    The newest row for a key is the last one loaded: of the latest object, the last line,
    the last record on that line (``POSITION_COLUMNS``, all three: the order is total).
    """
    keys = [c.name for c in table.primary_key]
    names = [c.name for c in table.columns]
    rank = (
        sa.func.row_number()
        .over(
            partition_by=[staging.c[k] for k in keys],
            order_by=[staging.c[name].desc() for name in POSITION_COLUMNS],
        )
        .label("_arbalest_rank")
    )
    ranked = sa.select(*[staging.c[n] for n in names], rank).subquery("ranked")
    newest = sa.select(*[ranked.c[n] for n in names]).where(ranked.c._arbalest_rank == 1)
    # DELETE ... USING: the form every warehouse here accepts (Redshift refuses many
    # correlated subqueries)
    conn.execute(sa.delete(table).where(*[table.c[k] == staging.c[k] for k in keys]))
    conn.execute(sa.insert(table).from_select(names, newest))


class Backend(ABC):
    """Loads copy steps into one kind of warehouse."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: Take the run lock before the step's transaction begins: for a warehouse whose lock
    #: lives outside the database and whose transactions see a snapshot taken when they
    #: begin (one begun before the lock would miss what the previous holder committed).
    lock_before_transaction: ClassVar[bool] = False

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @abstractmethod
    def lock(
        self, conn: sa.Connection, target: str, timeout: float
    ) -> contextlib.AbstractContextManager[None]:
        """Hold the run lock of ``target``: inside the step's transaction, or before it
        begins when ``lock_before_transaction`` is set.

        Raises:
            ConcurrentRunError: If another run holds it for longer than ``timeout`` seconds.
        """

    @abstractmethod
    def load(self, conn: sa.Connection, job: CopyJob, objects: Sequence[ObjectInfo]) -> LoadResult:
        """Load ``objects`` into the target by ``job.mode``, in ``conn``'s open transaction."""

    def connect(self, timeout: float) -> sa.Connection:
        """Open the run's connection. A warehouse that one process at a time may open
        (a DuckDB file) waits up to ``timeout`` seconds for another process to let go, then
        raises ``ConcurrentRunError``; here, a plain ``engine.connect()``."""
        return self.engine.connect()

    def creation_lock(
        self, conn: sa.Connection, timeout: float, *, validate: bool = False
    ) -> contextlib.AbstractContextManager[None]:
        """Held while a step creates the journal or its table, until the step ends, so that
        runs starting together on a new warehouse take turns (default: none). ``validate``:
        the step's transaction will be rolled back, and the lock may leave nothing behind.
        """
        return contextlib.nullcontext()

    def lock_tables(self, target: str) -> tuple[sa.Table, ...]:
        """Tables the run lock of ``target`` needs (created with the journal, under the
        creation lock; default: none)."""
        return ()

    def check_job(self, job: CopyJob) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Refuse a job this backend cannot run (raises ``ConfigurationError``)."""

    def secrets(self) -> tuple[str, ...]:
        """Strings to keep out of messages (credentials the backend was given)."""
        return ()


class ShortWriteError(Exception):
    """A bulk write's own row count differs from the rows sent (becomes a ``CopyError``)."""


class TransformBackend(Backend):
    """A warehouse fed by Arbalest: objects are read, converted by the shared transform, and
    bulk loaded batch by batch (writing one batch while the next is converted), or, with
    ``streams_batches``, every batch of the step through one statement reading an Arrow
    stream."""

    #: The form the transform hands each batch over in for this warehouse: a ``csv`` or
    #: ``parquet`` file, or an in-memory ``arrow`` table.
    batch_format: ClassVar[str] = "csv"
    #: Whether the step's batches go to ``write_stream`` as one Arrow stream (one statement
    #: for the step) rather than to ``write`` one by one; needs ``batch_format`` ``arrow``.
    streams_batches: ClassVar[bool] = False

    def write_stream(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], stream: Any
    ) -> int:
        """Bulk load every batch of a step from ``stream`` (a ``pyarrow.RecordBatchReader``);
        the rows the warehouse reports it wrote."""
        raise NotImplementedError

    @abstractmethod
    def write(self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], data: Any) -> int:
        """Bulk load one batch (a file path, or an Arrow table) into ``table``'s ``columns``.

        Returns:
            The rows the warehouse reports it wrote (``COPY``'s count, an ``INSERT``'s).
        """

    def load(self, conn: sa.Connection, job: CopyJob, objects: Sequence[ObjectInfo]) -> LoadResult:
        table = job.table
        if job.mode == "replace":
            conn.execute(sa.delete(table))
        if job.mode == "merge":
            staging = staging_table(table, job.run_id, with_position=True)
            conn.execute(CreateTable(staging))
            result = self._load_into(conn, job, objects, staging, with_position=True)
            upsert_from(conn, table, staging)
            conn.execute(DropTable(staging))
            return result
        try:
            return self._load_into(conn, job, objects, table, with_position=False)
        except sa.exc.IntegrityError:
            # only now, the failure path: which record repeats a key (object and line)
            found = duplicates.explain(self, conn, job, objects)
            if found is None:
                raise
            raise CopyError(job.label, found) from None

    def _load_into(
        self,
        conn: sa.Connection,
        job: CopyJob,
        objects: Sequence[ObjectInfo],
        table: sa.Table,
        *,
        with_position: bool,
    ) -> LoadResult:
        columns = [spec.name for spec in job.schema.__fields__]
        if with_position:
            columns += list(POSITION_COLUMNS)
        rows: Counter[int] = Counter()
        rejects: list[Reject] = []
        filled: Counter[str] = Counter({spec.name: 0 for spec in job.schema.__fields__})
        shapes: Counter[KeyShape] = Counter()
        scratch.sweep()  # what killed loads left behind
        tabular = job.format != "json"
        # A streamed write appends with the warehouse's own threads, on this machine's
        # cores: one converting thread fewer leaves it one (as fast, and less memory).
        workers = max(1, min(4, os.cpu_count() or 1) - 1) if self.streams_batches else None
        converter = (
            TabularConverter(job.schema.__fields__, job.options, workers=workers)
            if tabular
            else Converter(job.schema.__fields__, job.options, workers=workers)
        )
        workdir = scratch.make("load")
        try:
            # Left in reverse order, however the load ends (too many rejects, Ctrl-C, a
            # refused write): the converting threads stop first (closing the generator
            # cancels the batches not started and waits for those converting), then the
            # write in progress ends, then the reader.
            with (
                (
                    TabularFeed(
                        job.store,
                        objects,
                        fmt=job.format,
                        specs=job.schema.__fields__,
                        options=job.options,
                        csv=job.csv,
                        compression=job.compression,
                        workdir=workdir,
                        streamed=self.streams_batches,
                    )
                    if tabular
                    else Feed(
                        job.store,
                        objects,
                        compression=job.compression,
                        workdir=workdir,
                        chunk_bytes=reader.CHUNK_BYTES,
                        in_place_bytes=reader.IN_PLACE_BYTES,
                    )
                ) as feed,
                ThreadPoolExecutor(1, thread_name_prefix="arbalest-write") as writer,
                _streaming(self, conn, table, columns, writer) as stream,
                contextlib.closing(
                    converter.run(
                        batches(iter(feed), BATCH_BYTES),
                        workdir,
                        self.batch_format,
                        with_position=with_position,
                    )
                ) as converted,
            ):
                pending: Future[None] | None = None
                for batch in converted:
                    rejects += batch.rejects
                    filled.update(dict(zip(filled, batch.filled, strict=False)))
                    shapes.update(batch.shapes)
                    if len(rejects) > job.max_errors:
                        raise TooManyRejectsError(
                            job.label, rejects[: job.max_errors + 1], job.max_errors
                        )
                    for chunk in batch.chunks:
                        chunk_rows = batch.rows.get(chunk.seq, 0)
                        rows[chunk.obj] += chunk_rows
                        chunk.discard()
                        if job.on_chunk is not None:
                            job.on_chunk(chunk.info, chunk.nbytes, chunk_rows)
                        if chunk.last and job.on_object is not None:
                            job.on_object(chunk.info)
                    if stream is not None:
                        if batch.table is not None:
                            stream.put(batch.table, batch.total_rows)
                            batch.table = None
                        continue
                    if pending is not None:
                        pending.result()
                        pending = None
                    if batch.path is not None or batch.table is not None:
                        pending = writer.submit(self._write_batch, conn, table, columns, batch)
                if pending is not None:
                    pending.result()
                if stream is not None:
                    self._check_written(table, stream.finish(), stream.sent, objects)
        finally:
            try:
                converter.close()
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        rejected = Counter(r.key for r in rejects)
        entries = [
            Entry(info, rows[index], rejected.get(info.key, 0))
            for index, info in enumerate(objects)
        ]
        return LoadResult(entries, rejects, dict(filled), dict(shapes))

    def _write_batch(
        self, conn: sa.Connection, table: sa.Table, columns: Sequence[str], batch: Batch
    ) -> None:
        try:
            written = _driver_errors(
                conn,
                table,
                lambda: self.write(
                    conn, table, columns, batch.table if batch.path is None else batch.path
                ),
            )
        finally:
            batch.table = None
            if batch.path is not None:
                batch.path.unlink(missing_ok=True)
        self._check_written(table, written, batch.total_rows, [c.info for c in batch.chunks])

    @staticmethod
    def _check_written(
        table: sa.Table, written: int, sent: int, objects: Sequence[ObjectInfo]
    ) -> None:
        if written != sent:
            # A load that ends early without an error (data the warehouse reads differently
            # than it was meant) would otherwise be reported and journaled as complete.
            # Shaped as the driver's errors are, it fails the step as a CopyError.
            keys = ", ".join(dict.fromkeys(repr(info.key) for info in objects))
            raise sa.exc.DBAPIError(
                f"bulk load into {table.name}",
                None,
                ShortWriteError(
                    f"the warehouse reports {written} row(s) written into {table.name} for "
                    f"{sent} row(s) sent from {keys}; the step is rolled back"
                ),
            )


@contextlib.contextmanager
def _streaming(
    backend: TransformBackend,
    conn: sa.Connection,
    table: sa.Table,
    columns: Sequence[str],
    writer: ThreadPoolExecutor,
) -> Iterator[BatchStream | None]:
    """The step's batch stream, for a backend that streams them; its write stopped (and
    waited for) however the load ends before ``finish``."""
    if not backend.streams_batches:
        yield None
        return
    stream = BatchStream(
        writer,
        lambda reader: _driver_errors(
            conn, table, lambda: backend.write_stream(conn, table, columns, reader)
        ),
    )
    try:
        yield stream
    finally:
        stream.stop()


def _driver_errors(conn: sa.Connection, table: sa.Table, write: Callable[[], int]) -> int:
    """``write()``, its driver's errors shaped as SQLAlchemy's: the bulk load talks to the
    driver directly, so a refused row is a CopyError and a lost connection is noticed."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        return write()
    except dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        if lost:
            conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            f"bulk load into {table.name}",
            None,
            exc,
            dbapi.Error,
            connection_invalidated=lost,
            dialect=conn.dialect,
        ) from exc
