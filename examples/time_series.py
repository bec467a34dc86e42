"""A time series partitioned by day and hour, imported partition by partition.

    python examples/time_series.py [FOLDER]

Writes clicks under FOLDER/lake/clicks/YYYY-MM-DD/HH/ (and one day without hour folders),
then imports the partitions from 2026-11-24/22 to 2026-11-26 into FOLDER/warehouse.duckdb.
Each run imports only the partitions after the cursor; rows from the first new partition on
are replaced in one transaction, with the cursor.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import sqlalchemy as sa

from arbalest import Pipeline, RunResult, Schema, SortedSources, String, Timestamp


class Click(Schema):
    __tablename__ = "clicks"

    id = String(36)
    page = String(200)
    clicked_at = Timestamp(key="at")


PARTITIONS = {
    "2026-11-24/21": 3,
    "2026-11-24/22": 4,
    "2026-11-24/23": 5,
    "2026-11-25/00": 6,
    "2026-11-25/01": 7,
    "2026-11-26": 8,  # a day written whole, without hour folders
}


def write_sample_lake(lake: Path) -> None:
    for partition, count in PARTITIONS.items():
        day, _, hour = partition.partition("/")
        folder = lake / "clicks" / partition
        folder.mkdir(parents=True, exist_ok=True)
        records = [
            {"id": f"{partition}-{i}", "page": f"/p/{i}", "at": f"{day}T{hour or '12'}:{i:02d}:00"}
            for i in range(count)
        ]
        (folder / "clicks.json").write_text("".join(json.dumps(r) + "\n" for r in records))


def build(root: Path) -> tuple[Pipeline, SortedSources]:
    engine = sa.create_engine(f"duckdb:///{root / 'warehouse.duckdb'}")
    sources = SortedSources(
        root / "lake", "clicks", start="2026-11-24/22", end="2026-11-26", warehouse=engine
    )
    return Pipeline(engine).time_series(Click, sources, series_column="clicked_at"), sources


def main(folder: str = "arbalest-time-series") -> RunResult:
    root = Path(folder)
    if not (root / "lake").exists():
        write_sample_lake(root / "lake")
    pipeline, sources = build(root)
    print("partitions:", ", ".join(sources))
    result = pipeline.run()
    print(result)
    print("cursor:", sources.committed())
    pipeline.engine.dispose()
    return result


if __name__ == "__main__":
    main(*sys.argv[1:2])
