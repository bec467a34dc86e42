"""The drift report: JSON keys no column reads (with the share of records that had them) and
columns no record filled, in ``StepResult.drift``, the summary and ``to_dict()``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import Drift, Integer, Nested, Pipeline, Schema, String, UnmappedPath
from arbalest.schema.jsonpath import display_path


def put(root: Path, key: str, records: list[dict[str, Any]], *, indent: int | None = None) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, indent=indent) + "\n" for r in records))


@pytest.fixture
def event(base: type[Schema]) -> type[Schema]:
    class Event(base):  # type: ignore[valid-type,misc]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        n = Integer()

        class child(Nested):
            name = String(20)

            class depth(Nested):
                level = Integer()

    return Event


def test_new_keys_at_the_root_and_nested_with_their_share(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    put(
        tmp_path,
        "events/a.json",
        [
            {"id": "a", "n": 1, "colour": "red", "child": {"name": "x", "depth": {"level": 1}}},
            {"id": "b", "n": 2, "child": {"name": "y", "age": 3, "depth": {"level": 2, "z": 0}}},
            {"id": "c", "n": 3, "colour": None, "extra": {"deep": {"er": 1}}},
            {"id": "d", "n": 4, "child": {"name": "w", "depth": None}},
        ],
    )
    step = Pipeline(warehouse, store=tmp_path).copy(event, "events").run().steps[0]
    assert step.rows_loaded == 4
    assert step.drift == Drift(
        (
            UnmappedPath("colour", 2, 0.5),
            UnmappedPath("child.age", 1, 0.25),
            UnmappedPath("child.depth.z", 1, 0.25),
            UnmappedPath("extra", 1, 0.25),  # an unread object: once, not its keys
        ),
        (),
    )


def test_keys_with_dots_and_spaces_are_written_as_one_key(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    put(tmp_path, "events/a.json", [{"id": "a", "a.b": 1, "first name": "x", "it's": 2}])
    step = Pipeline(warehouse, store=tmp_path).copy(event, "events").run().steps[0]
    assert step.drift is not None
    assert {u.path for u in step.drift.unmapped} == {"['a.b']", "['first name']", "['it\\'s']"}
    assert display_path(("child", "a.b")) == "child['a.b']"


def test_pretty_printed_records_count_too(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    put(tmp_path, "events/a.json", [{"id": "a", "new": 1}, {"id": "b"}], indent=2)
    put(tmp_path, "events/b.json", [{"id": "c", "new": 1}, {"id": "d"}])
    step = Pipeline(warehouse, store=tmp_path).copy(event, "events").run().steps[0]
    assert step.rows_loaded == 4
    assert step.drift is not None
    assert step.drift.unmapped == (UnmappedPath("new", 2, 0.5),)


def test_keys_of_rejected_records_are_not_counted(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    # the report describes the records loaded: a rejected record is in step.rejects
    put(tmp_path, "events/a.json", [{"id": "a", "n": "x", "only_here": 1}, {"id": "b", "n": 1}])
    pipeline = Pipeline(warehouse, store=tmp_path).copy(event, "events", max_errors=1)
    step = pipeline.run().steps[0]
    assert (step.rows_loaded, step.rows_rejected) == (1, 1)
    assert step.drift is not None
    assert step.drift.unmapped == ()


def test_unfilled_columns_match_the_warning(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    put(tmp_path, "events/a.json", [{"id": "a", "n": 1}])
    result = Pipeline(warehouse, store=tmp_path).copy(event, "events").run()
    step = result.steps[0]
    assert step.drift is not None
    assert step.drift.unfilled == ("child_name", "child_depth_level")
    assert len(step.warnings) == 2
    assert result.to_dict()["steps"][0]["drift"] == {
        "unmapped": [],
        "unfilled": ["child_name", "child_depth_level"],
    }


def test_the_summary_names_unmapped_keys(
    warehouse: sa.Engine, tmp_path: Path, event: type[Schema]
) -> None:
    put(tmp_path, "events/a.json", [{"id": "a", "n": 1, "colour": 1, "child": {"name": "x"}}])
    put(tmp_path, "events/b.json", [{"id": "b", "n": 1, "child": {"name": "x"}}])
    result = Pipeline(warehouse, store=tmp_path).copy(event, "events").run()
    assert "copy events (incremental): drift: JSON key 'colour' is read by no column (50% of " in (
        str(result)
    )
    assert result.to_dict()["steps"][0]["drift"]["unmapped"] == [
        {"path": "colour", "records": 1, "share": 0.5}
    ]
