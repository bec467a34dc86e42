"""A step's batches as one stream (``backends._stream``): written by one statement as they
come, let go once read, stopped cleanly however the load ends; and DuckDB's one ``INSERT``
that reads it, with insertion order off only while the step loads."""

from __future__ import annotations

import gc
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa

from arbalest import Integer, Pipeline, Schema, String
from arbalest.backends._stream import BatchStream
from arbalest.backends.duckdb import DuckDBBackend, _unordered

TABLE = sa.Table("t", sa.MetaData(), sa.Column("a", sa.Integer), sa.Column("b", sa.String))


def _batch(start: int, rows: int) -> pa.Table:
    return pa.table({"a": list(range(start, start + rows)), "b": [f"v{i}" for i in range(rows)]})


def _reading(seen: list[int], gate: threading.Event | None = None) -> Any:
    """A write that reads the whole stream, counting rows (after ``gate``, if given)."""

    def write(reader: pa.RecordBatchReader) -> int:
        if gate is not None:
            gate.wait(10)
        for part in reader:
            seen.append(part.num_rows)
        return sum(seen)

    return write


def test_every_batch_is_written_by_one_write_in_order() -> None:
    seen: list[int] = []
    with ThreadPoolExecutor(1) as pool:
        stream = BatchStream(pool, _reading(seen))
        for index in range(5):
            stream.put(_batch(index * 10, 10), 10)
        assert stream.finish() == 50
    assert seen == [10] * 5
    assert stream.sent == 50


def test_a_stream_nothing_was_put_in_writes_nothing() -> None:
    calls: list[Any] = []

    def write(reader: pa.RecordBatchReader) -> int:
        calls.append(reader)
        return 0

    with ThreadPoolExecutor(1) as pool:
        stream = BatchStream(pool, write)
        assert stream.finish() == 0
        stream.stop()
    assert calls == []


def test_a_batch_of_another_arrow_type_is_cast_to_the_first() -> None:
    seen: list[pa.Schema] = []

    def write(reader: pa.RecordBatchReader) -> int:
        seen.extend(part.schema for part in reader)
        return 0

    with ThreadPoolExecutor(1) as pool:
        stream = BatchStream(pool, write)
        stream.put(_batch(0, 2), 2)
        stream.put(_batch(2, 2).cast(pa.schema([("a", pa.int32()), ("b", pa.large_string())])), 2)
        stream.finish()
    assert seen == [_batch(0, 2).schema] * 2


def test_the_writes_error_reaches_the_next_put() -> None:
    def write(reader: pa.RecordBatchReader) -> int:
        next(iter(reader))
        raise ValueError("refused by the warehouse")

    with ThreadPoolExecutor(1) as pool:
        stream = BatchStream(pool, write)
        stream.put(_batch(0, 1), 1)

        def keep_putting() -> None:
            for index in range(1, 100):  # the queue holds two: the error comes soon
                stream.put(_batch(index, 1), 1)

        with pytest.raises(ValueError, match="refused by the warehouse"):
            keep_putting()
        stream.stop()


def test_stop_ends_a_write_waiting_for_batches_and_lets_them_go() -> None:
    seen: list[int] = []
    gate = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        stream = BatchStream(pool, _reading(seen, gate))
        batch = _batch(0, 10)
        held = weakref.ref(batch)
        stream.put(batch, 10)
        del batch
        gate.set()
        stream.stop()  # the write is failed, and waited for
        gc.collect()
        assert held() is None
    assert seen in ([], [10])


def test_stop_ends_a_write_whose_queue_is_full() -> None:
    gate = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        stream = BatchStream(pool, _reading([], gate))
        stream.put(_batch(0, 1), 1)
        stream.put(_batch(1, 1), 1)  # two waiting: the queue is full, nothing read yet
        gate.set()
        stream.stop()


class Item(Schema):
    __tablename__ = "items"
    id = String(8)
    n = Integer()


def _order(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.exec_driver_sql("SELECT current_setting('preserve_insertion_order')").scalar()
        )


def test_insertion_order_is_off_only_while_a_step_loads(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    during: list[bool] = []
    original = DuckDBBackend.write_stream

    def write_stream(self: DuckDBBackend, conn: sa.Connection, *args: Any) -> int:
        during.append(
            bool(
                conn.exec_driver_sql("SELECT current_setting('preserve_insertion_order')").scalar()
            )
        )
        return original(self, conn, *args)

    lake = tmp_path / "lake" / "items"
    lake.mkdir(parents=True)
    for part in range(3):
        rows = "".join(f'{{"id": "{part}-{i}", "n": {i}}}\n' for i in range(1000))
        (lake / f"part-{part}.json").write_text(rows)
    DuckDBBackend.write_stream = write_stream  # type: ignore[method-assign,assignment]
    try:
        result = Pipeline(engine, store=tmp_path / "lake").copy(Item, "items").run()
    finally:
        DuckDBBackend.write_stream = original  # type: ignore[method-assign]
    assert result.rows_loaded == 3000
    assert during == [False]
    assert _order(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(DISTINCT id), sum(n) FROM items").one() == (
            3000,
            3 * sum(range(1000)),
        )
    engine.dispose()


def test_insertion_order_is_put_back_after_a_failed_load(tmp_path: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    TABLE.metadata.create_all(engine)
    during: list[bool] = []

    def failing_load(conn: sa.Connection) -> None:
        with conn.begin(), _unordered(conn):
            setting = "SELECT current_setting('preserve_insertion_order')"
            during.append(bool(conn.exec_driver_sql(setting).scalar()))
            raw: Any = conn.connection.driver_connection
            raw.execute("SELECT * FROM no_such_table")

    with engine.connect() as conn, pytest.raises(duckdb.Error):
        failing_load(conn)
    assert during == [False]
    assert _order(engine)
    engine.dispose()


def test_insertion_order_already_off_is_left_off(tmp_path: Path) -> None:
    engine = sa.create_engine(
        f"duckdb:///{tmp_path / 'w.duckdb'}",
        connect_args={"config": {"preserve_insertion_order": False}},
    )
    with engine.connect() as conn, conn.begin(), _unordered(conn):
        pass
    assert not _order(engine)
    engine.dispose()
