"""The conformance table runs on every warehouse Arbalest feeds, with identical results."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import zstandard

from arbalest import Pipeline, PipelineError, Schema, TooManyRejectsError, journal
from arbalest.backends import base as backends_base
from arbalest.loading import reader
from tests.conformance.cases import CASES, Case, Row


def encoded(key: str, content: str | bytes) -> bytes:
    data = content.encode() if isinstance(content, str) else content
    if key.endswith(".gz"):
        return gzip.compress(data)
    if key.endswith(".bz2"):
        return bz2.compress(data)
    if key.endswith(".zst"):
        return zstandard.ZstdCompressor().compress(data)
    return data


def write_objects(root: Path, objects: dict[str, str | bytes]) -> None:
    for key, content in objects.items():
        path = root / "in" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encoded(key, content))


@dataclass
class Destination:
    """A warehouse and the store it loads from."""

    engine: sa.Engine
    store: str | Path
    put: Callable[[dict[str, str | bytes]], None]


@pytest.fixture(
    params=[
        pytest.param("duckdb", marks=pytest.mark.duckdb),
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("redshift", marks=[pytest.mark.postgres, pytest.mark.s3]),
    ]
)
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Destination:
    """DuckDB and PostgreSQL loading from a folder; Redshift (its statements on PostgreSQL,
    COPY by the stand-in) loading from moto's S3."""
    if request.param == "redshift":
        import boto3

        standin = request.getfixturevalue("redshift_standin")
        bucket = request.getfixturevalue("s3_bucket")

        def put_s3(objects: dict[str, str | bytes]) -> None:
            client = boto3.client("s3")
            for key, content in objects.items():
                client.put_object(Bucket=bucket, Key=f"lake/in/{key}", Body=encoded(key, content))

        return Destination(standin.engine, f"s3://{bucket}/lake", put_s3)
    engine = request.getfixturevalue("warehouse_" + str(request.param))
    return Destination(engine, tmp_path, lambda objects: write_objects(tmp_path, objects))


def normalise(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column == "r":  # REAL: compare as 32-bit floats
        return struct.unpack("f", struct.pack("f", value))[0]
    if column == "tz":
        return value.astimezone(dt.UTC)
    return value


def expected_rows(schema: type[Schema], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` as ``table_rows`` gives them: every column of ``schema`` (NULL unless named),
    normalised, in the order of ``id``; a column the schema lacks fails the test."""
    columns = schema.__table__.c.keys()
    expected = []
    for row in rows:
        unknown = set(row) - set(columns)
        assert not unknown, f"the case names unknown columns {unknown}"
        expected.append({c: normalise(c, row.get(c)) for c in columns})
    return sorted(expected, key=lambda r: str(r["id"]))


def table_rows(engine: sa.Engine, schema: type[Schema]) -> list[dict[str, Any]]:
    """The rows of ``schema``'s table, normalised, in the order of ``id``."""
    table = schema.__table__
    with engine.connect() as conn:
        result = conn.execute(sa.select(table).order_by(table.c.id))
        return [{c: normalise(c, v) for c, v in row._mapping.items()} for row in result]


@pytest.fixture(params=["whole", "small chunks"])
def chunking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Objects read whole, and cut into chunks of 64 bytes converted in batches of 128:
    records then span chunk and batch boundaries, and the results must not change."""
    if request.param == "small chunks":
        monkeypatch.setattr(reader, "CHUNK_BYTES", 64)
        monkeypatch.setattr(reader, "IN_PLACE_BYTES", 64)
        monkeypatch.setattr(backends_base, "BATCH_BYTES", 128)
    return str(request.param)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_case(case: Case, destination: Destination, chunking: str) -> None:
    warehouse = destination.engine
    destination.put(case.objects)
    pipeline = Pipeline(warehouse, store=destination.store).copy(Row, source="in", **case.options)
    if case.fails:
        with pytest.raises(TooManyRejectsError) as info:
            pipeline.run()
        rejects = info.value.rejects
        with warehouse.connect() as conn:  # the step created the table; it was rolled back
            assert not journal.table_exists(conn, Row.__table__)
    else:
        result = pipeline.run()
        rejects = result.steps[0].rejects
        assert table_rows(warehouse, Row) == expected_rows(Row, case.rows)
        assert result.rows_loaded == len(case.rows)
        assert result.rows_rejected == len(case.rejects)
    got = [(r.key.removeprefix("in/"), r.line, r.column, r.code) for r in rejects]
    assert got == case.rejects
    for reject in rejects:
        assert reject.reason


def test_a_failed_step_is_a_pipeline_error(warehouse: sa.Engine, tmp_path: Path) -> None:
    write_objects(tmp_path, {"a.json": '{"i32": 1}\n'})
    with pytest.raises(PipelineError) as info:
        Pipeline(warehouse, store=tmp_path).copy(Row, source="in").run()
    assert info.value.step == "copy conformance (incremental)"
