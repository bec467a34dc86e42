"""Parsing and writing Redshift JSONPaths, and their DuckDB form."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbalest import SchemaError
from arbalest.schema.jsonpath import duckdb_path, format_path, parse_path


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("$['a']", ("a",)),
        ("$['a']['b']", ("a", "b")),
        ("$.a.b", ("a", "b")),
        ("$['tags'][0]", ("tags", 0)),
        ("$.tags[12]", ("tags", 12)),
        ("$['some.dotted.key']", ("some.dotted.key",)),
        ('$["double"]', ("double",)),
        ("$['it\\'s']", ("it's",)),
        ("$[ 'spaced' ][ 3 ]", ("spaced", 3)),
        ("$['é ü']", ("é ü",)),
    ],
)
def test_parse(text: str, steps: tuple[object, ...]) -> None:
    assert parse_path(text) == steps


@pytest.mark.parametrize(
    "bad", ["a", "$", "$[0]", "$.a['b']", "$['a'][-1]", "$['a'][*]", "$..a", "$['']", "$['a"]
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(SchemaError):
        parse_path(bad)


_keys = st.text(min_size=1, max_size=8)
_paths = st.tuples(_keys).flatmap(
    lambda first: st.lists(st.one_of(_keys, st.integers(0, 5)), max_size=3).map(
        lambda rest: (*first, *rest)
    )
)


@given(_paths)
def test_format_then_parse_round_trips(path: tuple[str | int, ...]) -> None:
    assert parse_path(format_path(path)) == path


@given(_paths, st.integers(0, 99))
def test_duckdb_path_picks_the_same_value(path: tuple[str | int, ...], marker: int) -> None:
    document: object = marker
    for step in reversed(path):
        document = [None] * step + [document] if isinstance(step, int) else {step: document}
    import json

    ((value,),) = duckdb.execute(
        "SELECT json_extract_string(?, ?)", [json.dumps(document), duckdb_path(path)]
    ).fetchall()
    assert value == str(marker)
