"""DuckDB's bulk write: each Arrow batch is scanned in place and let go as soon as it is
written, inside the step's transaction; a connection without replacement scans falls back to
a view."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from arbalest import Pipeline, String
from arbalest.backends import base
from arbalest.backends.duckdb import LOADING_MEMORY_LIMIT, DuckDBBackend, _bounded_cache, _bytes
from arbalest.loading import tabular_feed
from arbalest.loading.tabular_feed import TabularFeed
from tests.fixtures.schemas import fresh_base

TABLE = sa.Table("t", sa.MetaData(), sa.Column("a", sa.Integer), sa.Column("b", sa.String))


def _batch(start: int, rows: int) -> pa.Table:
    return pa.table({"a": list(range(start, start + rows)), "b": [f"v{i}" for i in range(rows)]})


@pytest.mark.parametrize("replacements", [True, False], ids=["replacement-scan", "view"])
def test_batches_are_written_and_let_go_before_the_commit(
    tmp_path: Path, replacements: bool
) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    TABLE.metadata.create_all(engine)
    backend = DuckDBBackend(engine)
    with engine.connect() as conn:
        if not replacements:
            conn.exec_driver_sql("SET python_enable_replacements = false")
            conn.commit()
        with conn.begin():
            written = []
            for index in range(3):
                batch = _batch(index * 100, 100)
                held = weakref.ref(batch)
                assert backend.write(conn, TABLE, ["a", "b"], batch) == 100
                del batch
                gc.collect()
                # nothing in the open transaction keeps the batch (a view dropped inside a
                # transaction keeps its Arrow table until the commit)
                written.append(held() is None)
            views = conn.exec_driver_sql(
                "SELECT count(*) FROM duckdb_views() WHERE view_name LIKE '_arbalest_batch%'"
            ).scalar_one()
            rows = conn.exec_driver_sql("SELECT count(*), sum(a) FROM t").one()
        if replacements:
            assert written == [True, True, True]
            assert views == 0
    assert tuple(rows) == (300, sum(range(300)))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 300
    engine.dispose()


def test_a_failed_write_rolls_back_with_the_step(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    TABLE.metadata.create_all(engine)
    backend = DuckDBBackend(engine)
    with engine.connect() as conn:
        conn.begin()
        backend.write(conn, TABLE, ["a", "b"], _batch(0, 10))
        with pytest.raises(duckdb.ConversionException, match=r"'x'"):
            backend.write(conn, TABLE, ["a", "b"], pa.table({"a": ["x"], "b": ["y"]}))
        conn.rollback()
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0
    engine.dispose()


def _limit(conn: sa.Connection) -> str:
    return str(conn.exec_driver_sql("SELECT current_setting('memory_limit')").scalar_one())


def _as_printed(limit: str) -> str:
    with duckdb.connect(config={"memory_limit": limit}) as con:
        return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])


KEYED = sa.Table("k", sa.MetaData(), sa.Column("a", sa.Integer, primary_key=True))
UNIQUE = sa.Table("u", sa.MetaData(), sa.Column("a", sa.Integer, unique=True))


@pytest.mark.parametrize("url_limit", [None, "2GB"])
def test_loading_a_table_without_an_index_bounds_duckdbs_cache_then_puts_it_back(
    tmp_path: Path, url_limit: str | None
) -> None:
    query = f"?memory_limit={url_limit}" if url_limit else ""
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}{query}")
    TABLE.metadata.create_all(engine)
    with engine.connect() as conn:
        before = _limit(conn)
        with _bounded_cache(conn, TABLE):
            assert _limit(conn) == _as_printed(LOADING_MEMORY_LIMIT)
        assert _limit(conn) == before
        # put back after a failure too, also one that aborted the step's transaction
        with pytest.raises(RuntimeError), _bounded_cache(conn, TABLE):
            raise RuntimeError
        assert _limit(conn) == before
        conn.rollback()  # the reads above began a transaction
        conn.begin()
        with pytest.raises(duckdb.ConversionException), _bounded_cache(conn, TABLE):
            DuckDBBackend(engine).write(conn, TABLE, ["a", "b"], pa.table({"a": ["x"], "b": ["y"]}))
        conn.rollback()
        assert _limit(conn) == before
        # a table with an index keeps DuckDB's limit: its index must fit in memory
        for keyed in (KEYED, UNIQUE):
            with _bounded_cache(conn, keyed):
                assert _limit(conn) == before
    engine.dispose()


def test_an_in_memory_database_keeps_its_limit() -> None:
    # its rows live in memory: under a low limit they would go to files in the working folder
    engine = sa.create_engine("duckdb:///:memory:")
    with engine.connect() as conn:
        before = _limit(conn)
        with _bounded_cache(conn, TABLE):
            assert _limit(conn) == before
    engine.dispose()


def test_a_lower_limit_of_the_users_is_kept(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}?memory_limit=16MB")
    with engine.connect() as conn:
        with _bounded_cache(conn, TABLE):
            assert _limit(conn) == _as_printed("16MB")
        assert _limit(conn) == _as_printed("16MB")
    engine.dispose()


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("953.6 MiB", 953.6 * 2**20),
        ("18.8 GiB", 18.8 * 2**30),
        ("0 bytes", 0),
        ("512 KiB", 512 * 2**10),
        ("2GB", 2e9),
        ("unlimited", float("inf")),
    ],
)
def test_sizes_as_duckdb_prints_them(printed: str, expected: float) -> None:
    assert _bytes(printed) == pytest.approx(expected)


def test_a_limit_set_at_run_time_is_left_alone(tmp_path: Path) -> None:
    # DuckDB prints a limit rounded: one set by a statement could not be put back exactly
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("SET memory_limit = '3GB'")
        before = _limit(conn)
        with _bounded_cache(conn, TABLE):
            assert _limit(conn) == before
        assert _limit(conn) == before
    engine.dispose()


class Flat(fresh_base()):  # type: ignore[misc]
    __tablename__ = "flat"
    id = String(8)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_folder_is_read_by_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """DuckDB writes with threads of its own: a second reading thread only held more memory
    (``tabular_feed.STREAMED_LOCAL_READERS``)."""
    readers: list[int] = []

    class Counted(TabularFeed):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            readers.append(self._workers)

    monkeypatch.setattr(base, "TabularFeed", Counted)
    (tmp_path / "in").mkdir()
    if fmt == "parquet":
        pq.write_table(pa.table({"id": ["a", "b"]}), tmp_path / "in" / "part-0.parquet")
    else:
        (tmp_path / "in" / "part-0.csv").write_text("id\na\nb\n")
    result = (
        Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=tmp_path)
        .copy(Flat, "in", format=fmt)
        .run()
    )
    assert result.rows_loaded == 2
    assert readers == [1]
    assert tabular_feed.STREAMED_LOCAL_READERS == 1
    assert tabular_feed.READERS == 2
