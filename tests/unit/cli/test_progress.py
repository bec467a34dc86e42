"""Progress a person can read: bytes and rows, a rate and the time left, within an object too;
without a terminal, a line every few seconds."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import time
from pathlib import Path

import pytest
from rich.console import Console

import arbalest.backends.base
import arbalest.loading.reader
from arbalest import Integer, Pipeline, Schema, String
from arbalest.cli import main
from arbalest.cli.output import (
    PROGRESS_SECONDS,
    LineProgress,
    Tally,
    duration_text,
    progress_seconds,
    size_text,
)
from arbalest.errors import ConfigurationError
from arbalest.pipeline import StepResult
from arbalest.stores.base import ObjectInfo


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def info(key: str, size: int) -> ObjectInfo:
    return ObjectInfo(key, size, "etag", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def test_sizes_and_durations_as_people_read_them() -> None:
    assert [size_text(n) for n in (0, 999, 1000, 1_234_567, 4e9, 5e15)] == [
        "0 bytes",
        "999 bytes",
        "1.0 kB",
        "1.2 MB",
        "4.0 GB",
        "5,000.0 TB",
    ]
    assert [duration_text(s) for s in (0, 42.4, 725, 3723)] == ["0:00", "0:42", "12:05", "1:02:03"]


def test_a_line_has_bytes_rows_a_rate_and_the_time_left_within_one_object() -> None:
    clock = Clock()
    tally = Tally("copy events (incremental)", 2, 40_000_000, clock)
    big = info("events/big.json", 30_000_000)
    assert tally.line() == (
        "copy events (incremental): 0/2 object(s), 0 bytes of 40.0 MB (0%), 0:00 elapsed"
    )
    clock.now += 10
    tally.chunk(big, 10_000_000, 12_345)  # a third of the large object, not loaded yet
    assert tally.line() == (
        "copy events (incremental): 0/2 object(s), 10.0 MB of 40.0 MB (25%), 12,345 row(s), "
        "1.0 MB/s, 0:30 left"
    )
    tally.chunk(big, 25_000_000, 30_000)  # pieces past its size (compressed): capped
    assert tally.done == 30_000_000
    tally.loaded(big)
    clock.now += 5
    assert tally.line() == (
        "copy events (incremental): 1/2 object(s), 30.0 MB of 40.0 MB (75%), 42,345 row(s), "
        "2.0 MB/s, 0:05 left"
    )


def test_whole_objects_only_say_no_rows() -> None:
    clock = Clock()
    tally = Tally("copy events (incremental)", 1, 2000, clock)  # Redshift: COPY reads it
    clock.now += 1
    tally.loaded(info("events/a.json", 2000))
    assert "row" not in tally.line()


def test_without_a_terminal_a_line_comes_every_few_seconds() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with LineProgress(console, seconds=0.02) as progress:
        progress.step_started("copy events (incremental)", 1, 5000)
        progress.chunk_loaded("copy events (incremental)", info("events/a.json", 5000), 2500, 7)
        time.sleep(0.3)  # a large object, still under way
        progress.object_loaded("copy events (incremental)", info("events/a.json", 5000))
        progress.step_finished(StepResult("copy events (incremental)", "events", 1, 7, 0, [], 1))
        time.sleep(0.1)  # between steps: nothing to say
    lines = out.getvalue().splitlines()
    assert lines[0] == "copy events (incremental): 1 object(s) to load, 5,000 bytes"
    assert lines[-1] == "copy events (incremental): done, 1 object(s), 7 row(s), 0 rejected, 1.00 s"
    beats = lines[1:-1]
    assert len(beats) >= 3
    for line in beats:
        assert re.fullmatch(
            r"copy events \(incremental\): 0/1 object\(s\), 2\.5 kB of 5\.0 kB \(50%\), "
            r"7 row\(s\), [\d.,]+ (bytes|kB|MB)/s, \d+:\d\d left",
            line,
        ), line
    assert not progress.thread  # stopped with the block


def test_the_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARBALEST_PROGRESS_SECONDS", raising=False)
    assert progress_seconds() == PROGRESS_SECONDS == 5.0
    monkeypatch.setenv("ARBALEST_PROGRESS_SECONDS", "0.5")
    assert progress_seconds() == 0.5
    for wrong in ("soon", "0", "-1"):
        monkeypatch.setenv("ARBALEST_PROGRESS_SECONDS", wrong)
        with pytest.raises(ConfigurationError, match="ARBALEST_PROGRESS_SECONDS"):
            progress_seconds()


class Event(Schema):
    __tablename__ = "progress_events"
    id = String(36, primary_key=True)
    n = Integer()


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        self.events.append(("started", str(objects), str(nbytes)))

    def chunk_loaded(self, label: str, info: ObjectInfo, nbytes: int, rows: int) -> None:
        self.events.append(("chunk", info.key, str(nbytes), str(rows)))

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        self.events.append(("object", info.key))

    def step_finished(self, result: StepResult) -> None:
        self.events.append(("finished", str(result.rows_loaded)))


@pytest.mark.duckdb
def test_a_large_object_reports_its_pieces_before_it_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(arbalest.loading.reader, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(arbalest.loading.reader, "IN_PLACE_BYTES", 4096)
    monkeypatch.setattr(arbalest.backends.base, "BATCH_BYTES", 4096)
    lake = tmp_path / "lake" / "events"
    lake.mkdir(parents=True)
    text = "".join(json.dumps({"id": f"r{i}", "n": i}) + "\n" for i in range(2000))
    (lake / "big.json").write_text(text)
    recorder = Recorder()
    with Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=str(tmp_path / "lake")).copy(
        Event, "events"
    ) as pipeline:
        pipeline.run(progress=recorder)
    chunks = [e for e in recorder.events if e[0] == "chunk"]
    assert len(chunks) >= 5  # ~40 kB in pieces of 4 kB
    assert recorder.events[0] == ("started", "1", str(len(text)))
    assert recorder.events[-2:] == [("object", "events/big.json"), ("finished", "2000")]
    assert sum(int(c[2]) for c in chunks) == len(text)
    assert sum(int(c[3]) for c in chunks) == 2000


class Plain:
    """The three methods of the documented protocol, and no ``chunk_loaded``."""

    def __init__(self) -> None:
        self.objects = 0

    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        pass

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        self.objects += 1

    def step_finished(self, result: StepResult) -> None:
        pass


@pytest.mark.duckdb
def test_a_progress_without_chunk_loaded_still_works(tmp_path: Path) -> None:
    (tmp_path / "lake" / "events").mkdir(parents=True)
    (tmp_path / "lake" / "events" / "a.json").write_text('{"id": "a", "n": 1}\n')
    plain = Plain()
    with Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=str(tmp_path / "lake")).copy(
        Event, "events"
    ) as pipeline:
        assert pipeline.run(progress=plain).rows_loaded == 1
    assert plain.objects == 1


def test_a_wrong_interval_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lake").mkdir()
    jobs = tmp_path / "jobs.py"
    warehouse, store = f"duckdb:///{tmp_path / 'w.duckdb'}", str(tmp_path / "lake")
    jobs.write_text(
        "from arbalest import Pipeline\n"
        f"pipeline = Pipeline({warehouse!r}, store={store!r}).sql('SELECT 1')\n"
    )
    monkeypatch.setenv("ARBALEST_PROGRESS_SECONDS", "soon")
    assert main(["run", str(jobs)]) == 2
    assert "ARBALEST_PROGRESS_SECONDS='soon'" in capsys.readouterr().err
