"""The fast lane through whole pipelines: the same objects loaded with the lane and without
it leave the same table on DuckDB and on PostgreSQL, with the same rejects and drift.

The objects are the benchmark's events (awkward strings, nested objects, a key missing from a
fifth of them) plus lines the lane must leave to the SQL path (rejects, a key no column
reads, a record over two lines), so that both paths meet in one load.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import Pipeline, StepResult
from arbalest.loading import fastlane
from benchmarks.events import Event, _event

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not fastlane.AVAILABLE, reason="fast lane not built"),
]

ODD_LINES = [
    '{"id": "x", "someNumber": "12x"}',  # a reject (BigInt)
    '{"id": "y", "amount": 1e400}',  # a reject (Decimal out of range)
    '{"id": "z", "colour": "red", "child": {"name": "n", "size": 3}}',  # keys no column reads
    '{"id": "w",\n "userId": 7}',  # a record over two lines (the exact reader)
    '{"id": "v", "id": "v2"}',  # a key written twice
    "not json",
]


def _lake(root: Path) -> Path:
    rng = random.Random(7)
    names = ["rows", "optional_code_present", "sum_some_number", "sum_child_depth_level"]
    names += ["active_true", "child_some_boolean_true", "sum_amount_cents"]
    names += ["sum_description_chars", "sum_created_at_epoch_ms"]
    stats: dict[str, int] = dict.fromkeys(names, 0)
    folder = root / "events"
    folder.mkdir(parents=True)
    for part in range(3):
        lines: list[str] = []
        for n in range(400):
            event: dict[str, Any] = _event(rng, stats)
            if n % 7 == 0:
                event.pop("child")
            lines.append(json.dumps(event, ensure_ascii=n % 2 == 0))
        for k, odd in enumerate(ODD_LINES):
            lines.insert(50 * (k + 1) + part, odd)
        (folder / f"part-{part}.json").write_text("\n".join(lines) + "\n")
    return root


def _load(url: str, lake: Path, *, lane: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    monkeypatch.setenv("ARBALEST_FAST_LANE", "1" if lane else "0")
    taken = [0]
    convert = fastlane.Lane.convert

    def counted(self: fastlane.Lane, data: bytes, first_line: int, seq: int) -> Any:
        rows = convert(self, data, first_line, seq)
        taken[0] += rows.table.num_rows
        return rows

    monkeypatch.setattr(fastlane.Lane, "convert", counted)
    engine = sa.create_engine(url)
    try:
        result = (
            Pipeline(engine, store=str(lake))
            .copy(Event, source="events", mode="replace", max_errors=100)
            .run()
        )
        step: StepResult = result.steps[0]
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM events")).fetchall()
    finally:
        engine.dispose()
    rejects = [(r.key, r.line, r.column, r.value, r.reason, r.code) for r in step.rejects]
    # the lane took the plain events (not the lines it must leave), or none when it is off
    assert (taken[0] >= 3 * 400) if lane else taken[0] == 0
    return sorted(map(tuple, rows), key=repr), rejects, step.drift, step.rows_loaded


def test_the_lane_and_the_sql_path_leave_the_same_table(
    module_warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _lake(tmp_path)
    with_lane = _load(module_warehouse_url, lake, lane=True, monkeypatch=monkeypatch)
    without = _load(module_warehouse_url, lake, lane=False, monkeypatch=monkeypatch)
    # the events, plus the odd lines that load (unread keys, two lines, a key twice)
    assert with_lane[3] == 3 * 400 + 3 * 3
    assert with_lane[0] == without[0]
    assert with_lane[1] == without[1]
    assert len(with_lane[1]) == 3 * 3  # 12x, 1e400 and "not json" in each part
    assert with_lane[2] == without[2]
    assert {u.path for u in with_lane[2].unmapped} == {"colour", "child.size"}
