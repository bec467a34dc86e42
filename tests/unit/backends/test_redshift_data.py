"""The Data API driver on its own: the warehouse's two forms, binding, polling with backoff
and a timeout, and how the Data API's failures map onto retryable and permanent errors."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import ConfigurationError, RedshiftDataAPI
from arbalest.backends._redshift_driver import (
    Connection,
    OperationalError,
    ProgrammingError,
    bind,
)
from arbalest.backends._redshift_driver import Error as DriverError
from arbalest.pipeline.engines import create_engine

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:unit-9d1e"


class Stuck:
    """A client whose statements run for ``polls`` descriptions, then end as ``status``."""

    def __init__(self, polls: int, status: str = "FINISHED", error: str = "") -> None:
        self.polls, self.status, self.error = polls, status, error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def execute_statement(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("execute_statement", request))
        return {"Id": "s1"}

    batch_execute_statement = execute_statement

    def describe_statement(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("describe_statement", request))
        self.polls -= 1
        if self.polls > 0:
            return {"Id": "s1", "Status": "STARTED"}
        return {"Id": "s1", "Status": self.status, "Error": self.error}

    def cancel_statement(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("cancel_statement", request))
        return {"Status": True}


class Refusing:
    """A client whose every call raises a botocore-shaped error with ``code``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __getattr__(self, name: str) -> Any:
        def call(**request: Any) -> Any:
            error = Exception(f"An error occurred ({self.code}) for {SECRET}")
            error.response = {  # type: ignore[attr-defined]
                "Error": {"Code": self.code, "Message": f"refused for {SECRET}"}
            }
            raise error

        return call


def api(client: Any, **kw: Any) -> RedshiftDataAPI:
    return RedshiftDataAPI(workgroup="wg", database="dev", secret_arn=SECRET, client=client, **kw)


def test_the_python_form_needs_one_of_workgroup_and_cluster() -> None:
    with pytest.raises(ConfigurationError, match="workgroup"):
        RedshiftDataAPI(database="dev")
    with pytest.raises(ConfigurationError, match="not both"):
        RedshiftDataAPI(database="dev", workgroup="wg", cluster="c")
    with pytest.raises(ConfigurationError, match="db_user"):
        RedshiftDataAPI(database="dev", workgroup="wg", db_user="loader")


def test_the_url_form_reads_every_option_and_refuses_unknown_ones() -> None:
    found = RedshiftDataAPI.from_url(
        f"redshift+data:///dev?cluster=c1&db_user=loader&region=eu-west-1&timeout=30"
        f"&secret_arn={SECRET}"
    )
    assert (found.cluster, found.db_user, found.region, found.timeout) == (
        "c1",
        "loader",
        "eu-west-1",
        30.0,
    )
    assert found.secret_arn == SECRET
    with pytest.raises(ConfigurationError, match="workgrup"):
        RedshiftDataAPI.from_url("redshift+data:///dev?workgrup=wg")


def test_the_secret_arn_is_in_no_repr_url_or_engine() -> None:
    given = api(None)
    engine = create_engine(f"redshift+data:///dev?workgroup=wg&secret_arn={SECRET}")
    try:
        shown = [repr(given), str(given.url()), str(engine.url), repr(engine)]
        assert all(SECRET not in text for text in shown)
        assert engine.dialect.name == "redshift"
        assert engine.dialect.driver == "data"
    finally:
        engine.dispose()


def test_values_are_parameters_or_literals_never_pasted_strings() -> None:
    bound = bind(
        "SELECT :a, :b, :c, :d, :e, x::text FROM t",
        {"a": "it's", "b": None, "c": 3, "d": "", "e": True},
        "p1_",
    )
    assert bound.sql == "SELECT :p1_a, NULL, 3, '', TRUE, x::text FROM t"
    assert bound.parameters == {"p1_a": "it's"}


def test_polling_backs_off_until_the_statement_ends() -> None:
    client = Stuck(polls=6)
    conn = Connection(api(client))
    pauses: list[float] = []
    conn.sleep = pauses.append
    conn.run(conn.prepared("SELECT 1", {}))
    assert len(pauses) == 5
    assert pauses == sorted(pauses)
    assert pauses[-1] > pauses[0]


def test_a_statement_past_the_timeout_is_cancelled_and_retryable() -> None:
    client = Stuck(polls=10**9)
    conn = Connection(api(client, timeout=0.01))
    conn.sleep = lambda seconds: None
    with pytest.raises(OperationalError, match="timeout") as caught:
        conn.run(conn.prepared("SELECT 1", {}))
    assert caught.value.lost
    assert ("cancel_statement", {"Id": "s1"}) in client.calls


def test_a_refused_statement_is_not_retryable() -> None:
    client = Stuck(polls=1, status="FAILED", error='ERROR: relation "nope" does not exist')
    conn = Connection(api(client))
    with pytest.raises(ProgrammingError, match="nope") as caught:
        conn.run(conn.prepared("SELECT * FROM nope", {}))
    assert not caught.value.lost


@pytest.mark.parametrize(
    ("code", "lost", "state"),
    [
        ("ThrottlingException", True, ""),
        ("ActiveStatementsExceededException", True, ""),
        ("InternalServerException", True, ""),
        ("AccessDeniedException", False, "42501"),
        ("ResourceNotFoundException", False, "3D000"),
        ("ValidationException", False, ""),
    ],
)
def test_data_api_errors_map_onto_retryable_and_permanent(
    code: str, lost: bool, state: str
) -> None:
    conn = Connection(api(Refusing(code)))
    with pytest.raises(DriverError, match=code) as caught:
        conn.run(conn.prepared("SELECT 1", {}))
    error = caught.value
    assert getattr(error, "lost", None) is lost
    assert getattr(error, "sqlstate", None) == state
    assert SECRET not in str(error)


def test_writes_wait_for_commit_and_go_in_one_batch() -> None:
    client = Stuck(polls=1)
    conn = Connection(api(client))
    cursor = conn.cursor()
    cursor.execute("DELETE FROM t WHERE k = :k", {"k": "a"})
    cursor.executemany(
        "INSERT INTO t (k, n) VALUES (:k, :n)", [{"k": "a", "n": 1}, {"k": "b", "n": 2}]
    )
    assert client.calls == []
    conn.commit()
    ((operation, request), *_) = client.calls
    assert operation == "execute_statement"  # the stub serves both calls
    assert len(request["Sqls"]) == 2
    assert request["Sqls"][1].count("(") == 3  # the column list and two rows
    assert request["SecretArn"] == SECRET
    assert request["WorkgroupName"] == "wg"


def test_a_dialect_engine_compiles_redshift_sql() -> None:
    engine = api(None).engine()
    try:
        table = sa.Table("t", sa.MetaData(), sa.Column("k", sa.String(10)))
        sql = str(sa.select(table).where(table.c.k == "x").compile(engine))
        assert ":k_1" in sql
    finally:
        engine.dispose()
