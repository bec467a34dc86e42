"""Run by the crash-point tests in a subprocess: one pipeline, killed (SIGKILL, by itself) at
a named boundary of the run.

    python crash_at.py WAREHOUSE_URL LAKE SCENARIO POINT

SCENARIO is ``incremental`` (a copy, then a SQL step), ``replace``, ``merge``,
``time-series`` or ``parquet`` (an incremental copy of Parquet objects). POINT is one of
``POINTS`` or ``none`` (run to the end). The hooks wrap Arbalest's own functions and
SQLAlchemy events from the outside; nothing in the library knows about them. Batches are
made tiny so that every load has several of them.

Exit status: 0 when the run finished, -9 (killed) when the point was reached. A point that is
never reached lets the run finish, and the test fails on the exit status.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from arbalest import Integer, Pipeline, SortedSources, String, Timestamp, journal
from arbalest.backends import _stream
from arbalest.backends import base as backend_base
from arbalest.loading import reader, tabular_feed
from arbalest.stores.local import LocalStore
from tests.fixtures.schemas import fresh_base


class Record(fresh_base()):  # type: ignore[misc]
    __tablename__ = "records"
    id = String(40, primary_key=True)
    n = Integer()
    t = Timestamp()


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class State:
    """What the run has done so far, as the hooks see it."""

    batches_written = 0
    opened = 0
    partitions = 0


def _after(wrapped: Callable[..., Any], after: Callable[[], None]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        after()
        return result

    return wrapper


def _before(wrapped: Callable[..., Any], before: Callable[[], None]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before()
        return wrapped(*args, **kwargs)

    return wrapper


def after_listing() -> None:
    """Once the store's listing has been read to its end."""
    original = LocalStore.list

    def listing(self: LocalStore, *args: Any, **kwargs: Any) -> Any:
        yield from original(self, *args, **kwargs)
        die()

    LocalStore.list = listing  # type: ignore[method-assign]


def mid_read() -> None:
    """While objects are being read: the third object's first chunk read, the rest not."""
    original = reader.spool

    def spooling(*args: Any, **kwargs: Any) -> Any:
        State.opened += 1
        number = State.opened
        for chunk in original(*args, **kwargs):
            yield chunk
            if number == 3:
                die()

    setattr(reader, "spool", spooling)  # noqa: B010


def mid_copy() -> None:
    """After the first batch is in the table (uncommitted), before the next one; where the
    batches are one stream (DuckDB), once the INSERT has read the stream's first part."""

    def counted() -> None:
        State.batches_written += 1
        if State.batches_written == 2:
            die()

    backend_base.TransformBackend._write_batch = _before(  # type: ignore[method-assign]
        backend_base.TransformBackend._write_batch, counted
    )
    original = _stream.BatchStream._batches

    def streamed(self: _stream.BatchStream) -> Any:
        for number, part in enumerate(original(self)):
            if number == 1:
                die()
            yield part

    _stream.BatchStream._batches = streamed  # type: ignore[method-assign]


def _count_batches() -> None:
    def counted() -> None:
        State.batches_written += 1

    backend_base.TransformBackend._write_batch = _after(  # type: ignore[method-assign]
        backend_base.TransformBackend._write_batch, counted
    )
    finish = _stream.BatchStream.finish

    def finished(self: _stream.BatchStream) -> int:
        written = finish(self)
        if written:  # a stream that wrote rows: the step loaded some
            counted()
        return written

    _stream.BatchStream.finish = finished  # type: ignore[method-assign]


def before_journal() -> None:
    """With every row of the step loaded, before the journal records its objects."""
    journal.record = _before(journal.record, die)


def before_commit(engine: sa.Engine) -> None:
    """At the commit of the step that loaded rows (the COMMIT not yet sent)."""
    _count_batches()

    @sa.event.listens_for(engine, "commit")
    def committing(conn: sa.Connection) -> None:
        if State.batches_written:
            die()


def after_commit(engine: sa.Engine) -> None:
    """Right after the commit of the step that loaded rows (before anything else)."""
    _count_batches()
    original = engine.dialect.do_commit

    def committed(dbapi_connection: Any) -> None:
        original(dbapi_connection)
        if State.batches_written:
            die()

    engine.dialect.do_commit = committed  # type: ignore[method-assign]


def _after_statement(engine: sa.Engine, matches: Callable[[str], bool]) -> None:
    @sa.event.listens_for(engine, "after_cursor_execute")
    def executed(*args: Any) -> None:
        statement = " ".join(str(args[2]).split()).upper()
        if matches(statement):
            die()


def replace_swap(engine: sa.Engine) -> None:
    """During a replace: the old rows deleted in the step's transaction, the new not loaded."""
    _after_statement(engine, lambda s: s.startswith("DELETE FROM RECORDS") and "WHERE" not in s)


def merge_upsert(engine: sa.Engine) -> None:
    """During a merge: the target's rows with a new version deleted, the new ones not in."""
    _after_statement(engine, lambda s: s.startswith("DELETE FROM RECORDS") and "_ARBALEST" in s)


def sql_step(engine: sa.Engine) -> None:
    """Inside the SQL step: its first statement done, the second not."""
    _after_statement(engine, lambda s: s.startswith("DELETE FROM TOTALS"))


def time_series_partition() -> None:
    """During a time-series import: the first partition staged, the second about to be
    staged (the journal is written once, for every partition, after the last)."""
    from arbalest.pipeline import copying

    def counted() -> None:
        State.partitions += 1
        if State.partitions == 2:
            die()

    copying.staging_table = _before(copying.staging_table, counted)  # type: ignore[attr-defined]  # its own import


def time_series_cursor() -> None:
    """During a time-series import: everything staged and swapped, the cursor not moved."""
    journal.cursor_commit = _before(journal.cursor_commit, die)


POINTS: dict[str, Callable[..., None]] = {
    "after-listing": after_listing,
    "mid-read": mid_read,
    "mid-copy": mid_copy,
    "before-journal": before_journal,
    "before-commit": before_commit,
    "after-commit": after_commit,
    "replace-swap": replace_swap,
    "merge-upsert": merge_upsert,
    "sql-step": sql_step,
    "time-series-partition": time_series_partition,
    "time-series-cursor": time_series_cursor,
}
NEEDS_ENGINE = {"before-commit", "after-commit", "replace-swap", "merge-upsert", "sql-step"}


def pipeline_for(engine: sa.Engine, lake: str, scenario: str) -> Pipeline:
    pipeline = Pipeline(engine, store=lake)
    if scenario == "time-series":
        sources = SortedSources(lake, "series", warehouse=engine)
        return pipeline.time_series(Record, sources, series_column="t")
    mode = "incremental" if scenario == "parquet" else scenario
    pipeline = pipeline.copy(Record, "events", mode=mode)
    if scenario == "incremental":
        pipeline = pipeline.sql(
            "CREATE TABLE IF NOT EXISTS totals (n BIGINT)",
            "DELETE FROM totals",
            "INSERT INTO totals SELECT count(*) FROM records",
        )
    return pipeline


def main() -> None:
    url, lake, scenario, point = sys.argv[1:]
    # several chunks and batches per load (the constants are Final for the library's code)
    setattr(backend_base, "BATCH_BYTES", 16 * 1024)  # noqa: B010
    setattr(reader, "CHUNK_BYTES", 8 * 1024)  # noqa: B010
    setattr(reader, "IN_PLACE_BYTES", 8 * 1024)  # noqa: B010
    setattr(tabular_feed, "PARQUET_CHUNK_BYTES", 1)  # noqa: B010  (a chunk per row group)
    if scenario == "parquet":
        setattr(backend_base, "BATCH_BYTES", 1)  # noqa: B010  (a batch per chunk)
    engine = sa.create_engine(url)
    if point != "none":
        hook = POINTS[point]
        hook(engine) if point in NEEDS_ENGINE else hook()
    pipeline_for(engine, lake, scenario).run()
    print("done", flush=True)


if __name__ == "__main__":
    main()
