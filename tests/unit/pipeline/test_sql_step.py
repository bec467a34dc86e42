"""``sql()`` takes statements as DESIGN.md promises, and runs them as written."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from arbalest import ConfigurationError, Pipeline


@pytest.fixture
def warehouse(tmp_path: Path) -> str:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (a INTEGER, b VARCHAR)"))
    engine.dispose()
    return url


def rows(url: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT a, b FROM t ORDER BY a"))]
    finally:
        engine.dispose()


def test_a_text_whose_values_are_bound_runs_with_them(warehouse: str) -> None:
    statement = sa.text("INSERT INTO t VALUES (:a, :b)").bindparams(a=1, b="one")
    Pipeline(warehouse).sql(statement).run()
    assert rows(warehouse) == [(1, "one")]


def test_bound_and_keyword_values_together(warehouse: str) -> None:
    statement = sa.text("INSERT INTO t VALUES (:a, :b)").bindparams(b="two")
    pipeline = Pipeline(warehouse).sql(statement, sa.text("DELETE FROM t WHERE a < :a"), a=2)
    pipeline.run()
    assert rows(warehouse) == [(2, "two")]


def test_a_value_bound_to_none_is_a_value(warehouse: str) -> None:
    Pipeline(warehouse).sql(sa.text("INSERT INTO t VALUES (1, :b)").bindparams(b=None)).run()
    assert rows(warehouse) == [(1, None)]


def test_a_bound_parameter_without_a_value_is_still_missing(warehouse: str) -> None:
    typed = sa.text("INSERT INTO t VALUES (:a, 'x')").bindparams(
        sa.bindparam("a", type_=sa.Integer)
    )
    with pytest.raises(ConfigurationError, match=r"no value for parameter\(s\) a .*bindparams"):
        Pipeline(warehouse).sql(typed)
    Pipeline(warehouse).sql(typed, a=3).run()
    assert rows(warehouse) == [(3, "x")]
