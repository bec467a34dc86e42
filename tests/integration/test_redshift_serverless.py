"""Redshift Serverless: no ``STL_`` tables, so rows and rejects come from ``SYS_LOAD_HISTORY``
and ``SYS_LOAD_ERROR_DETAIL``, through the stand-in of tests/fixtures/redshift.py with those
views as tables (and no ``pg_last_copy_id()``: a statement that used ``STL`` would fail)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import (
    CopyError,
    Pipeline,
    Schema,
    String,
    TooManyRejectsError,
    journal,
)
from arbalest.backends._redshift_views import SYS, read_back
from arbalest.convert import BAD_DATE, DateRule
from tests.fixtures.lakes import put_s3
from tests.fixtures.redshift import ROLE, SYS_QUERY_OFFSET
from tests.fixtures.servers import redshift_stand_in

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def pipeline(standin: Any, bucket: str, event: Any, **kw: Any) -> Pipeline:
    return Pipeline(standin.engine, store=f"s3://{bucket}/lake", iam_role=ROLE).copy(
        event, "events", **kw
    )


def statements(engine: sa.Engine) -> list[str]:
    """Every statement the engine runs from now on (the list fills as it runs)."""
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda c, cur, sql, *rest: seen.append(sql))
    return seen


@pytest.mark.parametrize("kind", ["provisioned", "serverless"])
def test_rows_and_rejects_are_the_same_on_serverless_and_provisioned(
    kind: str, postgres_schema: str, s3_endpoint: str, s3_bucket: str, event: Any
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "b1", "n": 2}, {"n": 3}, {"id": "b3"}])
    with redshift_stand_in(postgres_schema, serverless=kind == "serverless") as standin:
        seen = statements(standin.engine)
        result = pipeline(standin, s3_bucket, event, max_errors=2).run()
        with standin.engine.connect() as conn:
            entries = conn.execute(
                sa.select(
                    journal.JOURNAL.c.key,
                    journal.JOURNAL.c.rows_loaded,
                    journal.JOURNAL.c.rows_rejected,
                ).order_by(journal.JOURNAL.c.key)
            ).all()
    step = result.steps[0]
    assert (step.objects_loaded, step.rows_loaded, step.rows_rejected) == (2, 3, 2)
    assert [(r.key, r.line, r.column, r.code) for r in step.rejects] == [
        ("events/a.json", 2, "n", 1207),
        ("events/b.json", 2, "id", 1213),
    ]
    assert [tuple(e) for e in entries] == [("events/a.json", 1, 1), ("events/b.json", 2, 1)]
    used = " ".join(seen).lower()
    if kind == "serverless":
        # SYS_LOAD_ERROR_DETAIL keeps no raw value
        assert [r.value for r in step.rejects] == [None, None]
        assert "sys_load_error_detail" in used
        assert "sys_load_history" in used
        assert "pg_last_copy" not in used
    else:
        assert [r.value for r in step.rejects] == ["x", None]
        assert "sys_load" not in used


def test_a_serverless_copy_with_too_many_rejects_reads_them_from_the_session(
    redshift_serverless: Any, s3_bucket: str, event: Any
) -> None:
    put_s3(
        s3_bucket, "lake/events/a.json", [{"id": "a"}, {"id": "b", "n": "x"}, {"id": "c", "n": "y"}]
    )
    with pytest.raises(TooManyRejectsError) as info:
        pipeline(redshift_serverless, s3_bucket, event, max_errors=1).run()
    assert [(r.line, r.column, r.code) for r in info.value.rejects] == [
        (2, "n", 1207),
        (3, "n", 1207),
    ]
    with redshift_serverless.engine.connect() as conn:
        assert not journal.table_exists(conn, event.__table__)


def test_counts_wait_for_sys_load_history_to_record_the_copy(
    postgres_schema: str, s3_endpoint: str, s3_bucket: str, event: Any
) -> None:
    """Redshift's monitoring views may record a statement a moment after it returns."""
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": 2}])
    with redshift_stand_in(postgres_schema, serverless=True, history_lag=0.4) as standin:
        started = time.monotonic()
        result = pipeline(standin, s3_bucket, event).run()
        waited = time.monotonic() - started
    assert result.rows_loaded == 2
    assert waited >= 0.4  # it did wait, rather than count nothing


def test_a_copy_sys_load_history_never_records_fails_the_step_but_not_a_validation(
    postgres_schema: str,
    s3_endpoint: str,
    s3_bucket: str,
    event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from arbalest.backends import _redshift_views

    monkeypatch.setattr(_redshift_views, "_LAG_SECONDS", 0.3)
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}])
    with redshift_stand_in(postgres_schema, serverless=True, history_lag=None) as standin:
        with pytest.raises(CopyError, match=r"has not recorded the COPY of events/a\.json"):
            pipeline(standin, s3_bucket, event).run()
        with standin.engine.connect() as conn:
            assert not journal.table_exists(conn, event.__table__)
        # NOLOAD loads nothing to count: its rejects are what a validation is after
        assert pipeline(standin, s3_bucket, event).validate().rows_loaded == 0


def test_validate_on_serverless_counts_rejects_and_keeps_nothing(
    redshift_serverless: Any, s3_bucket: str, event: Any
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a"}, {"id": "b", "n": "x"}])
    result = pipeline(redshift_serverless, s3_bucket, event, max_errors=1).validate()
    assert result.rows_rejected == 1
    assert redshift_serverless.copies[0]["no_load"] is True
    with redshift_serverless.engine.connect() as conn:
        assert not journal.table_exists(conn, journal.JOURNAL)


def test_the_warehouse_is_probed_once_per_connection(
    redshift_serverless: Any, s3_bucket: str, base: type[Schema]
) -> None:
    p = Pipeline(redshift_serverless.engine, store=f"s3://{s3_bucket}/lake", iam_role=ROLE)
    for name in ("one", "two", "three"):
        table: Any = type(name.title(), (base,), {"__tablename__": name, "id": String(8)})
        put_s3(s3_bucket, f"lake/{name}/a.json", [{"id": name}])
        p = p.copy(table, name)
    seen = statements(redshift_serverless.engine)
    assert p.run().rows_loaded == 3
    assert sum("stl_load_errors" in s for s in seen) == 1
    assert sum("stv_db_isolation_level" in s for s in seen) == 1


# -- the SYS_ queries, run against tables shaped like the views ------------------------------


def test_sys_rows_map_onto_rejects(redshift_serverless: Any) -> None:
    """Padded CHAR columns are trimmed, rows come in time and line order, a DATE column's
    bad value is the local rule's 1205, and the COPY is the one ``last_user_query_id()``
    names (not another session's, not another COPY's)."""
    engine = redshift_serverless.engine
    with redshift_serverless.side.begin() as side:
        side.exec_driver_sql(
            "INSERT INTO standin_copies (query, pid, rows) VALUES (7, pg_backend_pid() + 1, 0)"
        )
    with engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        query = 41 + SYS_QUERY_OFFSET
        with redshift_serverless.side.begin() as side:
            side.execute(
                sa.text("INSERT INTO standin_copies (query, pid, rows) VALUES (41, :pid, 5)"),
                {"pid": pid},
            )
            side.execute(
                sa.text(
                    "INSERT INTO sys_load_history (query_id, session_id, loaded_rows, "
                    "error_count) VALUES (:q, :pid, 5, 3), (:q + 1, :pid, 99, 0)"
                ),
                {"q": query, "pid": pid},
            )
            side.execute(
                sa.text(
                    "INSERT INTO sys_load_error_detail (query_id, session_id, start_time, "
                    "file_name, line_number, column_name, error_code, error_message) VALUES "
                    "(:q, :pid, '2024-01-01 00:00:02', 's3://b/a.json', 9, 'n', 1207, "
                    "'Invalid digit, Value ''x'', Pos 0, Type: Integer'), "
                    "(:q, :pid, '2024-01-01 00:00:01', 's3://b/a.json', 4, 'day', 1206, "
                    "'Invalid timestamp format or value'), "
                    "(:q, :pid, '2024-01-01 00:00:02', 's3://b/a.json', 3, '', 1224, "
                    "'Invalid JSONPath format'), "
                    "(:q + 1, :pid, '2024-01-01 00:00:00', 's3://b/b.json', 1, 'n', 1207, 'no')"
                ),
                {"q": query, "pid": pid},
            )
        rows, rejects, _ = read_back(conn, SYS, "copy dated", "a.json", frozenset({"day"}))
    assert rows == 5
    assert [(r.key, r.line, r.column, r.value, r.code) for r in rejects] == [
        ("a.json", 4, "day", None, 1205),
        ("a.json", 3, None, None, 1224),
        ("a.json", 9, "n", None, 1207),
    ]
    assert rejects[2].reason == "Invalid digit, Value 'x', Pos 0, Type: Integer"
    assert rejects[0].reason == DateRule().reason(BAD_DATE)
