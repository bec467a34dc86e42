"""``to_dict()`` and ``--json``: the layout docs/cli.md documents, key for key."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from arbalest.cli.output import status_dict
from arbalest.journal import TargetStatus
from arbalest.pipeline import Drift, Plan, PlanStep, Reject, RunResult, StepResult, UnmappedPath

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def documented() -> dict[str, dict[str, Any]]:
    """The JSON examples of docs/cli.md's "JSON output" section, by command (and "error")."""
    section = DOC.read_text().split("## JSON output", 1)[1].split("\n## ", 1)[0]
    found: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"```json\n(.*?)```", section, re.S):
        example = json.loads(block)
        found["error" if "error" in example else example["command"]] = example
    return found


def shape(value: Any) -> Any:
    """The keys of a document, all the way down (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if value is not None else None


def same_keys(actual: Any, example: Any) -> None:
    if isinstance(example, dict):
        assert isinstance(actual, dict)
        assert set(actual) == set(example)
        for key in example:
            same_keys(actual[key], example[key])
    elif isinstance(example, list) and example and actual:
        same_keys(actual[0], example[0])


REJECT = Reject("events/a.json", 2, "n", "x", "Invalid digit (type INTEGER)", 1207)
WARNING = "no record had the key 'createdAt'; records have 'created_at'"
COPY = StepResult(
    "copy events (incremental)",
    "events",
    1,
    1,
    1,
    [REJECT],
    0.0912345,
    warnings=[WARNING],
    drift=Drift((UnmappedPath("created_at", 1, 1.0),), ("created_at",)),
)
SQL = StepResult("sql: CREATE OR REPLACE TABLE n AS SELECT c...", None, 0, 0, 0, [], 0.001)


def test_a_run_result_is_the_documented_document() -> None:
    result = RunResult([COPY, SQL])
    document = result.to_dict()
    assert json.loads(json.dumps(document)) == document  # plain JSON values only
    example = documented()["run"]
    same_keys(document, example)
    assert shape(document) == shape(example)
    assert document["steps"][0]["rejects"][0] == example["steps"][0]["rejects"][0]
    assert document["steps"][0]["warnings"] == example["steps"][0]["warnings"] == [WARNING]
    assert document["steps"][0]["drift"] == example["steps"][0]["drift"]
    assert document["steps"][1]["drift"] is None
    assert document["seconds"] == round(COPY.seconds + SQL.seconds, 3)
    assert (document["rows_loaded"], document["rows_rejected"]) == (1, 1)


def test_a_validation_says_so() -> None:
    document = RunResult([COPY], validated=True).to_dict()
    assert (document["command"], document["validated"]) == ("validate", True)


def test_a_plan_is_the_documented_document() -> None:
    ddl = "CREATE TABLE events (\n\tid VARCHAR(36) NOT NULL, \n\tn INTEGER, \n\tPRIMARY KEY (id)\n)"
    plan = Plan(
        [
            PlanStep("copy events (incremental)", "events", ddl=[ddl], keys=["events/a.json"]),
            PlanStep(
                "sql: CREATE OR REPLACE TABLE n AS SELECT c...",
                None,
                sql=["CREATE OR REPLACE TABLE n AS SELECT count(*) AS c FROM events"],
            ),
        ]
    )
    document = plan.to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document == documented()["plan"]  # the doc's example is this plan, exactly


def test_a_status_is_the_documented_document() -> None:
    when = dt.datetime(2026, 12, 4, 21, 44, 55, 712709, tzinfo=dt.UTC)
    document = status_dict([TargetStatus("events", 1, 1, 1, when)], ["events", "never"])
    example = documented()["status"]
    assert document["targets"][0] == example["targets"][0]
    assert document["targets"][1] == {
        "target": "never",
        "objects": 0,
        "rows_loaded": 0,
        "rows_rejected": 0,
        "last_loaded_at": None,
    }
    same_keys(document, example)


def test_many_keys_are_all_there() -> None:
    keys = [f"events/{n}.json" for n in range(25)]
    document = Plan([PlanStep("copy events (incremental)", "events", keys=keys)]).to_dict()
    assert document["steps"][0]["keys"] == keys  # not the first 20 of the text
    assert document["objects_to_load"] == 25
