"""The Redshift COPY, compiled with sqlalchemy-redshift's dialect for every option, checked as
text and parsed back with a SQL parser that knows Redshift."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import sqlalchemy as sa
import sqlglot
from sqlalchemy.schema import CreateTable
from sqlalchemy_redshift.dialect import RedshiftDialect_psycopg2

from arbalest import ConfigurationError, Credentials
from arbalest.backends.redshift import (
    CREATION_LOCK,
    STL,
    SYS,
    LoadViews,
    RedshiftBackend,
    WarehouseFacts,
    build_copy,
    lock_table,
    manifest_document,
)
from tests.fixtures.redshift import ROLE

DIALECT = RedshiftDialect_psycopg2()
TABLE = sa.Table(
    "events", sa.MetaData(), sa.Column("id", sa.String), sa.Column("some_number", sa.Integer)
)
KEYS = Credentials(
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLEtoken"
)
MANIFEST = "s3://lake/_arbalest/manifests/events/run-0000.json"
JSONPATHS = "s3://lake/_arbalest/jsonpaths/events.json"


def compiled(**kw: Any) -> tuple[str, str]:
    """The statement with bound parameters, and with literal values (what Redshift runs)."""
    statement = build_copy(
        TABLE, ["id", "some_number"], manifest_url=MANIFEST, jsonpaths_url=JSONPATHS, **kw
    )
    bound = str(statement.compile(dialect=DIALECT))
    literal = str(statement.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))
    return bound, " ".join(literal.split())


def parsed_words(sql: str) -> tuple[Any, list[str]]:
    expression = sqlglot.parse_one(sql, read="redshift")
    assert isinstance(expression, sqlglot.exp.Copy)
    words = []
    for node in expression.walk():
        if isinstance(node, sqlglot.exp.Var | sqlglot.exp.Literal):
            words.append(str(node.this))
    return expression, words


AUTH: dict[str, dict[str, Any]] = {
    "role": {"iam_role": ROLE},
    "keys": {"credentials": KEYS},
    "default": {},
}
COMPRESSION = {None: None, "gzip": "GZIP", "bzip2": "BZIP2", "zstd": "ZSTD"}


@pytest.mark.parametrize(
    ("auth", "compression", "time_format", "truncate", "no_load", "region", "max_error"),
    [
        (a, c, t, tr, nl, r, m)
        for (a, c), (t, tr), (nl, r, m) in itertools.product(
            itertools.product(AUTH, COMPRESSION),
            [
                ("auto", False),
                ("epochsecs", True),
                ("epochmillisecs", False),
                ("YYYY-MM-DD HH:MI:SS", True),
            ],
            [(False, None, 0), (True, "eu-west-1", 10)],
        )
    ],
)
def test_every_option_combination(
    auth: str,
    compression: str | None,
    time_format: str,
    truncate: bool,
    no_load: bool,
    region: str | None,
    max_error: int,
) -> None:
    bound, literal = compiled(
        **AUTH[auth],
        compression=compression,
        time_format=time_format,
        truncate_columns=truncate,
        no_load=no_load,
        region=region,
        max_error=max_error,
    )
    # values are bound parameters in the statement text, never pasted in
    for secret in (KEYS.secret_access_key, str(KEYS.session_token), ROLE, MANIFEST):
        assert secret not in bound
    assert literal.startswith(f"COPY events (id, some_number) FROM '{MANIFEST}' ")
    assert f"FORMAT AS JSON AS '{JSONPATHS}'" in literal
    assert " MANIFEST" in literal
    assert f"TIMEFORMAT AS '{time_format}'" in literal
    assert f"MAXERROR AS {max_error}" in literal
    assert ("TRUNCATECOLUMNS" in literal) is truncate
    assert ("NOLOAD" in literal) is no_load
    assert (f"REGION '{region}'" in literal) is (region is not None)
    for name, word in COMPRESSION.items():
        if word:
            assert (f" {word}" in literal) is (name == compression)
    if auth == "role":
        assert f"WITH CREDENTIALS AS 'aws_iam_role={ROLE}'" in literal
    elif auth == "keys":
        assert (
            "WITH CREDENTIALS AS 'aws_access_key_id=AKIAIOSFODNN7EXAMPLE;"
            f"aws_secret_access_key={KEYS.secret_access_key};token={KEYS.session_token}'"
        ) in literal
    else:
        assert "IAM_ROLE default" in literal
        assert "CREDENTIALS" not in literal

    expression, words = parsed_words(literal)
    assert expression.this.this.name == "events"
    assert [c.name for c in expression.this.expressions] == ["id", "some_number"]
    assert [f.this for f in expression.args["files"]] == [MANIFEST]
    assert JSONPATHS in words
    assert "MANIFEST" in words
    assert time_format in words
    if compression:
        assert COMPRESSION[compression] in words
    if no_load:
        assert "NOLOAD" in words
    if region:
        assert region in words
    if auth == "default":
        assert expression.args["credentials"].args["iam_role"].this == "default"


def test_an_iam_role_is_preferred_to_keys() -> None:
    _, literal = compiled(iam_role=ROLE, credentials=KEYS)
    assert ROLE in literal
    assert KEYS.access_key_id not in literal


def test_keys_without_session_token() -> None:
    _, literal = compiled(credentials=Credentials(KEYS.access_key_id, KEYS.secret_access_key))
    assert "token=" not in literal
    assert f"aws_secret_access_key={KEYS.secret_access_key}'" in literal


def test_bad_credentials_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigurationError) as info:
        compiled(credentials=Credentials("not-a-key", "tooshort-secret-value"))
    assert "tooshort-secret-value" not in str(info.value)
    with pytest.raises(ConfigurationError):
        compiled(iam_role="not an arn")


def test_manifest_document() -> None:
    document = manifest_document([("s3://b/a.json", 10), ("s3://b/b.json.gz", 0)])
    assert document == {
        "entries": [
            {"url": "s3://b/a.json", "mandatory": True, "meta": {"content_length": 10}},
            {"url": "s3://b/b.json.gz", "mandatory": True, "meta": {"content_length": 0}},
        ]
    }
    json.dumps(document)


def test_quoted_table_and_column_names() -> None:
    table = sa.Table(
        "select", sa.MetaData(), sa.Column("user", sa.Integer), sa.Column('we"ird', sa.Integer)
    )
    statement = build_copy(
        table, ["user", 'we"ird'], manifest_url=MANIFEST, jsonpaths_url=JSONPATHS
    )
    text = str(statement.compile(dialect=DIALECT))
    assert text.startswith('COPY "select" ("user", "we""ird") FROM')


class Recorder:
    """A connection that records what it is asked to run; ``SHOW`` answers ``30s``, every
    table exists, and the warehouse facts are already known (``info``)."""

    dialect = DIALECT

    def __init__(self, facts: WarehouseFacts) -> None:
        self.ran: list[tuple[str, Any]] = []
        self.info = {"arbalest.redshift": facts}

    def exec_driver_sql(self, sql: str) -> Any:
        self.ran.append((sql, None))
        return self

    def execute(self, statement: Any, params: Any = None) -> Any:
        self.ran.append((str(statement), params))
        return self

    def scalar_one(self) -> str:
        return "30s"

    def first(self) -> tuple[int]:
        return (1,)


@pytest.mark.parametrize(
    ("serializable", "locked"),
    [
        (False, "LOCK _arbalest_lock_events_82d50d9042de"),
        # two steps that read and write the journal would fail Redshift's serializable check
        (True, "LOCK _arbalest_lock_events_82d50d9042de, _arbalest_journal"),
    ],
)
def test_the_lock_bounds_its_wait_then_restores_the_sessions_timeout(
    serializable: bool, locked: str
) -> None:
    conn = Recorder(WarehouseFacts(SYS, serializable))
    backend = RedshiftBackend(sa.create_engine("redshift+psycopg2://"))
    with backend.lock(conn, "events", 2.5):  # type: ignore[arg-type]  # a stand-in
        assert [sql for sql, _ in conn.ran if "information_schema" not in sql] == [
            "SHOW statement_timeout",
            "SET statement_timeout TO 2500",
            locked,
            # the previous value is bound, never pasted into the SQL
            "SELECT set_config('statement_timeout', :value, false)",
        ]
        assert conn.ran[-1][1] == {"value": "30s"}


def test_each_target_has_a_lock_table_of_its_own() -> None:
    names = {lock_table(t).name for t in ("events", "sales.events", "x" * 300, "x" * 301, "")}
    assert len(names) == 5
    # Redshift folds names to lowercase: one table, one lock
    assert lock_table("Events").name == lock_table("events").name
    assert all(len(n.encode()) <= 127 and n.startswith("_arbalest_lock_") for n in names)
    assert lock_table("sales.events").name.startswith("_arbalest_lock_sales_events_")
    assert CREATION_LOCK.name not in names


# -- the load table, and what goes from it into the target ---------------------------------

DATED = sa.Table(
    "dated",
    sa.MetaData(),
    sa.Column("id", sa.String(8), primary_key=True),
    sa.Column("day", sa.Date),
    sa.Column("n", sa.Integer, nullable=False),
)


def test_the_load_table_reads_dates_as_instants_and_keeps_not_null(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from arbalest.backends import _redshift_tables, redshift

    positions = ("_arbalest_chunk", "_arbalest_line", "_arbalest_index")
    monkeypatch.setattr(_redshift_tables, "POSITION_COLUMNS", positions)
    table = redshift.load_table(DATED, "run12345678", frozenset({"day"}), with_position=True)
    ddl = " ".join(str(CreateTable(table).compile(dialect=DIALECT)).split())
    assert ddl.startswith("CREATE TEMPORARY TABLE _arbalest_stage_")
    assert "id VARCHAR(8) NOT NULL" in ddl
    assert "day TIMESTAMP WITH TIME ZONE," in ddl
    assert "n INTEGER NOT NULL" in ddl
    assert "PRIMARY KEY" not in ddl  # a merge loads several records of one key
    assert [c.name for c in table.columns][-3:] == list(positions)
    update = str(redshift.number_rows(table, 7).compile(dialect=DIALECT))
    assert update.startswith(f"UPDATE {table.name} SET _arbalest_chunk=%(_arbalest_chunk)s")
    assert "_arbalest_line=%(_arbalest_line)s, _arbalest_index=%(_arbalest_index)s" in update
    assert update.endswith(f"WHERE {table.name}._arbalest_chunk IS NULL")
    params = redshift.number_rows(table, 7).compile(dialect=DIALECT).params
    assert params == {"_arbalest_chunk": 7, "_arbalest_line": 0, "_arbalest_index": 0}


def test_settling_takes_each_date_in_utc() -> None:
    from arbalest.backends import redshift

    loading = redshift.load_table(DATED, "run12345678", frozenset({"day"}))
    sql = " ".join(
        str(redshift.settle(loading, DATED, frozenset({"day"})).compile(dialect=DIALECT)).split()
    )
    assert sql == (
        f"INSERT INTO dated (id, day, n) SELECT {loading.name}.id, "
        f"CAST(timezone(%(timezone_1)s, {loading.name}.day) AS DATE) AS day, "
        f"{loading.name}.n FROM {loading.name}"
    )


@pytest.mark.parametrize(
    ("column", "code", "expected"),
    [
        ("day", 1206, (1205, "Invalid date format (type DATE)")),
        ("ts", 1206, (1206, "Invalid timestamp format")),
        ("day", 1213, (1213, "Missing data for not-null field")),
    ],
)
def test_a_date_columns_timestamp_errors_are_date_errors(
    column: str, code: int, expected: tuple[int, str]
) -> None:
    from arbalest.backends._redshift_views import _reject

    row = (3, f"{column}   ", "x  ", f"{expected[1]}   ", code)
    reject = _reject(row, "events/a.json", frozenset({"day"}))
    assert (reject.key, reject.line, reject.column, reject.value) == (
        "events/a.json",
        3,
        column,
        "x",
    )
    assert (reject.code, reject.reason) == expected


def test_evolution_statements_are_redshifts() -> None:
    """What evolve=True runs on Redshift: one ADD COLUMN per statement (Redshift adds one
    column per ALTER TABLE), nullable, with its encoding; ALTER COLUMN ... TYPE with no
    USING clause (Redshift refuses one)."""
    from arbalest import Schema, String, Super, TimestampTZ
    from arbalest.pipeline.evolution import add_column, widen_column

    class Base(Schema):
        __abstract__ = True
        metadata = sa.MetaData()

    class Event(Base):
        __tablename__ = "Events"
        __table_args__ = {"schema": "raw"}
        id = String(36, primary_key=True)
        select = String(300, encode="zstd")
        seen_at = TimestampTZ(nullable=False)
        payload = Super()

    table = Event.__table__
    added = [add_column(table, table.c[name], DIALECT) for name in ("seen_at", "payload")]
    assert added == [
        'ALTER TABLE "raw"."Events" ADD COLUMN seen_at TIMESTAMPTZ',
        'ALTER TABLE "raw"."Events" ADD COLUMN payload SUPER',
    ]
    widened = widen_column(table, table.c.select, DIALECT)
    assert widened == 'ALTER TABLE "raw"."Events" ALTER COLUMN "select" TYPE VARCHAR(300)'
    assert add_column(table, table.c.select, DIALECT) == (
        'ALTER TABLE "raw"."Events" ADD COLUMN "select" VARCHAR(300) ENCODE zstd'
    )
    for statement in [*added, widened]:
        parsed = sqlglot.parse_one(statement, read="redshift")
        assert isinstance(parsed, sqlglot.exp.Alter)
        assert "USING" not in statement
        assert "NOT NULL" not in statement


# -- the system views, the lock SQL, and the COPY for a driver that binds on the server ------


@pytest.mark.parametrize("views", [STL, SYS], ids=["stl", "sys"])
def test_the_load_view_queries_are_redshift_sql(views: LoadViews) -> None:
    """Each statement parses as Redshift SQL, reads the view's documented columns, and takes
    its values as bound parameters."""
    documented = {
        "stl_load_errors": {
            "query",
            "session",
            "starttime",
            "line_number",
            "colname",
            "raw_field_value",
            "err_reason",
            "err_code",
        },
        "sys_load_history": {"query_id", "loaded_rows", "error_count"},
        "sys_load_error_detail": {
            "query_id",
            "session_id",
            "start_time",
            "line_number",
            "column_name",
            "error_message",
            "error_code",
        },
    }
    statements = [views.last_copy, views.errors, views.session_errors]
    if views.history is not None:
        statements.append(views.history)
    for sql in statements:
        compiled = str(sa.text(sql).compile(dialect=DIALECT))
        expression = sqlglot.parse_one(
            compiled.replace("%(query)s", "1").replace("%(pid)s", "2"), read="redshift"
        )
        tables = {t.name for t in expression.find_all(sqlglot.exp.Table)}
        columns = {c.name for c in expression.find_all(sqlglot.exp.Column)}
        for table in tables:
            assert columns <= documented[table], (table, columns - documented[table])
        assert tables <= set(documented)
    assert ":query" in views.errors
    assert ":pid" in views.session_errors
    if views is SYS:
        # SYS_ query ids are last_user_query_id()'s, never pg_last_copy_id()'s
        assert "pg_last_copy" not in " ".join(statements)
        assert "last_user_query_id()" in views.last_copy
    else:
        assert "sys_" not in " ".join(statements)


def test_the_probes_and_lock_statements_are_redshift_sql() -> None:
    from arbalest.backends import _redshift_views

    for sql in (_redshift_views._PROBE_STL, _redshift_views._PROBE_ISOLATION):
        sqlglot.parse_one(sql, read="redshift")
    ddl = str(CreateTable(lock_table("sales.events"), if_not_exists=True).compile(dialect=DIALECT))
    created = sqlglot.parse_one(ddl, read="redshift")
    assert created.find(sqlglot.exp.Table).name == lock_table("sales.events").name  # type: ignore[union-attr]
    assert "IF NOT EXISTS" in ddl


def test_a_driver_that_binds_on_the_server_gets_the_copy_with_its_values_written_in() -> None:
    """Redshift refuses parameters in a COPY (``syntax error at or near "$1"``): for
    redshift_connector the statement is compiled with literal values; psycopg2 keeps binds."""
    from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

    from arbalest.backends._redshift_copy import run_copy

    class Conn:
        def __init__(self, dialect: Any) -> None:
            self.dialect = dialect
            self.ran: list[tuple[str, Any]] = []

        def execute(self, statement: Any) -> None:
            self.ran.append(("execute", statement))

        def exec_driver_sql(self, sql: str) -> None:
            self.ran.append(("driver", sql))

    statement = build_copy(
        TABLE,
        ["id", "some_number"],
        manifest_url=MANIFEST,
        jsonpaths_url=JSONPATHS,
        iam_role=ROLE,
        max_error=3,
    )
    connector = Conn(RedshiftDialect_redshift_connector())
    run_copy(connector, statement)  # type: ignore[arg-type]
    ((how, sql),) = connector.ran
    assert how == "driver"
    assert f"FROM '{MANIFEST}'" in sql
    assert f"aws_iam_role={ROLE}" in sql
    assert "%s" not in sql
    assert "%(" not in sql
    assert isinstance(sqlglot.parse_one(" ".join(sql.split()), read="redshift"), sqlglot.exp.Copy)
    psycopg = Conn(DIALECT)
    run_copy(psycopg, statement)  # type: ignore[arg-type]
    assert psycopg.ran == [("execute", statement)]
