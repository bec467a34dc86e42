"""Scratch folders: a killed load's are removed by a later load, nobody else's are."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from arbalest import Pipeline, Schema, String
from arbalest.loading import scratch

HOUR = 3600.0


def dead_pid() -> int:
    """The pid of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def folder(root: Path, name: str, *, age: float) -> Path:
    path = root / name
    path.mkdir()
    (path / "00000000-000000.ndjson").write_bytes(b'{"a": 1}\n')
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_a_dead_processs_old_folder_is_removed(tmp_path: Path) -> None:
    pid = dead_pid()
    stale = [
        folder(tmp_path, f"arbalest-load-{pid}-abc123", age=2 * HOUR),
        folder(tmp_path, f"arbalest-transform-{pid}-x_y", age=2 * HOUR),
    ]
    assert sorted(scratch.sweep(tmp_path)) == sorted(stale)
    assert list(tmp_path.iterdir()) == []


def test_what_may_still_be_in_use_or_is_not_ours_is_kept(tmp_path: Path) -> None:
    pid = dead_pid()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            kept = [
                folder(tmp_path, f"arbalest-load-{os.getpid()}-a", age=2 * HOUR),  # this one
                folder(tmp_path, f"arbalest-load-{live.pid}-b", age=2 * HOUR),  # running
                folder(tmp_path, f"arbalest-load-{pid}-c", age=60),  # written a minute ago
                folder(tmp_path, f"arbalest-other-{pid}-d", age=2 * HOUR),  # not a scratch name
                folder(tmp_path, f"arbalest-load-{pid}", age=2 * HOUR),  # not a scratch name
                folder(tmp_path, f"somebody-load-{pid}-e", age=2 * HOUR),
            ]
            (tmp_path / f"arbalest-load-{pid}-file").write_text("a file, not a folder")
            assert scratch.sweep(tmp_path) == []
            assert sorted(tmp_path.iterdir()) == sorted(
                [*kept, tmp_path / f"arbalest-load-{pid}-file"]
            )
        finally:
            live.kill()


def test_a_missing_temporary_folder_is_not_an_error(tmp_path: Path) -> None:
    assert scratch.sweep(tmp_path / "nope") == []


def test_a_load_removes_what_a_killed_load_left_and_leaves_nothing_itself(
    tmp_path: Path, base: type[Schema], monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    lake = tmp_path / "lake"
    (lake / "events").mkdir(parents=True)
    (lake / "events" / "a.json").write_text('{"id": "a"}\n' * 10)
    # a load killed while it held its scratch folders
    script = textwrap.dedent(
        f"""
        import os, signal, tempfile
        tempfile.tempdir = {str(scratch_root)!r}
        from arbalest.loading import scratch
        scratch.make("load"), scratch.make("transform")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    child = subprocess.run([sys.executable, "-c", script], check=False)
    assert child.returncode == -signal.SIGKILL
    left = sorted(scratch_root.iterdir())
    assert len(left) == 2
    # written just now: a later load keeps them, as the process might have been alive
    then = time.time() - 2 * HOUR

    class Event(base):  # type: ignore[misc, valid-type]
        __tablename__ = "events"
        id = String(36)

    pipeline: Any = Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=lake)
    pipeline.copy(Event, "events").run()
    assert sorted(scratch_root.iterdir()) == left
    for path in left:
        os.utime(path, (then, then))
    pipeline.copy(Event, "events", mode="replace").run()
    assert list(scratch_root.iterdir()) == []
