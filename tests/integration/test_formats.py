"""Parquet and CSV with every mode and step kind, on DuckDB and PostgreSQL: merge order,
duplicate keys named by line, time series, and formats checked at run time."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from arbalest import (
    BigInt,
    CopyError,
    Pipeline,
    PipelineError,
    Schema,
    SortedSources,
    String,
    Timestamp,
    journal,
)


@pytest.fixture
def event(make_event: Callable[..., Any]) -> Any:
    return make_event(id=String(8, primary_key=True), n=BigInt(), t=Timestamp())


def parquet(columns: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out)
    return out.getvalue()


def put(lake: Path, key: str, data: str | bytes, mtime: float | None = None) -> None:
    path = lake / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def rows(warehouse: sa.Engine) -> list[tuple[Any, ...]]:
    with warehouse.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT id, n FROM events ORDER BY id"))]


def body(fmt: str, ids: list[str], ns: list[int]) -> str | bytes:
    if fmt == "csv":
        return "id,n\n" + "".join(f"{i},{n}\n" for i, n in zip(ids, ns, strict=True))
    return parquet({"id": ids, "n": pa.array(ns, pa.int64())})


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_merge_keeps_the_last_row_of_the_newest_object(
    fmt: str, warehouse: sa.Engine, tmp_path: Path, event: Any
) -> None:
    put(tmp_path, f"m/b.{fmt}", body(fmt, ["k1", "k2", "k1"], [1, 2, 3]), mtime=1000)
    put(tmp_path, f"m/a.{fmt}", body(fmt, ["k2"], [20]), mtime=2000)  # newer, though 'a'
    Pipeline(warehouse, store=tmp_path).copy(event, "m", mode="merge").run()
    assert rows(warehouse) == [("k1", 3), ("k2", 20)]
    put(tmp_path, f"m/c.{fmt}", body(fmt, ["k1"], [30]), mtime=3000)
    result = Pipeline(warehouse, store=tmp_path).copy(event, "m", mode="merge").run()
    assert result.steps[0].objects_loaded == 1
    assert rows(warehouse) == [("k1", 30), ("k2", 20)]


@pytest.mark.parametrize(
    ("fmt", "where"),
    [
        ("csv", "in/a.csv line 4 repeats the key of in/a.csv line 2"),
        ("parquet", "in/a.parquet line 3 repeats the key of in/a.parquet line 1"),
    ],
)
def test_a_repeated_primary_key_is_named_by_object_and_line(
    fmt: str, where: str, warehouse: sa.Engine, tmp_path: Path, event: Any
) -> None:
    put(tmp_path, f"in/a.{fmt}", body(fmt, ["k1", "k2", "k1"], [1, 2, 3]))
    with pytest.raises(CopyError) as raised:
        Pipeline(warehouse, store=tmp_path).copy(event, "in").run()
    assert where in str(raised.value)
    with warehouse.connect() as conn:
        assert not journal.table_exists(conn, event.__table__)


def test_an_incremental_rerun_loads_nothing_and_a_new_object_once(
    warehouse: sa.Engine, tmp_path: Path, event: Any
) -> None:
    put(tmp_path, "in/a.csv", body("csv", ["k1"], [1]))
    pipeline = Pipeline(warehouse, store=tmp_path).copy(event, "in")
    assert pipeline.run().rows_loaded == 1
    assert pipeline.run().rows_loaded == 0
    put(tmp_path, "in/b.csv", body("csv", ["k2"], [2]))
    assert pipeline.run().rows_loaded == 1
    assert rows(warehouse) == [("k1", 1), ("k2", 2)]


def test_time_series_partitions_of_parquet(
    warehouse: sa.Engine, tmp_path: Path, event: Any
) -> None:
    for day, ids in (("2024-01-01", ["a"]), ("2024-01-02", ["b", "c"])):
        put(
            tmp_path,
            f"events/{day}/part.parquet",
            parquet({"id": ids, "t": pa.array([pa.scalar(0, pa.timestamp("us"))] * len(ids))}),
        )
    sources = SortedSources(tmp_path, "events", warehouse=warehouse)
    result = Pipeline(warehouse).time_series(event, sources, series_column="t").run()
    assert result.rows_loaded == 3
    assert sources.committed() == "events/2024-01-02"


def test_a_partition_of_another_format_fails_the_time_series_step(
    warehouse: sa.Engine, tmp_path: Path, event: Any
) -> None:
    put(tmp_path, "events/2024-01-01/part.csv", "id\na\n")
    put(tmp_path, "events/2024-01-02/part.parquet", parquet({"id": ["b"]}))
    sources = SortedSources(tmp_path, "events", warehouse=warehouse)
    step = Pipeline(warehouse).time_series(event, sources, series_column="t", format="csv")
    with pytest.raises(PipelineError, match="is a Parquet object by its suffix"):
        step.run()
    assert sources.committed() is None


def test_a_csv_source_found_by_suffix_refuses_an_array_field_at_run_time(
    warehouse: sa.Engine, tmp_path: Path, base: type[Schema]
) -> None:
    class Tagged(base):  # type: ignore[misc, valid-type]
        __tablename__ = "tagged"
        first = String(8, path="$['tags'][0]")

    put(tmp_path, "in/a.csv", "tags\nx\n")
    with pytest.raises(PipelineError, match="CSV has no arrays"):
        Pipeline(warehouse, store=tmp_path).copy(Tagged, "in").run()


def test_validate_reads_csv_and_leaves_nothing(
    warehouse: sa.Engine, tmp_path: Path, event: Any
) -> None:
    put(tmp_path, "in/a.csv", "id,n\nk1,1\nk2,x\n")
    result = Pipeline(warehouse, store=tmp_path).copy(event, "in", max_errors=1).validate()
    assert (result.rows_loaded, [r.line for r in result.steps[0].rejects]) == (1, [3])
    with warehouse.connect() as conn:
        assert not journal.table_exists(conn, event.__table__)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_column_no_row_filled_is_a_warning_with_near_column_names(
    fmt: str, warehouse: sa.Engine, tmp_path: Path, base: type[Schema]
) -> None:
    class Seen(base):  # type: ignore[misc, valid-type]
        __tablename__ = "seen"
        id = String(8)
        created = String(8, key="createdAt")

    if fmt == "csv":
        put(tmp_path, "in/a.csv", "id,created_at\nx,y\n")
    else:
        put(tmp_path, "in/a.parquet", parquet({"id": ["x"], "created_at": ["y"]}))
    result = Pipeline(warehouse, store=tmp_path).copy(Seen, "in").run()
    assert result.steps[0].warnings == [
        "no record had the key 'createdAt'; records have 'created_at'"
    ]
