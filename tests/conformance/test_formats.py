"""The Parquet and CSV conformance table runs on every warehouse Arbalest feeds, with
identical results (``format_cases``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import Pipeline, PipelineError, TooManyRejectsError, journal
from arbalest.loading import csv_feed, tabular_feed
from tests.conformance.format_cases import CASES, Case
from tests.conformance.test_conformance import expected_rows, table_rows, write_objects


@pytest.fixture(params=["whole", "small chunks"])
def chunking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Objects in one chunk each, and CSV cut every 2 records and Parquet at every row
    group: rows and rejects must not change."""
    if request.param == "small chunks":
        monkeypatch.setattr(csv_feed, "CSV_CHUNK_ROWS", 2)
        monkeypatch.setattr(tabular_feed, "PARQUET_CHUNK_BYTES", 1)
    return str(request.param)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_case(
    case: Case,
    warehouse: sa.Engine,
    tmp_path: Path,
    chunking: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_objects(tmp_path, case.objects)
    lane: list[bool] = []  # per chunk the lane was tried on: whether it took it
    tried = tabular_feed._lane_at

    def spy(*args: Any) -> Any:
        rows = tried(*args)
        lane.append(rows is not None)
        return rows

    monkeypatch.setattr(tabular_feed, "_lane_at", spy)
    pipeline = Pipeline(warehouse, store=tmp_path).copy(case.schema, source="in", **case.options)
    if case.error is not None:
        with pytest.raises(PipelineError) as raised:
            pipeline.run()
        assert not isinstance(raised.value, TooManyRejectsError)
        assert case.error in str(raised.value)
        assert raised.value.step == f"copy {case.schema.__tablename__} (incremental)"
        with warehouse.connect() as conn:  # nothing of the step was committed
            assert not journal.table_exists(conn, case.schema.__table__)
        return
    if case.fails:
        with pytest.raises(TooManyRejectsError) as info:
            pipeline.run()
        rejects = info.value.rejects
        with warehouse.connect() as conn:
            assert not journal.table_exists(conn, case.schema.__table__)
    else:
        result = pipeline.run()
        rejects = result.steps[0].rejects
        assert table_rows(warehouse, case.schema) == expected_rows(case.schema, case.rows)
        assert result.rows_loaded == len(case.rows)
        assert result.rows_rejected == len(case.rejects)
        assert result.steps[0].objects_loaded == len(case.objects)
    got = [(r.key.removeprefix("in/"), r.line, r.column, r.code) for r in rejects]
    assert got == case.rejects
    if case.lane:  # the lane left the chunks with a reject to the query
        assert False in lane
        if chunking == "small chunks":  # and took the others of the same object
            assert lane.count(True) > lane.count(False)
    for reject in rejects:
        assert reject.reason
