"""Every keyword a warehouse lists works as a column name and as a table name everywhere.

The words come from the warehouses themselves: DuckDB's ``duckdb_keywords()``, PostgreSQL's
``pg_get_keywords()`` and the reserved words of Redshift's guide (r_pg_keywords). Each one
is loaded through a real pipeline on DuckDB and PostgreSQL (one table with a column per
word; one table per word, all in one pipeline), and compiled into Redshift's DDL and COPY,
where it must be quoted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable
from sqlalchemy_redshift.dialect import RedshiftDialect_psycopg2

from arbalest import Pipeline, Schema, String, journal
from arbalest.backends.redshift import build_copy
from tests.fixtures.servers import POSTGRES_URL

#: Redshift's reserved words (Database Developer Guide, "Reserved words"), and the two it
#: asks to quote as aliases although they are not reserved.
REDSHIFT_RESERVED: Final = frozenset(
    """
    AES128 AES256 ALL ALLOWOVERWRITE ANALYSE ANALYZE AND ANY ARRAY AS ASC AUTHORIZATION AZ64
    BACKUP BETWEEN BINARY BLANKSASNULL BOTH BYTEDICT BZIP2 CASE CAST CHECK COLLATE COLUMN
    CONSTRAINT CREATE CREDENTIALS CROSS CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP
    CURRENT_USER CURRENT_USER_ID DEFAULT DEFERRABLE DEFLATE DEFRAG DELTA DELTA32K DESC DISABLE
    DISTINCT DO ELSE EMPTYASNULL ENABLE ENCODE ENCRYPT ENCRYPTION END EXCEPT EXPLICIT FALSE
    FOR FOREIGN FREEZE FROM FULL GLOBALDICT256 GLOBALDICT64K GRANT GROUP GZIP HAVING IDENTITY
    IGNORE ILIKE IN INITIALLY INNER INTERSECT INTERVAL INTO IS ISNULL JOIN LEADING LEFT LIKE
    LIMIT LOCALTIME LOCALTIMESTAMP LUN LUNS LZO LZOP MINUS MOSTLY16 MOSTLY32 MOSTLY8 NATURAL
    NEW NOT NOTNULL NULL NULLS OFF OFFLINE OFFSET OID OLD ON ONLY OPEN OR ORDER OUTER
    OVERLAPS PARALLEL PARTITION PERCENT PERMISSIONS PIVOT PLACING PRIMARY RAW READRATIO
    RECOVER REFERENCES REJECTLOG RESORT RESPECT RESTORE RIGHT SELECT SESSION_USER SIMILAR
    SNAPSHOT SOME SYSDATE SYSTEM TABLE TAG TDES TEXT255 TEXT32K THEN TIMESTAMP TO TOP
    TRAILING TRUE TRUNCATECOLUMNS UNION UNIQUE UNNEST UNPIVOT USER USING VERBOSE WALLET WHEN
    WHERE WITH WITHOUT START CONNECT
    """.lower().split()
)
assert len(REDSHIFT_RESERVED) == 158

#: The primary key of the keyword table: a DuckDB keyword that duckdb-engine did not quote.
KEY: Final = "asof"
SOURCE: Final = "in"


@dataclass(frozen=True)
class Keywords:
    """The words each warehouse lists, and those it does not take as bare names."""

    every: list[str]
    reserved: list[str]  # reserved somewhere: not "unreserved" in DuckDB or PostgreSQL


@pytest.fixture(scope="module")
def keywords() -> Keywords:
    """Every keyword DuckDB, PostgreSQL (the server's own list) and Redshift list."""
    with duckdb.connect() as con:
        duck = con.execute(
            "SELECT keyword_name, keyword_category FROM duckdb_keywords()"
        ).fetchall()
    server = sa.create_engine(POSTGRES_URL)
    try:
        with server.connect() as conn:
            pg = conn.exec_driver_sql("SELECT word, catcode FROM pg_get_keywords()").fetchall()
    finally:
        server.dispose()
    every = {w for w, _ in duck} | {w for w, _ in pg} | REDSHIFT_RESERVED
    reserved = (
        {w for w, category in duck if category != "unreserved"}
        | {w for w, code in pg if code != "U"}
        | REDSHIFT_RESERVED
    )
    assert {"at", "by", "glob", "semi", "anti", "asof", "positional", "lateral"} <= reserved
    return Keywords(sorted(every), sorted(reserved))


class Own(Schema):
    __abstract__ = True
    metadata = sa.MetaData()


def column_schema(words: list[str], metadata: sa.MetaData) -> type[Schema]:
    """One table, ``keywords``, with a column per word (its JSON key the same word)."""

    class Base(Schema):
        __abstract__ = True

    Base.metadata = metadata
    fields: dict[str, Any] = {"__tablename__": "keywords"}
    fields["key"] = String(16, primary_key=True, name=KEY, key=KEY)
    for index, word in enumerate(w for w in words if w != KEY):
        fields[f"c{index}"] = String(40, name=word, key=word)
    return type("Keywords", (Base,), fields)


def table_schema(word: str, metadata: sa.MetaData) -> type[Schema]:
    """A table named ``word`` whose one column is named ``word`` too."""

    class Base(Schema):
        __abstract__ = True

    Base.metadata = metadata
    fields = {"__tablename__": word, "value": String(40, name=word, key=word)}
    return type(f"Table_{len(metadata.tables)}", (Base,), fields)


def put(folder: Path, name: str, *records: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))


BACKENDS: Final = [
    pytest.param("duckdb", marks=pytest.mark.duckdb),
    pytest.param("postgresql", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_keyword_is_a_column_name(
    backend: str, keywords: Keywords, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine: sa.Engine = request.getfixturevalue(f"warehouse_{backend}")
    words = keywords.every
    schema = column_schema(words, sa.MetaData())
    table = schema.__table__
    assert set(table.c.keys()) == set(words)
    everything = {word: word for word in words}
    put(tmp_path / SOURCE, "a.json", {**everything, KEY: "k1"}, {KEY: "k2"})

    def pipeline(mode: str) -> Pipeline:
        return Pipeline(engine, store=tmp_path).copy(schema, source=SOURCE, mode=mode)

    def contents() -> dict[str, dict[str, Any]]:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(table)).mappings()
            return {row[KEY]: {k: v for k, v in row.items() if v is not None} for row in rows}

    assert pipeline("replace").run().rows_loaded == 2
    assert contents() == {"k1": {**everything, KEY: "k1"}, "k2": {KEY: "k2"}}
    # merge: delete-then-insert on the keyword primary key, every column named again
    put(tmp_path / SOURCE, "b.json", {KEY: "k2", "at": "new", "lateral": "new"})
    assert pipeline("merge").run().rows_loaded == 1
    assert contents()["k2"] == {KEY: "k2", "at": "new", "lateral": "new"}
    assert pipeline("merge").run().rows_loaded == 0
    assert pipeline("incremental").run().rows_loaded == 0  # the same journal


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_reserved_keyword_is_a_table_name_in_a_pipeline(
    backend: str, keywords: Keywords, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # One step per word, all in one pipeline (a step costs a fifth of a second or so: the
    # unreserved words, which every parser takes as bare names, go through the DDL and DML
    # below instead).
    engine: sa.Engine = request.getfixturevalue(f"warehouse_{backend}")
    words = keywords.reserved
    metadata = sa.MetaData()
    schemas = [table_schema(word, metadata) for word in words]
    put(tmp_path / SOURCE, "a.json", {word: f"<{word}>" for word in words})
    pipeline = Pipeline(engine, store=tmp_path)
    for schema in schemas:
        pipeline = pipeline.copy(schema, source=SOURCE, mode="incremental")
    result = pipeline.run()
    assert [step.rows_loaded for step in result.steps] == [1] * len(words)
    with engine.connect() as conn:
        for word in words:
            table = metadata.tables[word]
            assert conn.execute(sa.select(table.c[word])).scalars().all() == [f"<{word}>"]
        loaded = conn.execute(sa.select(journal.JOURNAL.c.target).distinct()).scalars().all()
    assert sorted(loaded) == words
    assert pipeline.run().rows_loaded == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_keyword_is_a_table_name(
    backend: str, keywords: Keywords, request: pytest.FixtureRequest
) -> None:
    engine: sa.Engine = request.getfixturevalue(f"warehouse_{backend}")
    metadata = sa.MetaData()
    tables = [table_schema(word, metadata).__table__ for word in keywords.every]
    with engine.begin() as conn:
        metadata.create_all(conn)
        for table in tables:
            conn.execute(sa.insert(table).values({table.name: f"<{table.name}>"}))
    with engine.begin() as conn:
        for table in tables:
            assert conn.execute(sa.select(table)).scalars().all() == [f"<{table.name}>"]
        metadata.drop_all(conn)


def quoted(word: str) -> str:
    return f'"{word}"'


def test_redshift_ddl_and_copy_quote_every_keyword(keywords: Keywords) -> None:
    """Redshift's reserved words, and the words the other warehouses reserve, are quoted in
    its DDL and COPY; any other keyword is bare (and lowercase: Redshift takes it)."""
    dialect = RedshiftDialect_psycopg2()
    must = set(keywords.reserved)
    assert must >= REDSHIFT_RESERVED

    def check(names: list[str], expected: list[str]) -> None:
        assert len(names) == len(expected)
        for name, word in zip(names, expected, strict=True):
            assert name == quoted(word) if word in must else name in (word, quoted(word))

    table = column_schema(keywords.every, sa.MetaData()).__table__
    ddl = str(CreateTable(table).compile(dialect=dialect))
    check(re.findall(r"^\s*(\S+) VARCHAR\(\d+\)", ddl, re.MULTILINE), table.c.keys())
    copy = build_copy(
        table,
        list(table.c.keys()),
        manifest_url="s3://lake/_arbalest/manifests/keywords/run.json",
        jsonpaths_url="s3://lake/_arbalest/jsonpaths/keywords.json",
        iam_role="arn:aws:iam::123456789012:role/ArbalestLoader",
    )
    text = str(copy.compile(dialect=dialect))
    check(text[text.index("(") + 1 : text.index(")")].split(", "), table.c.keys())
    for word in keywords.every:
        named = sa.Table(word, sa.MetaData(), sa.Column("id", sa.Integer))
        check([str(CreateTable(named).compile(dialect=dialect)).split()[2]], [word])
        check([dialect.identifier_preparer.format_table(named)], [word])


#: Names the DSL accepts through ``name=`` and ``__tablename__`` that need quoting for
#: other reasons than keywords: dots, spaces, quotes, a backslash, a leading digit, a
#: dollar, a hyphen, letters beyond ASCII.
ODD_COLUMNS: Final = ["a.b", "1st", "ünïcödé", "a-b", "$x", "x'y", 'q"q', "a\\b", "tab\tx"]
ODD_TABLES: Final = ["my.odd table", "1st", "ünï", "it's"]


@pytest.mark.parametrize("tablename", ODD_TABLES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_names_are_quoted_everywhere(
    backend: str, tablename: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine: sa.Engine = request.getfixturevalue(f"warehouse_{backend}")

    class Base(Schema):
        __abstract__ = True
        metadata = sa.MetaData()

    fields: dict[str, Any] = {"__tablename__": tablename}
    fields["key"] = String(16, primary_key=True, name="k.e y", key="k")
    for index, name in enumerate(ODD_COLUMNS):
        fields[f"c{index}"] = String(16, name=name, key=name)
    schema: Any = type("Odd", (Base,), fields)
    table = schema.__table__
    assert table.c.keys() == ["k.e y", *ODD_COLUMNS]
    put(tmp_path / SOURCE, "a.json", {"k": "k1", **{n: n for n in ODD_COLUMNS}})

    def pipeline(mode: str) -> Pipeline:
        return Pipeline(engine, store=tmp_path).copy(schema, source=SOURCE, mode=mode)

    assert pipeline("replace").run().rows_loaded == 1
    put(tmp_path / SOURCE, "b.json", {"k": "k1", "a.b": "new"}, {"k": "k2"})
    assert pipeline("merge").run().rows_loaded == 2
    with engine.connect() as conn:
        rows = sorted(tuple(row) for row in conn.execute(sa.select(table)))
    assert rows == [("k1", "new", *[None] * 8), ("k2", *[None] * 9)]
    ddl = str(CreateTable(table).compile(dialect=RedshiftDialect_psycopg2()))
    assert all(f'"{name}"' in ddl for name in ["a.b", "1st", "a-b", "$x", "x'y", 'q""q'])
