"""A step that fails while batches are being converted: the caller gets the failure itself
(too many rejects, Ctrl-C, the warehouse's refusal), never an error of the converting threads
(DuckDB's "connection is busy"), and the load's scratch folders are gone.

It is a race between the failure and the converting threads, so each case runs many times,
with small chunks and batches so that several batches are in flight when it happens.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import (
    CopyError,
    Pipeline,
    PipelineError,
    TooManyRejectsError,
)
from arbalest.backends import base as backend_base
from arbalest.loading import reader
from arbalest.loading.reader import Chunk
from arbalest.loading.transform import Batch, Transform
from arbalest.pipeline.result import StepResult
from arbalest.stores.base import ObjectInfo
from tests.fixtures.schemas import Event

pytestmark = pytest.mark.duckdb

ROUNDS = 30
OBJECTS = 8
RECORDS = 600
HEAVY_ROWS = 5_000_000  # a query of some 0.05 s, times the batch's first chunk number


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """Objects of a few dozen KB; the first one's first record has a bad ``n``."""
    root = tmp_path / "lake"
    (root / "events").mkdir(parents=True)
    for k in range(OBJECTS):
        rows: list[dict[str, Any]] = [{"id": f"{k}-{i}", "n": i} for i in range(RECORDS)]
        if k == 0:
            rows[0]["n"] = "not a number"
        (root / "events" / f"{k:03d}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 KB and batches of 8 KB: many batches, several converting at once; and
    every batch but the first keeps its converting connection busy a while longer (a heavy
    batch), so that one is still converting when the failure comes."""
    monkeypatch.setattr(reader, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(reader, "IN_PLACE_BYTES", 4096)
    monkeypatch.setattr(backend_base, "BATCH_BYTES", 8192)
    convert = Transform.convert

    def heavy(self: Transform, chunks: Sequence[Chunk]) -> Batch:
        rows = HEAVY_ROWS * min(chunks[0].seq, 4)
        self.con.execute(f"SELECT sum(hash(i)) FROM range({rows}) t(i)").fetchall()
        return convert(self, chunks)

    monkeypatch.setattr(Transform, "convert", heavy)


def scratch_folders() -> set[str]:
    """This process's scratch folders of loads and transforms."""
    pid = os.getpid()
    return {
        entry.name
        for entry in os.scandir(tempfile.gettempdir())
        if entry.name.startswith((f"arbalest-load-{pid}-", f"arbalest-transform-{pid}-"))
    }


def fails_cleanly(pipeline: Pipeline, kind: type[BaseException], **run: Any) -> BaseException:
    """Run ``pipeline``; it must raise exactly ``kind``, mention no busy connection, and
    leave no scratch folder of this process and no thread of the load behind."""
    before = scratch_folders()
    with pytest.raises(BaseException) as caught:  # noqa: PT011 - the type is checked below
        pipeline.run(**run)
    error = caught.value
    text = "".join(traceback.format_exception(error))
    assert type(error) is kind, text
    assert "busy" not in text.lower(), text
    assert scratch_folders() - before == set()
    running = [t.name for t in threading.enumerate() if t.name.startswith("arbalest-")]
    assert running == [], "threads of the load still running"
    return error


def test_too_many_rejects_in_an_early_object(tmp_path: Path, lake: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    pipeline = Pipeline(engine, store=lake).copy(Event, "events")
    for _ in range(ROUNDS):
        error = fails_cleanly(pipeline, TooManyRejectsError)
        assert isinstance(error, TooManyRejectsError)
        assert [(r.key, r.line) for r in error.rejects] == [("events/000.json", 1)]
    engine.dispose()


class _Interrupted:
    """A progress listener that presses Ctrl-C when the first object is loaded."""

    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        pass

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        raise KeyboardInterrupt

    def step_finished(self, result: StepResult) -> None:
        pass


def test_ctrl_c_while_batches_convert(tmp_path: Path, lake: Path) -> None:
    (lake / "events" / "000.json").unlink()  # no reject: the interrupt comes first
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    pipeline = Pipeline(engine, store=lake).copy(Event, "events")
    for _ in range(ROUNDS):
        fails_cleanly(pipeline, KeyboardInterrupt, progress=_Interrupted())
    engine.dispose()


def test_a_driver_error_while_batches_convert(tmp_path: Path, lake: Path) -> None:
    (lake / "events" / "000.json").unlink()
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    with engine.begin() as conn:  # the warehouse refuses the very first row
        conn.execute(sa.text("CREATE TABLE events (id VARCHAR(40), n INTEGER CHECK (n <> 0))"))
    pipeline = Pipeline(engine, store=lake).copy(Event, "events")
    for _ in range(ROUNDS):
        error = fails_cleanly(pipeline, CopyError)
        assert isinstance(error, PipelineError)
        assert "CHECK constraint" in str(error), error
    engine.dispose()
