"""The benchmark data set: newline-delimited JSON events, their Arbalest schema and checksums.

Each event has 11 top-level keys and 13 leaf values: a UUID string, integers, a two-decimal
amount, an ISO 8601 UTC timestamp with milliseconds, a short text (about 2% with commas,
quotes, backslashes, tabs, newlines, non-ASCII letters or emoji), booleans, a category, a
double, a nested ``child.depth.level`` and an ``optionalCode`` absent from about 20%.

The data is deterministic for a given (N, files, seed). ``manifest.json`` beside the parts
holds aggregates that every load is checked against; a data set made elsewhere in the same
layout (``part-*.ndjson`` plus a ``manifest.json`` with an ``expected`` block) can be reused
with ``--data``.

``write_formats`` adds Parquet and CSV copies of the same records beside the parts, one object
per part (``parquet/part-*.parquet``, ``csv/part-*.csv``), made by DuckDB from the JSON with
the floors' column types, so every format holds the same rows and the same aggregates.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import arbalest
from arbalest import BigInt, Boolean, Decimal, Double, Integer, Nested, String, TimestampTZ

SEED = 20261125
FILES = 100

_WORDS = [
    "amber",
    "birch",
    "cedar",
    "dune",
    "ember",
    "fjord",
    "grove",
    "heath",
    "inlet",
    "jade",
    "kelp",
    "larch",
    "moss",
    "nook",
    "oak",
    "pine",
    "quartz",
    "reed",
    "sage",
    "thorn",
    "umber",
    "vale",
    "willow",
    "yarrow",
    "zinc",
    "order",
    "refund",
    "invoice",
    "account",
    "update",
]
_AWKWARD = [
    "a, comma",
    'with "quotes"',
    "back\\slash",
    "a\ttab",
    "two\nlines",
    "naïve façade",
    "東京の天気",
    "rocket \U0001f680",
]
_CATEGORIES = ["books", "electronics", "garden", "grocery", "toys", "sports", "health", "auto"]
_NAMES = ["root", "leaf", "node", "branch", "stem", "bud", "twig", "trunk"]
_START = datetime(2026, 1, 1, tzinfo=UTC)
_YEAR_MS = 365 * 86_400_000


class _Base(arbalest.Schema):
    __abstract__ = True
    metadata = sa.MetaData()


class Event(_Base):
    """The events table: every conversion rule of its 13 columns applies on every load."""

    __tablename__ = "events"

    id = String(36)
    some_number = BigInt(key="someNumber")
    amount = Decimal(12, 2)
    created_at = TimestampTZ(key="createdAt")
    description = String(65535)
    active = Boolean()
    category = String(256)
    user_id = BigInt(key="userId")
    score = Double()
    optional_code = String(256, key="optionalCode")

    class child(Nested):
        some_boolean = Boolean(key="someBoolean")
        name = String(256)

        class depth(Nested):
            level = Integer()


#: (column, PostgreSQL type, DuckDB type): the floors' tables, the same as Arbalest creates.
COLUMNS: list[tuple[str, str, str]] = [
    ("id", "varchar(36)", "VARCHAR"),
    ("some_number", "bigint", "BIGINT"),
    ("amount", "numeric(12,2)", "DECIMAL(12,2)"),
    ("created_at", "timestamptz", "TIMESTAMPTZ"),
    ("description", "varchar(65535)", "VARCHAR"),
    ("active", "boolean", "BOOLEAN"),
    ("category", "varchar(256)", "VARCHAR"),
    ("user_id", "bigint", "BIGINT"),
    ("score", "double precision", "DOUBLE"),
    ("optional_code", "varchar(256)", "VARCHAR"),
    ("child_some_boolean", "boolean", "BOOLEAN"),
    ("child_name", "varchar(256)", "VARCHAR"),
    ("child_depth_level", "integer", "INTEGER"),
]


def _event(rng: random.Random, stats: dict[str, int]) -> dict[str, Any]:
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 8)))
    if rng.random() < 0.02:
        words += " " + rng.choice(_AWKWARD)
    ms = rng.randrange(_YEAR_MS)
    created = _START + timedelta(milliseconds=ms)
    event: dict[str, Any] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "someNumber": rng.randrange(-1_000_000, 1_000_000_000),
        "amount": rng.randrange(10_000_000) / 100,
        "createdAt": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z",
        "description": words,
        "active": rng.random() < 0.5,
        "category": rng.choice(_CATEGORIES),
        "userId": rng.randrange(1, 5_000_000),
        "score": rng.random() * 100,
        "child": {
            "someBoolean": rng.random() < 0.3,
            "name": rng.choice(_NAMES),
            "depth": {"level": rng.randrange(10)},
        },
    }
    if rng.random() < 0.8:
        event["optionalCode"] = f"C-{rng.randrange(100_000):05d}"
    stats["rows"] += 1
    stats["optional_code_present"] += "optionalCode" in event
    stats["sum_some_number"] += event["someNumber"]
    stats["sum_child_depth_level"] += event["child"]["depth"]["level"]
    stats["active_true"] += event["active"]
    stats["child_some_boolean_true"] += event["child"]["someBoolean"]
    stats["sum_amount_cents"] += round(event["amount"] * 100)
    stats["sum_description_chars"] += len(words)
    stats["sum_created_at_epoch_ms"] += int(_START.timestamp()) * 1000 + ms
    return event


def generate(folder: Path, n: int, files: int = FILES, seed: int = SEED) -> Path:
    """Write ``n`` events in ``files`` parts under ``folder`` (reused when already there).

    The manifest is written last, so an interrupted generation is made again next time."""
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if (manifest.get("n"), manifest.get("files"), manifest.get("seed")) == (n, files, seed):
            return folder
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*"):
        old.unlink()
    stats = dict.fromkeys(
        [
            "rows",
            "optional_code_present",
            "sum_some_number",
            "sum_child_depth_level",
            "active_true",
            "child_some_boolean_true",
            "sum_amount_cents",
            "sum_description_chars",
            "sum_created_at_epoch_ms",
        ],
        0,
    )
    per_file, extra = divmod(n, files)
    size = 0
    for index in range(files):
        rng = random.Random(seed * 1_000_003 + index)
        count = per_file + (index < extra)
        # written as made, a line at a time: 10M events are 2.3 GB, and no part is held whole
        with (folder / f"part-{index:05d}.ndjson").open("wb", buffering=1 << 20) as part:
            for _ in range(count):
                line = json.dumps(_event(rng, stats), ensure_ascii=False, separators=(",", ":"))
                size += part.write((line + "\n").encode())
    manifest = {"n": n, "files": files, "seed": seed, "bytes": size, "expected": stats}
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return folder


def parts(folder: Path, fmt: str = "json") -> list[Path]:
    """The data set's part files in ``fmt`` (``"json"``, ``"parquet"``, ``"csv"``), in order."""
    if fmt == "json":
        return sorted(folder.glob("part-*.ndjson"))
    return sorted((folder / fmt).glob(f"part-*.{fmt}"))


#: The source formats besides JSON that ``write_formats`` makes.
FORMATS = ("parquet", "csv")
#: The CSV copies' null string: Arbalest's default ``null_as`` (Redshift's ``NULL AS``).
CSV_NULL = "\\N"

#: ``read_json`` column types: nested objects as STRUCTs, the timestamp kept as written.
READ_JSON_COLUMNS = (
    "{id: 'VARCHAR', someNumber: 'BIGINT', amount: 'DECIMAL(12,2)', "
    "createdAt: '%s', description: 'VARCHAR', active: 'BOOLEAN', "
    "category: 'VARCHAR', userId: 'BIGINT', score: 'DOUBLE', optionalCode: 'VARCHAR', "
    "child: 'STRUCT(someBoolean BOOLEAN, name VARCHAR, depth STRUCT(level INTEGER))'}"
)

#: The CSV copies' header: each field's keys joined with ``.``, as Arbalest maps CSV headers.
CSV_HEADER = [
    "id",
    "someNumber",
    "amount",
    "createdAt",
    "description",
    "active",
    "category",
    "userId",
    "score",
    "optionalCode",
    "child.someBoolean",
    "child.name",
    "child.depth.level",
]


def write_formats(folder: Path) -> None:
    """Write Parquet and CSV copies of the data set's parts (once: reused when a copy's
    ``done`` marker says it was written from this manifest).

    - Parquet: the JSON's shape, typed (``child`` a struct of ``someBoolean``, ``name`` and a
      struct ``depth``; ``createdAt`` a UTC timestamp; ``amount`` DECIMAL(12,2)), Snappy, as
      DuckDB writes it by default.
    - CSV: a header line (``CSV_HEADER``), fields quoted only where needed, NULL as ``\\N``,
      ``createdAt`` as written in the JSON (ISO 8601 with ``Z``).
    """
    import duckdb

    stamp = (folder / "manifest.json").read_text()
    sources = parts(folder)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for fmt in FORMATS:
            target = folder / fmt
            done = target / "done"
            if done.exists() and done.read_text() == stamp:
                continue
            target.mkdir(exist_ok=True)
            for old in target.glob("part-*"):
                old.unlink()
            for part in sources:
                out = target / f"{part.stem}.{fmt}"
                kind = "TIMESTAMPTZ" if fmt == "parquet" else "VARCHAR"
                read = (
                    f"read_json('{part}', format='newline_delimited', "
                    f"columns={READ_JSON_COLUMNS % kind})"
                )
                if fmt == "parquet":
                    select, options = "*", "FORMAT parquet"
                else:
                    select = ", ".join(f'{name} AS "{name}"' for name in CSV_HEADER)
                    options = f"FORMAT csv, HEADER true, NULLSTR '{CSV_NULL}'"
                con.execute(f"COPY (SELECT {select} FROM {read}) TO '{out}' ({options})")
            done.write_text(stamp)
    finally:
        con.close()


def expected(folder: Path) -> dict[str, int]:
    """The aggregates every load of the data set must reproduce."""
    return dict(json.loads((folder / "manifest.json").read_text())["expected"])
