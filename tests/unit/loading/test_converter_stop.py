"""Converter.close stops the converting workers before it closes their connections."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from arbalest import convert
from arbalest.loading.converter import Converter, batches
from arbalest.loading.reader import Chunk, Feed
from arbalest.loading.transform import Batch, Transform
from arbalest.stores import LocalStore
from tests.fixtures.schemas import Event


def test_close_waits_for_a_batch_still_converting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller stops reading batches and closes the converter without closing ``run``'s
    generator: the batch in flight is waited for, not closed under (which DuckDB refuses
    with "connection is busy")."""
    lake, work = tmp_path / "lake", tmp_path / "work"
    lake.mkdir()
    work.mkdir()
    for k in range(4):
        rows = [{"id": f"{k}-{i}", "n": i} for i in range(600)]
        (lake / f"{k}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    real = Transform.convert

    def heavy(self: Transform, chunks: Sequence[Chunk]) -> Batch:
        if chunks[0].seq > 0:  # every batch but the first converts for a while
            self.con.execute("SELECT sum(hash(i)) FROM range(20000000) t(i)").fetchall()
        return real(self, chunks)

    monkeypatch.setattr(Transform, "convert", heavy)
    store = LocalStore(lake)
    converter = Converter(Event.__fields__, convert.ConvertOptions(), workers=2)
    with Feed(store, list(store.list()), compression=None, workdir=work, chunk_bytes=4096) as feed:
        run = converter.run(batches(iter(feed), 8192), work, "arrow")
        first = next(run)
        assert first.chunks[0].seq == 0
        converter.close()  # the second batch is converting now
    run.close()
