"""Quick start: JSON events in a folder, loaded into DuckDB, then summarised with SQL.

    python examples/quickstart.py [FOLDER]

Writes a day of sample events (gzip and plain newline-delimited JSON, a few of them broken on
purpose) under FOLDER/lake (default ./arbalest-demo), loads them into FOLDER/warehouse.duckdb
with an incremental copy that tolerates 10 rejected records, builds a daily summary with a
SQL step, and prints what happened. Run it twice: the second run finds nothing new.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from arbalest import (
    BigInt,
    Boolean,
    Decimal,
    Integer,
    Nested,
    Pipeline,
    Schema,
    String,
    TimestampTZ,
)
from arbalest.pipeline.result import StepResult
from arbalest.stores import ObjectInfo


class Event(Schema):
    """One event, as the application writes it to the lake."""

    __tablename__ = "events"

    id = String(36, primary_key=True)
    some_number = BigInt(key="someNumber")
    amount = Decimal(12, 2)
    created_at = TimestampTZ(key="createdAt")
    category = String(32)
    active = Boolean()

    class child(Nested):
        some_boolean = Boolean(key="someBoolean")

        class depth(Nested):
            level = Integer()


CATEGORIES = ["books", "garden", "grocery", "toys", "sports"]


def write_sample_lake(lake: Path, *, parts: int = 8, per_part: int = 2_500, seed: int = 7) -> None:
    """A day of events in ``parts`` objects; a few records are broken on purpose."""
    rng = random.Random(seed)
    folder = lake / "events" / "2026-11-25"
    folder.mkdir(parents=True, exist_ok=True)
    for part in range(parts):
        lines = []
        for i in range(per_part):
            hour, minute = divmod(rng.randrange(24 * 60), 60)
            record: dict[str, object] = {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "someNumber": rng.randrange(1_000_000),
                "amount": str(rng.randrange(100_000) / 100),
                "createdAt": f"2026-11-25T{hour:02d}:{minute:02d}:00Z",
                "category": rng.choice(CATEGORIES),
                "active": rng.choice(["true", "false", "yes", "no"]),
                "child": {"someBoolean": rng.random() < 0.3, "depth": {"level": rng.randrange(10)}},
            }
            if part == 3 and i in (10, 20):
                record["someNumber"] = "not a number"  # rejected: 1207 invalid digit
            lines.append(json.dumps(record))
        if part == 5:
            lines.insert(100, '{"id": "broken", "amount": ')  # rejected: malformed JSON
        data = ("\n".join(lines) + "\n").encode()
        name = f"part-{part:03d}.ndjson"
        if part % 2:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


class BarProgress:
    """Draws a progress bar per copy step."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, object] = {}

    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        self.tasks[label] = self.progress.add_task(label, total=objects)

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        self.progress.advance(self.tasks[label])  # type: ignore[arg-type]

    def step_finished(self, result: StepResult) -> None:
        pass


def main(folder: str = "arbalest-demo") -> None:
    root = Path(folder)
    lake = root / "lake"
    if not (lake / "events").exists():
        write_sample_lake(lake)
    console = Console()
    pipeline = (
        Pipeline(f"duckdb:///{root / 'warehouse.duckdb'}", store=lake)
        .copy(Event, source="events", mode="incremental", max_errors=10)
        .sql(
            "CREATE OR REPLACE TABLE daily AS "
            "SELECT CAST(created_at AS DATE) AS day, category, count(*) AS events, "
            "sum(amount) AS amount FROM events WHERE amount >= :minimum GROUP BY 1, 2",
            minimum=0,
        )
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        result = pipeline.run(progress=BarProgress(bar))
    console.print(str(result), soft_wrap=True, highlight=False)
    for reject in result.steps[0].rejects:
        console.print(f"rejected: {reject}", soft_wrap=True, highlight=False)
    table = Table(title="daily (from the SQL step)")
    for name in ("day", "category", "events", "amount"):
        table.add_column(name, justify="right" if name in ("events", "amount") else "left")
    with pipeline.engine.connect() as conn:
        for row in conn.execute(sa.text("SELECT * FROM daily ORDER BY day, category")):
            table.add_row(*(str(v) for v in row))
    console.print(table)
    pipeline.engine.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:2])
