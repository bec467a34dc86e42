"""Parquet and CSV on Redshift, end to end: the backend's statements run on PostgreSQL, and
the stand-in does COPY ... FORMAT AS CSV / PARQUET as Redshift documents them (fields by
position; Parquet columns by position, with matching types and no MAXERROR). The cases run
over a direct connection and through the Data API stand-in (``redshift_warehouse``)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from arbalest import (
    BigInt,
    CopyError,
    Pipeline,
    PipelineError,
    RedshiftDataAPI,
    Schema,
    String,
    TooManyRejectsError,
    journal,
)
from tests.conformance import format_cases
from tests.conformance.format_cases import CSV_CASES, Case, parquet
from tests.conformance.test_conformance import encoded, expected_rows, table_rows
from tests.fixtures.redshift import ROLE
from tests.fixtures.redshift_data import FakeDataAPI
from tests.fixtures.schemas import NAMED, every_type

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def put_objects(bucket: str, objects: dict[str, str | bytes], folder: str = "in") -> None:
    client = boto3.client("s3")
    for key, content in objects.items():
        client.put_object(Bucket=bucket, Key=f"lake/{folder}/{key}", Body=encoded(key, content))


def pipeline(warehouse: Any, bucket: str, schema: type[Schema], **kw: Any) -> Pipeline:
    return Pipeline(warehouse, store=f"s3://{bucket}/lake", iam_role=ROLE).copy(schema, "in", **kw)


@pytest.fixture(params=["direct", "data_api"])
def redshift_warehouse(request: pytest.FixtureRequest, redshift_standin: Any) -> Iterator[Any]:
    """The stand-in reached over a direct connection, or through the Data API stand-in
    (``RedshiftDataAPI``): the same statements, staged in a session there."""
    if request.param == "direct":
        yield redshift_standin.engine
        return
    client = FakeDataAPI(redshift_standin, polls=0)
    try:
        yield RedshiftDataAPI(workgroup="analytics", database="test", client=client)
    finally:
        client.close()


@pytest.mark.parametrize("case", CSV_CASES, ids=str)
def test_csv_cases_give_the_rows_and_rejects_they_give_locally(
    case: Case, redshift_standin: Any, redshift_warehouse: Any, s3_bucket: str
) -> None:
    put_objects(s3_bucket, case.objects)
    engine = redshift_standin.engine
    step = pipeline(redshift_warehouse, s3_bucket, case.schema, **case.options)
    if case.error is not None:
        with pytest.raises(PipelineError) as raised:
            step.run()
        assert case.error in str(raised.value)
        return
    if case.fails:
        with pytest.raises(TooManyRejectsError) as info:
            step.run()
        rejects = info.value.rejects
        with engine.connect() as conn:
            assert not journal.table_exists(conn, case.schema.__table__)
    else:
        result = step.run()
        rejects = result.steps[0].rejects
        assert table_rows(engine, case.schema) == expected_rows(case.schema, case.rows)
        assert result.rows_loaded == len(case.rows)
        # counts per object, in the journal too
        j = journal.JOURNAL
        with engine.connect() as conn:
            counted = conn.execute(sa.select(j.c.key, j.c.rows_loaded, j.c.rows_rejected))
            per_object = {key: (n, r) for key, n, r in counted}
        assert sorted(per_object) == sorted(f"in/{key}" for key in case.objects)
        assert sum(n for n, _ in per_object.values()) == len(case.rows)
        for key, (_, rejected) in per_object.items():
            assert rejected == sum(r.key == key for r in rejects)
    got = [(r.key.removeprefix("in/"), r.line, r.column, r.code) for r in rejects]
    assert got == case.rejects
    for copy in redshift_standin.copies:
        assert copy["format"] == "csv"
        assert copy["columns"]  # a column list: fields by position
        assert len(copy["manifest"]["entries"]) == 1


#: every field type, named for it (i16 ... j), after a String(10) key
_EVERY_TYPE = every_type(NAMED, id=String(10, primary_key=True), string=8)


class Flat(format_cases.Base, _EVERY_TYPE):  # type: ignore[misc, valid-type]
    """The conformance schema without its nested class: Redshift loads a Parquet struct
    whole, into SUPER only."""

    __tablename__ = "flat_formats"

    odd = String(8, key="key with spaces")


PARQUET = {case.name: case for case in format_cases.PARQUET_CASES}


@pytest.mark.parametrize(
    "name",
    [
        "every type from its own Parquet type",
        "narrower types widen without loss",
        "timestamps: instants, local times, milliseconds, nanoseconds cut, INT96",
        "a column the object lacks is NULL; columns no field reads are left out",
        "structs and lists load into SUPER as JSON",
    ],
)
def test_parquet_cases_give_the_rows_they_give_locally(
    name: str, redshift_standin: Any, redshift_warehouse: Any, s3_bucket: str
) -> None:
    case = PARQUET[name]
    put_objects(s3_bucket, case.objects)
    result = pipeline(redshift_warehouse, s3_bucket, Flat, **case.options).run()
    rows = [{k: v for k, v in row.items() if k != "nested_n"} for row in case.rows]
    assert table_rows(redshift_standin.engine, Flat) == expected_rows(Flat, rows)
    assert result.rows_loaded == len(rows)
    copies = redshift_standin.copies
    assert [c["format"] for c in copies] == ["parquet"] * len(case.objects)
    for copy, data in zip(copies, case.objects.values(), strict=True):
        assert isinstance(data, bytes)
        schema = pq.read_schema(io.BytesIO(data))
        # a struct, a list or a Super field's column needs SERIALIZETOJSON
        nested = any(pa.types.is_nested(t) for t in schema.types) or "j" in schema.names
        assert copy["serialize_to_json"] is nested


@pytest.mark.parametrize(
    "name",
    [
        "a column whose type does not fit its field fails the step, naming both",
        "a string column does not load into a number field",
        "a NOT NULL field's column missing fails the step",
        "an object named .parquet that is not Parquet fails the step",
        "objects of two formats under one source fail the step",
    ],
)
def test_parquet_refusals_are_the_local_ones(
    name: str, redshift_standin: Any, s3_bucket: str
) -> None:
    case = PARQUET[name]
    put_objects(s3_bucket, case.objects)
    with pytest.raises(PipelineError) as raised:
        pipeline(redshift_standin.engine, s3_bucket, Flat, **case.options).run()
    assert case.error is not None
    assert case.error in str(raised.value)
    assert not redshift_standin.copies  # refused before any COPY


def test_a_value_the_local_loaders_reject_fails_a_parquet_step(
    redshift_standin: Any, s3_bucket: str
) -> None:
    put_objects(s3_bucket, {"a.parquet": parquet({"id": ["ok", None]})})
    with pytest.raises(CopyError) as raised:
        pipeline(redshift_standin.engine, s3_bucket, Flat, max_errors=5).run()
    assert "'in/a.parquet': its rows do not fit the table" in str(raised.value)
    assert "no MAXERROR" in str(raised.value)
    with redshift_standin.engine.connect() as conn:
        assert not journal.table_exists(conn, Flat.__table__)


def test_parquet_fields_inside_structs_and_truncation_are_refused_at_once(
    redshift_standin: Any, s3_bucket: str
) -> None:
    put_objects(s3_bucket, {"a.parquet": parquet({"id": ["x"]})})
    with pytest.raises(PipelineError, match="Redshift's COPY loads a struct or a list whole"):
        pipeline(redshift_standin.engine, s3_bucket, format_cases.Tab, format="parquet").run()
    with pytest.raises(PipelineError, match="no TRUNCATECOLUMNS"):
        pipeline(
            redshift_standin.engine, s3_bucket, Flat, format="parquet", truncate_columns=True
        ).run()


class Keyed(format_cases.Base):  # type: ignore[misc, valid-type]
    __tablename__ = "keyed_formats"
    id = String(10, primary_key=True)
    n = BigInt()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("mode", ["replace", "merge"])
def test_modes_load_each_object_through_its_own_load_table(
    fmt: str, mode: str, redshift_standin: Any, redshift_warehouse: Any, s3_bucket: str
) -> None:
    def write(name: str, ids: list[str], ns: list[int]) -> None:
        body: str | bytes
        if fmt == "csv":  # the header in another order than the table's
            body = "n,id\n" + "".join(f"{n},{i}\n" for i, n in zip(ids, ns, strict=True))
        else:
            body = parquet({"n": pa.array(ns, pa.int64()), "id": ids})
        put_objects(s3_bucket, {f"{name}.{fmt}": body})

    write("a", ["k1", "k2"], [1, 2])
    pipeline(redshift_warehouse, s3_bucket, Keyed, mode=mode).run()
    if mode == "merge":  # the newer object's row wins
        write("b", ["k2", "k3"], [20, 30])
        want = [("k1", 1), ("k2", 20), ("k3", 30)]
    else:  # every object again, swapped in
        write("b", ["k3"], [30])
        want = [("k1", 1), ("k2", 2), ("k3", 30)]
    pipeline(redshift_warehouse, s3_bucket, Keyed, mode=mode).run()
    got = table_rows(redshift_standin.engine, Keyed)
    assert [(r["id"], r["n"]) for r in got] == want
    with redshift_standin.engine.connect() as conn:
        loaded = journal.loaded(conn, "keyed_formats", "in/")
    assert sorted(loaded) == [f"in/a.{fmt}", f"in/b.{fmt}"]


def test_validate_copies_csv_with_noload_and_leaves_nothing(
    redshift_standin: Any, s3_bucket: str
) -> None:
    put_objects(s3_bucket, {"a.csv": "id,n\nk1,1\nk2,x\n"})
    result = pipeline(redshift_standin.engine, s3_bucket, Keyed, max_errors=1).validate()
    assert [(r.line, r.column, r.code) for r in result.steps[0].rejects] == [(3, "n", 1207)]
    assert all(copy["no_load"] for copy in redshift_standin.copies)
    with redshift_standin.engine.connect() as conn:
        assert not journal.table_exists(conn, Keyed.__table__)


def test_dates_load_as_their_day_in_utc_from_csv(redshift_standin: Any, s3_bucket: str) -> None:
    put_objects(s3_bucket, {"a.csv": "id,day\nd1,2019-02-11T23:30:00-05:00\n"})
    pipeline(redshift_standin.engine, s3_bucket, Flat).run()
    assert table_rows(redshift_standin.engine, Flat)[0]["day"] == dt.date(2019, 2, 12)


def test_the_parquet_lake_example_loads_into_redshift_as_into_duckdb(
    redshift_standin: Any, s3_bucket: str, tmp_path: Any
) -> None:
    import sys

    from tests.examples.test_examples import load

    # one definition of the example's schema per process (its table is in the shared MetaData)
    example = sys.modules.get("example_parquet_lake") or load("parquet_lake")
    lake = example.write_lake(tmp_path)
    client = boto3.client("s3")
    for path in sorted(lake.rglob("*.parquet")):
        key = f"raw/{path.relative_to(lake).as_posix()}"
        client.put_object(Bucket=s3_bucket, Key=key, Body=path.read_bytes())
    build = example.build(redshift_standin.engine, f"s3://{s3_bucket}/raw", iam_role=ROLE)
    result = build.run()
    assert (result.steps[0].objects_loaded, result.rows_loaded) == (3, 12)
    with redshift_standin.engine.connect() as conn:
        revenue = conn.execute(sa.text("SELECT * FROM parquet_revenue ORDER BY day")).all()
        coupons = conn.execute(
            sa.text("SELECT count(coupon), count(shipping), count(items) FROM parquet_orders")
        ).one()
    assert [tuple(r) for r in revenue] == [(dt.date(2026, 3, d), D("66.99")) for d in (1, 2, 3)]
    assert tuple(coupons) == (4, 12, 12)
    assert all(c["serialize_to_json"] for c in redshift_standin.copies)


def test_serverless_reads_csv_rejects_and_parquet_counts_from_the_sys_views(
    redshift_serverless: Any, s3_bucket: str
) -> None:
    put_objects(s3_bucket, {"a.csv": "id,n\nk1,1\nk2,x\n"}, folder="c")
    put_objects(
        s3_bucket, {"a.parquet": parquet({"id": ["p1", "p2"], "n": pa.array([1, 2])})}, folder="p"
    )
    store = f"s3://{s3_bucket}/lake"
    result = (
        Pipeline(redshift_serverless.engine, store=store, iam_role=ROLE)
        .copy(Keyed, "c", max_errors=1)
        .run()
    )
    assert [(r.key, r.line, r.column, r.code) for r in result.steps[0].rejects] == [
        ("c/a.csv", 3, "n", 1207)
    ]
    assert result.rows_loaded == 1
    result = Pipeline(redshift_serverless.engine, store=store, iam_role=ROLE).copy(Keyed, "p").run()
    assert result.rows_loaded == 2
    assert [(r["id"], r["n"]) for r in table_rows(redshift_serverless.engine, Keyed)] == [
        ("k1", 1),
        ("p1", 1),
        ("p2", 2),
    ]
