"""CPU seconds per stage of the vectorised transform on the benchmark data set.

    python -m benchmarks.profile_transform --data DIR [--runs 3] [--files 100]

Runs Transform.convert, finish and export (Arrow and CSV) batch by batch on one private
DuckDB connection with one thread (as each Converter worker has), and prints the median CPU
seconds (time.process_time) of each stage over the runs, scaled per 1M rows. Also times
splitting the lines alone (the source query). Single-threaded, so CPU seconds are the
figures to compare on a shared machine; wall seconds are printed beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections import defaultdict
from pathlib import Path

from arbalest.convert import ConvertOptions
from arbalest.loading.reader import Chunk
from arbalest.loading.transform import Transform, connect_private
from arbalest.stores.base import ObjectInfo
from benchmarks.events import Event

BATCH_FILES = 3  # about 8 MB, as BATCH_BYTES groups chunks of the benchmark's 3.2 MB files


def _chunks(folder: Path, files: int) -> list[Chunk]:
    out = []
    for seq, path in enumerate(sorted(folder.glob("part-*.ndjson"))[:files]):
        size = path.stat().st_size
        info = ObjectInfo(path.name, size, "", dt.datetime.now(dt.UTC))
        out.append(Chunk(seq, info, 1, path, size, False, True, seq=seq))
    return out


def run_once(chunks: list[Chunk], scratch: Path) -> tuple[dict[str, float], dict[str, float], int]:
    con = connect_private(threads=1)
    transform = Transform(Event.__fields__, ConvertOptions(), con)
    cpu: dict[str, float] = defaultdict(float)
    wall: dict[str, float] = defaultdict(float)
    rows = 0

    def timed(stage: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        c, w = time.process_time(), time.perf_counter()
        result = fn(*args, **kwargs)
        cpu[stage] += time.process_time() - c
        wall[stage] += time.perf_counter() - w
        return result

    try:
        for start in range(0, len(chunks), BATCH_FILES):
            group = chunks[start : start + BATCH_FILES]
            timed(
                "split",
                lambda g=group: con.execute(
                    f"SELECT count(*), sum(strlen(l)) FROM ({Transform._source(g)})"
                ).fetchall(),
            )
            batch = timed("convert", transform.convert, group)
            timed("finish", transform.finish, batch, {})
            rows += batch.total_rows
            timed(
                "export arrow",
                transform.export,
                batch,
                scratch / "b.arrow",
                "arrow",
                with_position=False,
            )
            batch.table = None
            timed(
                "export csv", transform.export, batch, scratch / "b.csv", "csv", with_position=False
            )
    finally:
        transform.close()
        con.close()
    return cpu, wall, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/arbalest-profile"))
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    chunks = _chunks(args.data, args.files)
    cpus: dict[str, list[float]] = defaultdict(list)
    walls: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.runs):
        cpu, wall, rows = run_once(chunks, args.scratch)
        for stage in cpu:
            cpus[stage].append(cpu[stage] * 1_000_000 / rows)
            walls[stage].append(wall[stage] * 1_000_000 / rows)
    print(f"rows per run: {rows}; CPU (wall) seconds per 1M rows, median of {args.runs}")
    for stage in cpus:
        runs = " ".join(f"{c:.3f}" for c in cpus[stage])
        print(
            f"{stage:>14}: {statistics.median(cpus[stage]):.3f} "
            f"({statistics.median(walls[stage]):.3f})   runs: {runs}"
        )
    total = [sum(cpus[s][i] for s in ("convert", "finish")) for i in range(args.runs)]
    print(f"convert+finish: {statistics.median(total):.3f}")


if __name__ == "__main__":
    main()
