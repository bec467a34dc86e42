"""CPU seconds per stage of Parquet and CSV loads on the benchmark data set's copies.

    python -m benchmarks.profile_tabular --data DIR [--format csv] [--runs 3] [--files 100]

``DIR`` is a data set with its Parquet and CSV copies (``benchmarks.events.write_formats``).
Reads the objects as ``TabularFeed`` does, but in this thread (no read-ahead workers), then
converts them with ``TabularTransform`` on one private DuckDB connection with one thread (as
each converter worker has), batch by batch, and exports each batch in the warehouses' bulk
forms (Arrow for DuckDB, CSV for PostgreSQL). Prints the median CPU seconds
(``time.process_time``) of each stage over the runs, per 1M rows; wall seconds beside them.
Single-threaded, so CPU seconds are the figures to compare on a shared machine.

Stages, CSV: ``read+split`` (``CsvReader``: decoding, finding quotes, splitting lines into
fields in Python or with Arrow's CSV reader (``split``), the null string), ``chunk files``
(``write_chunk``: the chunk's Parquet file written, for a chunk the lane leaves), ``take``
(the rest of reading: the header, field counts, collecting rows, quoted records put in their
places), ``csv lane`` (the CSV lane converting a chunk in Arrow, in a load the converting
thread's, here right after reading it); both formats: ``source``
(DuckDB reading the batch's Parquet or chunk files into a table, no conversion; CSV: the
chunks the lane left), ``convert``
(the Parquet lane where it takes a chunk, else the whole conversion query, that reading
included), ``finish``, ``export arrow``, ``export
csv``. With ``--by-field``, also each field's conversion alone (one field's query over every
batch, less the same query converting no field).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from arbalest import convert
from arbalest.convert import ConvertOptions
from arbalest.loading import csv_feed, tabular
from arbalest.loading.csv_reader import CsvReader
from arbalest.loading.formats import CsvOptions
from arbalest.loading.parquet import parquet_columns, parquet_metadata, quoted_name
from arbalest.loading.tabular import TableChunk, TabularTransform
from arbalest.loading.tabular_feed import TabularFeed
from arbalest.loading.transform import connect_private
from arbalest.stores.base import ObjectInfo
from arbalest.stores.local import LocalStore
from benchmarks.events import Event, parts

BATCH_FILES = 2  # about 8 MB of CSV, as BATCH_BYTES groups chunks


class Stages:
    """CPU and wall seconds per stage; ``wrap`` times every call of a function."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self._depth = 0

    def time(self, stage: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.cpu[stage] += time.process_time() - cpu
            self.wall[stage] += time.perf_counter() - wall

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            return self.time(stage, fn, *args, **kwargs)

        return timed

    def wrap_generator(
        self, stage: str, fn: Callable[..., Iterator[Any]]
    ) -> Callable[..., Iterator[Any]]:
        """Time each step of a generator (its own work between the items it yields)."""

        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            items = fn(*args, **kwargs)
            while True:
                try:
                    item = self.time(stage, next, items)
                except StopIteration:
                    return
                yield item

        return timed


def _chunks(feed: TabularFeed, fmt: str, files: list[Path], stages: Stages) -> list[TableChunk]:
    """Every object's chunks, read in this thread, numbered as the feed numbers them."""
    out: list[TableChunk] = []
    for index, path in enumerate(files):
        info = ObjectInfo(path.name, path.stat().st_size, "", dt.datetime.now(dt.UTC))
        files_cpu, files_wall = stages.cpu["chunk files"], stages.wall["chunk files"]
        read = stages.time("read", list, feed._chunks(index, info))
        # (the chunk files written while reading: without the lane)
        stages.cpu["read files"] += stages.cpu["chunk files"] - files_cpu
        stages.wall["read files"] += stages.wall["chunk files"] - files_wall
        for chunk in read:
            assert isinstance(chunk, TableChunk)
            chunk.seq = len(out)
            if fmt == "csv" and chunk.table is not None and chunk.lane is not None:
                # the CSV lane now, so that the stages below see what a load's converting
                # thread sees: its rows, or (none) the chunk file it wrote for the query
                rows = stages.time("csv lane", chunk.lane, chunk.table, chunk.seq)
                chunk.table, chunk.lane = rows, (None if rows is None else _taken)
            out.append(chunk)
    return out


def _taken(rows: pa.Table, seq: int) -> pa.Table:
    """A chunk's rows the CSV lane converted already (``_chunks``)."""
    return rows


def _source(chunk: TableChunk, fmt: str, columns: str = "*") -> str:
    """The chunk's rows as DuckDB reads them, unconverted."""
    if fmt == "csv":
        return (
            f"SELECT {chunk.seq} AS _arb_chunk, line AS _arb_line, {columns} "
            f"FROM read_parquet('{chunk.path}')"
        )
    return (
        f"SELECT {chunk.seq} AS _arb_chunk, file_row_number + 1 AS _arb_line, {columns} "
        f"FROM read_parquet('{chunk.path}', file_row_number = true)"
    )


def _field_query(chunk: TableChunk, fmt: str, index: int | None) -> str:
    """The conversion query of one field (``None``: of none) over the chunk."""
    specs = list(Event.__fields__)
    if index is None:
        return f"SELECT _arb_chunk, _arb_line FROM ({_source(chunk, fmt, '1 AS one')})"
    spec = specs[index]
    if fmt == "csv":
        rule = spec.field.rule
        column = f"c{index + 1}"
        expr = (
            column
            if isinstance(rule, convert.VarcharRule | convert.CharRule)
            else f"CASE WHEN trim({column}, ' \t') = '' THEN NULL ELSE {column} END"
        )
        text = tabular._text_conversion(rule, ConvertOptions())
        source = _source(chunk, fmt, column)
        return tabular._conversion_query([spec], source, [expr], [text], [[]])
    schema = parquet_metadata(chunk.path, chunk.info.key).schema.to_arrow_schema()
    where, conversion = parquet_columns([spec], schema, chunk.info.key)[0]
    assert where is not None
    assert conversion is not None
    source = _source(chunk, fmt, quoted_name(str(spec.path[0])))
    return tabular._conversion_query([spec], source, [where.expr], [conversion], [where.lists])


def by_field(chunks: list[TableChunk], fmt: str, stages: Stages) -> None:
    """Each field's conversion alone, over every batch, less converting none."""
    con = connect_private(threads=1)
    try:
        for index in [None, *range(len(Event.__fields__))]:
            name = "no field" if index is None else Event.__fields__[index].qualname
            for start in range(0, len(chunks), BATCH_FILES):
                group = chunks[start : start + BATCH_FILES]
                query = " UNION ALL ".join(f"({_field_query(c, fmt, index)})" for c in group)
                stages.time(
                    f"field {name}", con.execute, f"CREATE OR REPLACE TEMP TABLE f AS {query}"
                )
    finally:
        con.close()
    base_cpu, base_wall = stages.cpu.pop("field no field"), stages.wall.pop("field no field")
    for stage in [s for s in stages.cpu if s.startswith("field ")]:
        stages.cpu[stage] -= base_cpu
        stages.wall[stage] -= base_wall


def run_once(folder: Path, fmt: str, files: int, fields: bool = False) -> tuple[Stages, int]:
    stages = Stages()
    saved = (CsvReader.items, CsvReader.rows_of, CsvReader.split, csv_feed.write_chunk)
    CsvReader.items = stages.wrap_generator("read+split", CsvReader.items)  # type: ignore[method-assign]
    CsvReader.rows_of = stages.wrap("read+split", CsvReader.rows_of)  # type: ignore[method-assign]
    CsvReader.split = stages.wrap("read+split", CsvReader.split)  # type: ignore[method-assign]
    csv_feed.write_chunk = stages.wrap("chunk files", csv_feed.write_chunk)
    rows = 0
    with tempfile.TemporaryDirectory(prefix="arbalest-profile-") as scratch:
        work = Path(scratch)
        feed = TabularFeed(
            LocalStore(folder),
            [],
            fmt=fmt,
            specs=Event.__fields__,
            options=ConvertOptions(),
            csv=CsvOptions(),
            compression=None,
            workdir=work,
            workers=1,
        )
        try:
            chunks = _chunks(feed, fmt, parts(folder.parent, fmt)[:files], stages)
        finally:
            (CsvReader.items, CsvReader.rows_of, CsvReader.split, csv_feed.write_chunk) = (  # type: ignore[method-assign]
                saved
            )
            feed.close()
        if fmt == "csv":  # what reading did besides the reader and the chunk files
            stages.cpu["take"] = stages.cpu.pop("read") - (
                stages.cpu["read+split"] + stages.cpu.pop("read files")
            )
            stages.wall["take"] = stages.wall.pop("read") - (
                stages.wall["read+split"] + stages.wall.pop("read files")
            )
        # the chunks with a file DuckDB reads (CSV: those the lane left)
        filed = [c for c in chunks if fmt == "parquet" or c.table is None]
        con = connect_private(threads=1)
        transform = TabularTransform(Event.__fields__, ConvertOptions(), con)
        try:
            for start in range(0, len(chunks), BATCH_FILES):
                group = chunks[start : start + BATCH_FILES]
                raw = " UNION ALL ".join(f"({_source(c, fmt)})" for c in group if c in filed)
                if raw:
                    stages.time("source", con.execute, f"CREATE OR REPLACE TEMP TABLE s AS {raw}")
                tables = [c.table for c in group]  # let go by converting; kept for --by-field
                batch = stages.time("convert", transform.convert, group)
                for chunk, table in zip(group, tables, strict=True):
                    chunk.table = table
                stages.time("finish", transform.finish, batch, {})
                rows += batch.total_rows
                stages.time(
                    "export arrow",
                    transform.export,
                    batch,
                    work / "b.arrow",
                    "arrow",
                    with_position=False,
                )
                batch.table = None
                stages.time(
                    "export csv",
                    transform.export,
                    batch,
                    work / "b.csv",
                    "csv",
                    with_position=False,
                )
        finally:
            transform.close()
            con.close()
        if fields and filed:
            by_field(filed, fmt, stages)
    return stages, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--by-field", action="store_true", help="each field's conversion alone")
    args = parser.parse_args()
    folder = args.data / args.format
    cpus: dict[str, list[float]] = defaultdict(list)
    walls: dict[str, list[float]] = defaultdict(list)
    rows = 0
    for _ in range(args.runs):
        stages, rows = run_once(folder, args.format, args.files, args.by_field)
        for stage in stages.cpu:
            cpus[stage].append(stages.cpu[stage] * 1_000_000 / rows)
            walls[stage].append(stages.wall[stage] * 1_000_000 / rows)
    print(
        f"{args.format}: rows per run: {rows}; CPU (wall) seconds per 1M rows, "
        f"median of {args.runs}"
    )
    for stage in cpus:
        runs = " ".join(f"{c:.3f}" for c in cpus[stage])
        print(
            f"{stage:>14}: {statistics.median(cpus[stage]):.3f} "
            f"({statistics.median(walls[stage]):.3f})   runs: {runs}"
        )
    main = [s for s in cpus if not s.startswith(("export", "field ")) and s != "source"]
    total = [sum(cpus[s][i] for s in main) for i in range(args.runs)]
    print(f"reading to converted rows: {statistics.median(total):.3f}")


if __name__ == "__main__":
    main()
