"""The class as text: names, string literals, and the layout ``ruff format`` would give."""

from __future__ import annotations

import ast
import shutil
import subprocess
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from arbalest.inference.render import class_name, members, python_name, render, string
from arbalest.inference.types import Node

RUFF = shutil.which("ruff")


def text_for(*records: dict[str, Any], name: str = "Thing") -> str:
    root = Node()
    for record in records:
        root.add(record)
    return render(name, members(root), records=len(records), header="a test")


def schema(text: str) -> Any:
    """Execute the text with the class on a MetaData of its own."""
    text = text.replace("(Schema):\n", "(Schema):\n    metadata = sa.MetaData()\n", 1)
    namespace: dict[str, Any] = {"sa": sa}
    exec(compile(text, "<inferred>", "exec"), namespace)
    return namespace["Thing"]


def ruff_format(text: str) -> str:
    assert RUFF is not None
    done = subprocess.run(
        [RUFF, "format", "--isolated", "-"], input=text, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("createdAt", "created_at"),
        ("HTMLUrl", "html_url"),
        ("user.name", "user_name"),
        ("Score Card", "score_card"),
        ("a-b", "a_b"),
        ("2fa", "f_2fa"),
        ("class", "class_"),
        ("naïve", "naive"),
        ("東京", "field"),
        ("$", "field"),
        ("__proto__", "proto"),
    ],
)
def test_python_names_are_snake_case_identifiers(key: str, name: str) -> None:
    assert python_name(key, top=False) == name


@pytest.mark.parametrize("key", ["metadata", "from_json", "to_json", "row"])
def test_names_schemas_reserve_get_an_underscore_at_the_top(key: str) -> None:
    assert python_name(key, top=True) == key + "_"
    assert python_name(key, top=False) == key


@pytest.mark.parametrize(
    ("segment", "name"),
    [("events", "Events"), ("github-events", "GithubEvents"), ("2015-01-01", "Record20150101")],
)
def test_class_names_come_from_the_source(segment: str, name: str) -> None:
    assert class_name(segment) == name


@given(st.text(st.characters(codec="utf-8")))
def test_string_literals_are_ascii_and_read_back(text: str) -> None:
    literal = string(text)
    assert literal.isascii()
    assert ast.literal_eval(literal) == text


def test_keys_that_are_not_names_get_key_and_columns_stay_unique() -> None:
    text = text_for(
        {"userId": 1, "user_id": "a", "Name": "x", "name": "y", "a_b": 1, "a": {"b": 2}},
        {"metadata": {"row": 1}, "it's": 'say "hi"', "": 5},
    )
    thing = schema(text)
    assert [c.name for c in thing.__table__.columns] == [
        "user_id",
        "user_id_2",
        "name",
        "name_2",
        "a_b",
        "a_b_2",
        "metadata__row",  # the nested class is metadata_
        "it_s",
    ]
    assert thing.__jsonpaths__["jsonpaths"][-2:] == ["$['metadata']['row']", "$['it\\'s']"]
    assert '# left out "", null 50%: the empty key' in text


def test_each_field_says_its_null_share_and_no_primary_key_is_chosen() -> None:
    text = text_for({"a": 1, "b": None}, {"a": None}, {"a": 2, "c": "x"}, {"a": 3})
    assert "a = Integer()  # null 25%" in text
    assert "b = Super()  # null 100%: no value seen; Super takes any" in text
    assert "c = String(32)  # null 75%" in text
    assert "primary_key=True" not in text.replace("with\n    # primary_key=True", "")
    assert not any(c.primary_key for c in schema(text).__table__.columns)


def test_deep_long_keys_give_columns_within_127_bytes() -> None:
    record: dict[str, Any] = {"v": 1}
    for depth in range(7):
        record = {"k" * 50 + str(depth): record}
    thing = schema(text_for(record))
    (column,) = thing.__table__.columns
    assert len(column.name) <= 127


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed")
def test_the_text_is_what_ruff_format_makes_of_it() -> None:
    text = text_for(
        {
            "short": 1,
            "k" * 70: "long key, comment moves up",
            "x" * 90: "longer key, arguments on their own line",
            "y" * 200: "a key longer than a line",
            "nested object with a long name": {"inner-key": {"deeper": True}, "plain": 1.5},
            "after": [1],
        },
        {"short": None},
    )
    assert ruff_format(text) == text


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed")
@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    st.lists(
        st.dictionaries(
            st.text(st.characters(codec="utf-8"), max_size=100),
            st.none()
            | st.integers()
            | st.text(max_size=5)
            | st.dictionaries(st.text(max_size=30), st.integers(), max_size=3),
            min_size=1,
            max_size=6,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_random_classes_are_formatted_and_valid(records: list[dict[str, Any]]) -> None:
    text = text_for(*records)
    ast.parse(text)
    assert ruff_format(text) == text
