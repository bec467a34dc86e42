"""Run conversion rules through both forms: Python, and DuckDB SQL over a column."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import duckdb

from arbalest import convert

Outcome = tuple[Any, int | None]  # (value, error code)

_CONNECTION: duckdb.DuckDBPyConnection | None = None


def connection() -> duckdb.DuckDBPyConnection:
    global _CONNECTION
    if _CONNECTION is None:
        _CONNECTION = duckdb.connect()
        _CONNECTION.execute("SET TimeZone = 'UTC'")
    return _CONNECTION


def run_python(
    rule: convert.Rule, texts: Sequence[Any], options: convert.ConvertOptions
) -> list[Outcome]:
    out: list[Outcome] = []
    for text in texts:
        try:
            out.append((rule.python(text, options), None))
        except convert.Rejected as rejected:
            out.append((None, rejected.code))
    return out


def run_sql(
    rule: convert.Rule, texts: Sequence[Any], options: convert.ConvertOptions
) -> list[Outcome]:
    con = connection()
    column_type = "JSON" if rule.takes_json else "VARCHAR"
    con.execute(f"CREATE OR REPLACE TEMP TABLE inp (i INTEGER, s {column_type})")
    if rule.takes_json:
        rows = [(i, None if t is None else convert.json_dumps(t)) for i, t in enumerate(texts)]
    else:
        rows = list(enumerate(texts))
    if rows:
        con.executemany("INSERT INTO inp VALUES (?, ?)", rows)
    query = (
        f"SELECT v, {rule.sql_error('s', 'v', options)} FROM "
        f"(SELECT i, s, {rule.sql_value('s', options)} AS v FROM inp) ORDER BY i"
    )
    result = con.execute(query).fetchall()
    if rule.takes_json:
        import json

        result = [(None if v is None else json.loads(v), code) for v, code in result]
    return [(_normalise(v), code) for v, code in result]


def _normalise(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value
