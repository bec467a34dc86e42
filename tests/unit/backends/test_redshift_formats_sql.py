"""Redshift's COPY of CSV and Parquet objects, compiled with sqlalchemy-redshift's dialect,
checked as text and parsed back with a SQL parser that knows Redshift."""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
import sqlglot
from sqlalchemy.schema import CreateTable
from sqlalchemy_redshift.dialect import RedshiftDialect_psycopg2

from arbalest import ConfigurationError, Credentials, Integer, Nested, Schema, String
from arbalest.backends.base import CopyJob
from arbalest.backends.redshift_tabular import (
    build_tabular_copy,
    check_tabular_job,
    parquet_load_type,
)
from arbalest.convert import ConvertOptions
from arbalest.loading.formats import CsvOptions
from arbalest.stores.local import LocalStore
from tests.fixtures.redshift import ROLE

DIALECT = RedshiftDialect_psycopg2()
MANIFEST = "s3://lake/_arbalest/manifests/events/run-0000.json"
LOAD = sa.Table(
    "_arbalest_stage_x_l1",
    sa.MetaData(),
    sa.Column("id", sa.String(10)),
    sa.Column("_arbalest_skip_1", sa.String(65535)),
    sa.Column("n", sa.Integer),
    prefixes=["TEMPORARY"],
)


class Event(Schema):
    __tablename__ = "events_formats_sql"
    id = String(10)
    n = Integer()


class Deep(Schema):
    __tablename__ = "deep_formats_sql"
    id = String(10)

    class child(Nested):
        n = Integer()


def job(schema: type[Schema] = Event, **kw: Any) -> CopyJob:
    base = CopyJob(
        label="copy events (incremental)",
        schema=schema,
        mode="incremental",
        store=LocalStore("."),
        source="events/",
        options=ConvertOptions(),
        compression=None,
        max_errors=0,
        metadata_prefix="_arbalest/",
        run_id="run",
        iam_role=ROLE,
    )
    return dataclasses.replace(base, **kw)


def literal(statement: Any) -> str:
    text = str(statement.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))
    return " ".join(text.split())


def test_csv_copy_names_the_load_tables_columns_and_every_csv_option() -> None:
    csv = CsvOptions(
        ignore_header=2,
        quote="'",
        null_as="NULL",
        empty_as_null=True,
        blanks_as_null=True,
        encoding="utf16le",
    )
    options = ConvertOptions(truncate_columns=True, time_format="epochsecs")
    statement = build_tabular_copy(
        LOAD,
        job(format="csv", csv=csv, options=options, validate=True, region="eu-west-1"),
        manifest_url=MANIFEST,
        compression="gzip",
        delimiter=";",
        max_error=7,
    )
    text = literal(statement)
    assert text.startswith(
        f"COPY _arbalest_stage_x_l1 (id, _arbalest_skip_1, n) FROM '{MANIFEST}' "
    )
    for part in (
        "FORMAT AS CSV QUOTE AS ''''",
        "DELIMITER AS ';'",
        "IGNOREHEADER AS 3",  # the lines skipped and the header
        "NULL AS 'NULL'",
        "EMPTYASNULL",
        "BLANKSASNULL",
        "ENCODING AS UTF16LE",
        "IGNOREBLANKLINES",
        "GZIP",
        "MANIFEST",
        "TIMEFORMAT AS 'epochsecs'",
        "TRUNCATECOLUMNS",
        "MAXERROR AS 7",
        "NOLOAD",
        "REGION 'eu-west-1'",
        f"WITH CREDENTIALS AS 'aws_iam_role={ROLE}'",
    ):
        assert part in text
    expression = sqlglot.parse_one(text, read="redshift")
    assert isinstance(expression, sqlglot.exp.Copy)
    assert [c.name for c in expression.this.expressions] == ["id", "_arbalest_skip_1", "n"]


def test_csv_copy_defaults() -> None:
    text = literal(
        build_tabular_copy(
            LOAD, job(format="csv"), manifest_url=MANIFEST, compression="zstd", delimiter=","
        )
    )
    assert "FORMAT AS CSV QUOTE AS '\"'" in text
    assert "IGNOREHEADER AS 1" in text
    assert "NULL AS '\\N'" in text
    assert "ENCODING AS UTF8" in text
    assert text.endswith(" ZSTD")
    for absent in ("EMPTYASNULL", "BLANKSASNULL", "TRUNCATECOLUMNS", "NOLOAD", "REGION"):
        assert absent not in text
    headerless = build_tabular_copy(
        LOAD,
        job(format="csv", csv=CsvOptions(header=False)),
        manifest_url=MANIFEST,
        compression=None,
        delimiter=",",
    )
    assert "IGNOREHEADER" not in literal(headerless)


@pytest.mark.parametrize("serialize", [False, True])
def test_parquet_copy_takes_no_column_list_and_no_other_option(serialize: bool) -> None:
    options = ConvertOptions(time_format="auto")
    statement = build_tabular_copy(
        LOAD,
        job(format="parquet", options=options, validate=True, region="eu-west-1", max_errors=5),
        manifest_url=MANIFEST,
        compression=None,
        delimiter=",",
        serialize_to_json=serialize,
        max_error=6,
    )
    text = literal(statement)
    assert text.startswith(f"COPY _arbalest_stage_x_l1 FROM '{MANIFEST}' ")
    assert "FORMAT AS PARQUET" in text
    assert text.endswith(" SERIALIZETOJSON") is serialize
    # COPY from Parquet takes only these: the rest would fail it
    for absent in ("MAXERROR", "TIMEFORMAT", "NOLOAD", "REGION", "DELIMITER", "IGNOREHEADER"):
        assert absent not in text
    expression = sqlglot.parse_one(text.removesuffix(" SERIALIZETOJSON"), read="redshift")
    assert isinstance(expression, sqlglot.exp.Copy)


def test_access_keys_and_the_default_role() -> None:
    keys = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    text = literal(
        build_tabular_copy(
            LOAD,
            job(format="parquet", iam_role=None, credentials=keys),
            manifest_url=MANIFEST,
            compression=None,
            delimiter=",",
        )
    )
    assert "aws_access_key_id=AKIAIOSFODNN7EXAMPLE" in text
    text = literal(
        build_tabular_copy(
            LOAD,
            job(format="csv", iam_role=None),
            manifest_url=MANIFEST,
            compression=None,
            delimiter=",",
        )
    )
    assert "IAM_ROLE default" in text


def test_a_bad_role_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as raised:
        build_tabular_copy(
            LOAD,
            job(format="csv", iam_role="not-an-arn-secret"),
            manifest_url=MANIFEST,
            compression=None,
            delimiter=",",
        )
    assert "not-an-arn-secret" not in str(raised.value)


def test_parquet_on_redshift_refuses_fields_inside_structs_and_truncation() -> None:
    check_tabular_job(job(Deep, format="csv"))  # a dotted header name is fine in CSV
    with pytest.raises(ConfigurationError, match=r"'child.n' reads \$\['child'\]\['n'\]"):
        check_tabular_job(job(Deep, format="parquet"))
    with pytest.raises(ConfigurationError, match="no TRUNCATECOLUMNS"):
        check_tabular_job(job(format="parquet", options=ConvertOptions(truncate_columns=True)))
    check_tabular_job(job(format="parquet"))


TYPES: list[tuple[pa.DataType, str | None]] = [
    (pa.int8(), "SMALLINT"),
    (pa.uint8(), "SMALLINT"),
    (pa.int16(), "SMALLINT"),
    (pa.uint16(), "INTEGER"),
    (pa.int32(), "INTEGER"),
    (pa.uint32(), "BIGINT"),
    (pa.int64(), "BIGINT"),
    (pa.uint64(), "NUMERIC(20, 0)"),
    (pa.float32(), "REAL"),
    (pa.float64(), "DOUBLE PRECISION"),
    (pa.decimal128(12, 2), "NUMERIC(12, 2)"),
    (pa.bool_(), "BOOLEAN"),
    (pa.string(), "VARCHAR(65535)"),
    (pa.dictionary(pa.int32(), pa.string()), "VARCHAR(65535)"),
    (pa.null(), "VARCHAR(65535)"),
    (pa.date32(), "DATE"),
    (pa.timestamp("us", tz="UTC"), "TIMESTAMP WITHOUT TIME ZONE"),
    (pa.timestamp("ns"), "TIMESTAMP WITHOUT TIME ZONE"),
    (pa.time64("us"), "TIME"),
    (pa.struct([("a", pa.int32())]), "SUPER"),
    (pa.list_(pa.int32()), "SUPER"),
    (pa.map_(pa.string(), pa.int32()), "SUPER"),
    (pa.binary(), None),
]


@pytest.mark.parametrize(("kind", "column"), TYPES, ids=[str(k) for k, _ in TYPES])
def test_the_load_column_for_each_parquet_type(kind: pa.DataType, column: str | None) -> None:
    made = parquet_load_type(kind, as_super=False)
    if column is None:
        assert made is None
        return
    assert made is not None
    table = sa.Table("t", sa.MetaData(), sa.Column("c", made))
    assert f"c {column}" in str(CreateTable(table).compile(dialect=DIALECT))
    assert str(parquet_load_type(kind, as_super=True)) == "SUPER"
