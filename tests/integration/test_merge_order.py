"""Merge order is total: the newest record for a key wins by object (last modified, then
key), line, and place among the records ending on that line; on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbalest import Integer, Pipeline, Schema, String


@pytest.fixture
def event(make_event: Callable[..., Any]) -> Any:
    return make_event(id=String(8, primary_key=True))


def put(lake: Path, key: str, text: str, mtime: float) -> None:
    path = lake / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def merged(warehouse: sa.Engine, lake: Path, event: Any) -> dict[str, int]:
    result = Pipeline(warehouse, store=lake).copy(event, "m", mode="merge").run()
    assert result.steps[0].rejects == []
    with warehouse.connect() as conn:
        return {str(k): int(n) for k, n in conn.execute(sa.text("SELECT id, n FROM events"))}


def one_line(*records: dict[str, Any]) -> str:
    return " ".join(json.dumps(r) for r in records)


def test_several_records_for_one_key_on_one_line_resolve_to_the_last(
    warehouse: sa.Engine, tmp_path: Path, event: Any
) -> None:
    lines = [
        one_line(*({"id": "a", "n": n} for n in range(40))),
        # a record spanning lines ends on a line where two more begin, and one ends
        '{"id": "b", "n": 1} {\n"id": "b",\n"n": 2\n} {\n"id": "b", "n": 3} {"id": "b", "n": 4}',
        one_line({"id": "c", "n": 1}, {"id": "a", "n": 99}, {"id": "c", "n": 2}),
    ]
    put(tmp_path, "m/x.json", "\n".join(lines) + "\n", mtime=1_000)
    assert merged(warehouse, tmp_path, event) == {"a": 99, "b": 4, "c": 2}


def test_the_last_line_wins_over_the_last_place_on_an_earlier_line(
    warehouse: sa.Engine, tmp_path: Path, event: Any
) -> None:
    text = one_line(*({"id": "a", "n": n} for n in range(5, 10))) + '\n{"id": "a", "n": 1}\n'
    put(tmp_path, "m/x.json", text, mtime=1_000)
    assert merged(warehouse, tmp_path, event) == {"a": 1}


def test_objects_are_ordered_by_last_modified_then_key_whatever_their_lines(
    warehouse: sa.Engine, tmp_path: Path, event: Any
) -> None:
    # the newest object holds its record on its first line, the others on later lines
    put(tmp_path, "m/a.json", "\n" * 5 + one_line({"id": "k", "n": 1}, {"id": "t", "n": 1}), 3_000)
    put(tmp_path, "m/b.json", "\n" * 9 + one_line({"id": "k", "n": 2}, {"id": "t", "n": 2}), 1_000)
    put(tmp_path, "m/c.json", one_line({"id": "k", "n": 3}, {"id": "t", "n": 3}), 5_000)
    # same last modified: the later key wins
    put(tmp_path, "m/e.json", one_line({"id": "s", "n": 2}, {"id": "s", "n": 3}), 2_000)
    put(tmp_path, "m/d.json", "\n\n" + one_line({"id": "s", "n": 1}), 2_000)
    assert merged(warehouse, tmp_path, event) == {"k": 3, "t": 3, "s": 3}


class Keyed(Schema):
    """The same table as ``event``, for a property test (one warehouse per example)."""

    __tablename__ = "events"
    metadata = sa.MetaData()
    id = String(8, primary_key=True)
    n = Integer()


@st.composite
def object_sets(draw: st.DrawFn) -> tuple[dict[str, tuple[str, float]], dict[str, int]]:
    """Objects (key -> (text, last modified)) of numbered records for a few keys, laid out
    several to a line, one to a line and pretty-printed; and the newest number of each key."""
    objects: dict[str, tuple[str, float]] = {}
    order: list[tuple[float, str, int, str, int]] = []  # (modified, key, place, id, n)
    for name in draw(st.lists(st.sampled_from("pqrs"), min_size=1, max_size=3, unique=True)):
        mtime = draw(st.sampled_from([1_000.0, 2_000.0]))  # ties are broken by the key
        ids = draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=12))
        text = ""
        for place, id_ in enumerate(ids):
            record = {"id": id_, "n": place}
            order.append((mtime, f"m/{name}.json", place, id_, place))
            layout = draw(st.sampled_from([" ", "\n", "pretty"]))
            if layout == "pretty":
                text += json.dumps(record, indent=draw(st.sampled_from([0, 2]))) + " "
            else:
                text += json.dumps(record) + layout
        objects[f"m/{name}.json"] = (text, mtime)
    newest = {id_: n for *_, id_, n in sorted(order)}  # the last of each key, in load order
    return objects, newest


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=object_sets())
def test_the_newest_record_of_each_key_wins_on_duckdb(
    data: tuple[dict[str, tuple[str, float]], dict[str, int]],
) -> None:
    objects, newest = data
    with tempfile.TemporaryDirectory() as folder:
        lake = Path(folder) / "lake"
        for key, (text, mtime) in objects.items():
            put(lake, key, text, mtime)
        engine = sa.create_engine(f"duckdb:///{Path(folder) / 'warehouse.duckdb'}")
        try:
            assert merged(engine, lake, Keyed) == newest
        finally:
            engine.dispose()
