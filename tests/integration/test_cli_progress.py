"""The installed ``arbalest`` script without a terminal (cron, CI): while a long load runs,
a progress line every few seconds, with bytes and rows, a rate and the time left, also while
one large object is still being read.

The pipeline's store reads slowly and its objects are read in small pieces, so that a load of
40 kB takes long enough for lines that come every 0.1 s (``ARBALEST_PROGRESS_SECONDS``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.fixtures.cli import arbalest, environment

MODULE = """\
import time

import sqlalchemy as sa

import arbalest.backends.base
import arbalest.loading.reader
from arbalest import Integer, Pipeline, Schema, String
from arbalest.stores.local import LocalStore

# small pieces: a 40 kB object is read as a large one is, piece by piece
arbalest.loading.reader.CHUNK_BYTES = 4096
arbalest.loading.reader.IN_PLACE_BYTES = 4096
arbalest.backends.base.BATCH_BYTES = 4096


class SlowFile:
    def __init__(self, raw):
        self.raw = raw

    def read(self, size=-1):
        time.sleep(0.1)
        return self.raw.read(size)

    def readinto(self, buffer):
        time.sleep(0.1)
        return self.raw.readinto(buffer)

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.raw.close()


class SlowStore(LocalStore):
    def open(self, key):
        return SlowFile(super().open(key))


class Event(Schema):
    __tablename__ = "events"
    metadata = sa.MetaData()
    id = String(36, primary_key=True)
    n = Integer()


pipeline = Pipeline({warehouse!r}, store=SlowStore({store!r})).copy(Event, "events")
"""

BEAT = re.compile(
    r"copy events \(incremental\): (?P<objects>\d+)/1 object\(s\), "
    r"(?P<done>[\d.,]+) (?P<unit>bytes|kB) of (?P<total>[\d.]+) kB \((?P<percent>\d+)%\), "
    r"(?P<rows>[\d,]+) row\(s\), [\d.,]+ (bytes|kB|MB)/s, \d+:\d\d left"
    r"|copy events \(incremental\): 0/1 object\(s\), 0 bytes of [\d.]+ kB \(0%\), \d+:\d\d elapsed"
)


@pytest.mark.duckdb
def test_without_a_terminal_a_long_load_says_it_is_alive(tmp_path: Path) -> None:
    lake = tmp_path / "lake" / "events"
    lake.mkdir(parents=True)
    text = "".join(json.dumps({"id": f"r{i:05}", "n": i}) + "\n" for i in range(1500))
    (lake / "big.json").write_text(text)
    (tmp_path / "jobs.py").write_text(
        MODULE.format(warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}", store=str(tmp_path / "lake"))
    )
    done = arbalest(
        "run", "jobs.py", cwd=tmp_path, env=environment(ARBALEST_PROGRESS_SECONDS="0.1")
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == f"copy events (incremental): 1 object(s) to load, {len(text):,} bytes"
    end = next(n for n, line in enumerate(lines) if line.startswith("step ")) - 1
    assert re.fullmatch(
        r"copy events \(incremental\): done, 1 object\(s\), 1,500 row\(s\), 0 rejected, "
        r"\d+\.\d\d s",
        lines[end],
    )
    beats = lines[1:end]
    assert len(beats) >= 5, done.stderr
    for line in beats:
        assert BEAT.fullmatch(line), line
    # the large object's progress shows before it is loaded: part of its bytes and rows
    within = [m for m in map(BEAT.fullmatch, beats) if m and m["objects"] == "0" and m["rows"]]
    assert any(0 < int(m["percent"]) < 100 and m["rows"] != "0" for m in within), done.stderr


@pytest.mark.duckdb
def test_the_default_interval_says_nothing_in_a_short_load(tmp_path: Path) -> None:
    lake = tmp_path / "lake" / "events"
    lake.mkdir(parents=True)
    (lake / "a.json").write_text('{"id": "a", "n": 1}\n')
    (tmp_path / "jobs.py").write_text(
        MODULE.format(warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}", store=str(tmp_path / "lake"))
    )
    done = arbalest("run", "jobs.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[1].startswith("copy events (incremental): done, 1 object(s)")
