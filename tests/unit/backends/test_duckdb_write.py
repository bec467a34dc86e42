"""DuckDB's bulk write: each Arrow batch is scanned in place and let go as soon as it is
written, inside the step's transaction; a connection without replacement scans falls back to
a view."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa

from arbalest.backends.duckdb import DuckDBBackend

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
