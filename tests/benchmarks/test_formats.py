"""The benchmark's Parquet and CSV copies of its data set, and the order a round runs its
methods in. Nothing is timed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from benchmarks import events, run
from benchmarks.methods import METHODS


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = events.generate(tmp_path_factory.mktemp("data") / "events", 300, files=3)
    events.write_formats(folder)
    return folder


def test_each_part_has_a_parquet_and_a_csv_copy_of_the_same_records(data: Path) -> None:
    names = [p.stem for p in events.parts(data)]
    assert [p.stem for p in events.parts(data, "parquet")] == names
    assert [p.stem for p in events.parts(data, "csv")] == names
    records = [json.loads(line) for p in events.parts(data) for line in p.read_text().splitlines()]
    con = duckdb.connect()
    parquet = con.execute(
        "SELECT id, someNumber, child.depth.level, optionalCode "
        f"FROM read_parquet('{data}/parquet/*.parquet', filename = true, file_row_number = true) "
        "ORDER BY filename, file_row_number"
    ).fetchall()
    con.close()
    assert parquet == [
        (r["id"], r["someNumber"], r["child"]["depth"]["level"], r.get("optionalCode"))
        for r in records
    ]
    rows = []
    for part in events.parts(data, "csv"):
        with part.open(newline="", encoding="utf-8") as file:
            reader = csv.reader(file)
            assert next(reader) == events.CSV_HEADER
            rows += list(reader)
    assert [(r[0], r[3], r[4], r[9]) for r in rows] == [
        (r["id"], r["createdAt"], r["description"], r.get("optionalCode", events.CSV_NULL))
        for r in records
    ]


def test_the_copies_are_written_once(data: Path) -> None:
    before = {p: p.stat().st_mtime_ns for fmt in events.FORMATS for p in events.parts(data, fmt)}
    events.write_formats(data)
    after = {p: p.stat().st_mtime_ns for fmt in events.FORMATS for p in events.parts(data, fmt)}
    assert after == before


def test_a_round_runs_each_format_s_floor_before_its_loads() -> None:
    methods = [m for m in METHODS if m.startswith(("floor-", "arbalest-"))]
    assert run._round_order(methods) == [
        "floor-postgresql",
        "arbalest-postgresql-folder",
        "arbalest-postgresql-s3",
        # PostgreSQL reads no Parquet: the COPY of the CSV copies is its floor too
        "floor-postgresql-csv",
        "arbalest-postgresql-folder-parquet",
        "arbalest-postgresql-folder-csv",
        "floor-duckdb",
        "arbalest-duckdb-folder",
        "arbalest-duckdb-s3",
        "floor-duckdb-parquet",
        "arbalest-duckdb-folder-parquet",
        "floor-duckdb-csv",
        "arbalest-duckdb-folder-csv",
    ]
