"""A step's batches as one Arrow stream, written by one statement (DuckDB's ``INSERT``).

One ``INSERT ... SELECT * FROM <stream>`` for the whole step lets DuckDB append with all its
threads (with ``preserve_insertion_order`` off), where an ``INSERT`` per batch appends on one:
the write, the longest part of a DuckDB load, takes about half the time. The batches are
handed over through a small queue as they are converted, so memory holds at most
``DEPTH`` of them waiting, as the writes one by one did.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

__all__ = ["DEPTH", "BatchStream", "StreamStopped"]

#: Converted batches waiting for the writer, at most (one more is being written; more
#: waiting only held more memory: the writer is never short of rows with one).
DEPTH: Final = 1
_WAIT: Final = 0.1  # seconds between looks at the writer while the queue is full

_END: Final = object()
_STOP: Final = object()


class StreamStopped(Exception):
    """The load stopped before its last batch: the statement reading the stream fails."""


class BatchStream:
    """Arrow tables in, one write of them all out, in a thread of ``pool``.

    ``write`` receives a ``pyarrow.RecordBatchReader`` over every table ``put`` (started at
    the first) and returns the rows it wrote. ``finish()`` ends the stream and returns that
    count; ``stop()`` makes the write fail and waits for it, whatever state it is in.
    """

    def __init__(self, pool: ThreadPoolExecutor, write: Callable[[Any], int]) -> None:
        self._pool = pool
        self._write = write
        self._queue: queue.Queue[Any] = queue.Queue(DEPTH)
        self._future: Future[int] | None = None
        self._schema: Any = None
        self.sent = 0  # rows handed over, as counted

    def put(self, table: Any, rows: int) -> None:
        """Hand over one batch's rows (an Arrow table), ``rows`` of them as the conversion
        counted them (what ``sent`` adds up, for the check against what the write reports);
        raises the write's error if it has failed meanwhile."""
        import pyarrow as pa

        if self._future is None:
            self._schema = table.schema
            reader = pa.RecordBatchReader.from_batches(self._schema, self._batches())
            self._future = self._pool.submit(self._write, reader)
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        self._hand(table)
        self.sent += rows

    def finish(self) -> int:
        """End the stream; the rows the write reports (0 if no batch was put)."""
        if self._future is None:
            return 0
        self._hand(_END)
        return self._future.result()

    def stop(self) -> None:
        """Make the write fail (its error is not raised) and wait until it has ended."""
        future, self._future = self._future, None
        if future is None:
            return
        while not future.done():
            try:
                while True:  # what waits is not needed any more
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self._queue.put(_STOP, timeout=_WAIT)
            except queue.Full:
                continue
            try:
                future.exception(timeout=_WAIT * 10)
            except TimeoutError:
                continue

    def _hand(self, item: Any) -> None:
        future = self._future
        assert future is not None
        while True:
            if future.done():
                future.result()  # the write's error
                raise RuntimeError("the write ended before the last batch")  # pragma: no cover
            try:
                self._queue.put(item, timeout=_WAIT)
                return
            except queue.Full:
                continue

    def _batches(self) -> Iterator[Any]:
        # runs in the writing thread, called by the statement as it reads
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if item is _STOP:
                raise StreamStopped("the load stopped before its last batch")
            yield from item.to_batches()
            del item
