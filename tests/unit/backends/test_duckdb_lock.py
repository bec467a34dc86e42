"""The DuckDB run lock: one per database file, whatever the URL's spelling."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from arbalest import ConcurrentRunError
from arbalest.backends.duckdb import DuckDBBackend, database_key


def test_every_spelling_of_a_file_is_one_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.duckdb").symlink_to(tmp_path / "w.duckdb")
    monkeypatch.chdir(tmp_path / "sub")
    real = os.path.realpath(tmp_path / "w.duckdb")
    for spelling in (
        str(tmp_path / "w.duckdb"),
        "../w.duckdb",
        "./../w.duckdb",
        f"{tmp_path}/sub/../w.duckdb",
        f"{tmp_path}//w.duckdb",
        str(tmp_path / "link.duckdb"),
    ):
        assert database_key(spelling) == real, spelling
    assert database_key(None) == ":memory:"
    assert database_key(":memory:") == ":memory:"
    assert database_key("md:lake") == "md:lake"


def test_runs_on_one_file_spelled_two_ways_take_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    one = DuckDBBackend(sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}"))
    two = DuckDBBackend(sa.create_engine("duckdb:///./w.duckdb"))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with one.lock(None, "events", 5):  # type: ignore[arg-type]  # no connection needed
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with (
            pytest.raises(ConcurrentRunError, match="lock_timeout") as caught,
            two.lock(None, "events", 0.2),  # type: ignore[arg-type]
        ):
            pass
        assert "another run in this process" in str(caught.value)
    finally:
        release.set()
        holder.join(10)
    with two.lock(None, "events", 1):  # type: ignore[arg-type]  # free again
        pass
