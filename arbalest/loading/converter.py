"""Converting batches several at a time: one private DuckDB connection per worker thread,
batches handed back finished and exported, in order (``Converter``), and chunks grouped into
batches (``batches``).

The conversion itself is ``transform.Transform``'s.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import ClassVar

from arbalest import convert
from arbalest.loading.reader import Chunk
from arbalest.loading.records import Carry
from arbalest.loading.transform import Batch, Transform, connect_private
from arbalest.schema._build import ColumnSpec

__all__ = ["Converter", "batches"]


class Converter:
    """Converts batches with several private DuckDB connections at once, in order.

    Each worker converts a batch in its own thread. A batch that starts with the start of an
    object is also finished (slow path, counts, rejects) and exported by its worker; one that
    continues an object from the previous batch is finished here, in order, since a record
    may continue from one chunk into the next.

    Args:
        specs: The schema's columns.
        options: The COPY options.
        workers: Connections converting at once (default: the number of CPUs, at most 4).
    """

    #: What each worker converts with (``TabularTransform`` for Parquet and CSV).
    transform_type: ClassVar[type[Transform]] = Transform

    def __init__(
        self,
        specs: Sequence[ColumnSpec],
        options: convert.ConvertOptions,
        *,
        workers: int | None = None,
    ) -> None:
        count = workers or min(4, max(1, os.cpu_count() or 1))
        self._transforms = [
            self.transform_type(specs, options, connect_private(threads=1)) for _ in range(count)
        ]
        self._carries: dict[int, Carry] = {}
        self._in_flight: deque[tuple[Future[Batch], Transform]] = deque()

    def close(self) -> None:
        """Stop the workers, then drop their tables and close their connections.

        Batches not started are cancelled and those converting are waited for: a connection
        closed under a running query would fail ("connection is busy") in place of whatever
        ended the load, and a worker still running could write into a removed folder.
        """
        for future, _ in self._in_flight:
            future.cancel()
        wait([future for future, _ in self._in_flight])
        self._in_flight.clear()
        for transform in self._transforms:
            transform.close()
            transform.con.close()

    def run(
        self,
        batches: Iterator[list[Chunk]],
        workdir: Path,
        fmt: str,
        *,
        with_position: bool = False,
    ) -> Generator[Batch, None, None]:
        """Yield finished, exported batches in order (``Batch.path`` or ``Batch.table`` holds
        the rows). A caller that stops early closes the generator: that stops the workers."""
        free = list(self._transforms)
        pending = self._in_flight  # also seen by close(), should this generator be left open
        with ThreadPoolExecutor(len(free), thread_name_prefix="arbalest-convert") as pool:
            try:
                for chunks in batches:
                    if not free:
                        yield self._complete(pending.popleft(), free, workdir, fmt, with_position)
                    transform = free.pop()
                    work = pool.submit(self._work, transform, chunks, workdir, fmt, with_position)
                    pending.append((work, transform))
                while pending:
                    yield self._complete(pending.popleft(), free, workdir, fmt, with_position)
            finally:
                # Stopped early (a failure here or in the caller, or the caller closed this
                # generator): cancel what has not started, wait for what is converting.
                for future, _ in pending:
                    future.cancel()
                wait([future for future, _ in pending])
                pending.clear()

    def _complete(
        self,
        item: tuple[Future[Batch], Transform],
        free: list[Transform],
        workdir: Path,
        fmt: str,
        with_position: bool,
    ) -> Batch:
        future, transform = item
        try:
            batch = future.result()
            if batch.finished:
                # its first chunk starts an object, so no record was open before it
                self._carries = batch.carries
            else:
                transform.finish(batch, self._carries)
                self._export(transform, batch, workdir, fmt, with_position)
        finally:
            free.append(transform)
        return batch

    @staticmethod
    def _work(
        transform: Transform, chunks: list[Chunk], workdir: Path, fmt: str, with_position: bool
    ) -> Batch:
        batch = transform.convert(chunks)
        if batch.independent:
            transform.finish(batch, batch.carries)
            Converter._export(transform, batch, workdir, fmt, with_position)
        return batch

    @staticmethod
    def _export(
        transform: Transform, batch: Batch, workdir: Path, fmt: str, with_position: bool
    ) -> None:
        path = workdir / f"batch-{batch.chunks[0].seq}.{fmt}"
        transform.export(batch, path, fmt, with_position=with_position)


def batches(chunks: Iterator[Chunk], max_bytes: int) -> Iterator[list[Chunk]]:
    """Group chunks into batches of about ``max_bytes`` (each chunk's ``batch_bytes``)."""
    batch: list[Chunk] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += chunk.batch_bytes
        if size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
