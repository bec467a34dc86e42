"""Faults injected under real loads; each ends in a retry that succeeds or a clear error.

- S3 over real HTTP: ``tests.fixtures.faults.FaultProxy`` sits between boto3 and moto's
  server and answers LIST or GET requests with 500, 503 SlowDown, a dropped connection, a
  read timeout, or a body that breaks off (a TCP reset, or a stall, after some bytes).
- PostgreSQL: the backend's connection is terminated (``pg_terminate_backend``) while its
  ``COPY ... FROM STDIN`` is in progress, and while it is idle between objects. Both points
  are reached deterministically (the load blocks there until the kill is done), not by timing.
- DuckDB: the database's files cannot grow (``RLIMIT_FSIZE`` in a child process, a full
  tmpfs) or cannot be written (the WAL's path leads nowhere, the folder is a regular file,
  a read-only mount).

A transient fault must be retried and the run must load every record exactly once, with a
journal equal to the objects loaded. A persistent one must raise a ``PipelineError`` that
names the step and what failed where, and leave the target table and the journal exactly as
they were before the run; the next run, with the fault gone, loads everything exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from botocore.config import Config

import arbalest.stores.s3 as s3_module
from arbalest import (
    CopyError,
    Pipeline,
    PipelineError,
    String,
    WarehouseUnavailableError,
    journal,
)
from arbalest.stores import LocalStore
from arbalest.stores.s3 import MAX_RESUMES, S3Store
from tests.fixtures.faults import Fault, FaultProxy, Operation

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
LABEL = "copy events (incremental)"
#: Attempts botocore makes for one call in these tests (the store's own is 8 retries).
ATTEMPTS = 2
#: Client timeouts in the tests that stall the server (the store's own are 10 s and 60 s).
TIMEOUT = 1.0
#: Body bytes sent before a GET's body breaks off (objects are about 80 kB).
BREAK_AFTER = 10_000


@pytest.fixture
def event(make_event: Callable[..., Any]) -> Any:
    return make_event(id=String(40, primary_key=True), pad=String(64))


def records(key: str, count: int) -> list[dict[str, Any]]:
    """Records with ids unique across the lake (the key's stem, then a number)."""
    stem = key.rsplit("/", 1)[-1].split(".")[0]
    return [{"id": f"{stem}-{i:06d}", "n": i, "pad": "p" * 40} for i in range(count)]


def body(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


# -- what the warehouse holds ---------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Tables, the target's rows and the journal's rows: equal snapshots, equal warehouses."""

    tables: frozenset[str]
    rows: tuple[tuple[Any, ...], ...]
    journal: tuple[tuple[Any, ...], ...]


def snapshot(engine: sa.Engine) -> Snapshot:
    with engine.connect() as conn:
        tables = frozenset(
            str(name)
            for (name,) in conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            )
        )
        rows: tuple[tuple[Any, ...], ...] = ()
        if "events" in tables:
            rows = tuple(
                tuple(r) for r in conn.execute(sa.text("SELECT id, n, pad FROM events ORDER BY id"))
            )
        entries: tuple[tuple[Any, ...], ...] = ()
        if journal.JOURNAL.name in tables:
            j = journal.JOURNAL.c
            entries = tuple(
                tuple(r)
                for r in conn.execute(
                    sa.select(
                        j.target, j.key, j.etag, j.size, j.rows_loaded, j.rows_rejected, j.run_id
                    ).order_by(j.target, j.key)
                )
            )
    return Snapshot(tables, rows, entries)


def assert_exactly_once(engine: sa.Engine, lake: dict[str, list[dict[str, Any]]]) -> None:
    """Every record of every object once, and a journal that lists exactly those objects."""
    now = snapshot(engine)
    ids = Counter(row[0] for row in now.rows)
    assert [i for i, n in ids.items() if n > 1] == []
    assert set(ids) == {r["id"] for rows in lake.values() for r in rows}
    assert {(e[1], e[4], e[5]) for e in now.journal if e[0] == "events"} == {
        (key, len(rows), 0) for key, rows in lake.items()
    }


def assert_names(error: PipelineError, *parts: str) -> None:
    """The error names its step and every part (what failed, where)."""
    assert error.step == LABEL
    text = str(error)
    assert text.startswith(f"step {LABEL!r} failed: ")
    for part in parts:
        assert part in text, (part, text)


# -- S3 behind the fault proxy --------------------------------------------------------------


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FaultProxy]:
    """A fault proxy in front of moto's server, with nothing injected yet."""
    with FaultProxy(s3_endpoint) as running:
        yield running


@dataclass
class S3Lake:
    """Objects under ``s3://<bucket>/lake``, written straight to moto (not through the proxy)."""

    bucket: str
    endpoint: str
    objects: dict[str, list[dict[str, Any]]]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/lake"

    def put(self, key: str, count: int) -> None:
        rows = records(key, count)
        client = boto3.client("s3", endpoint_url=self.endpoint)
        client.put_object(Bucket=self.bucket, Key=f"lake/{key}", Body=body(rows))
        self.objects[key] = rows


@pytest.fixture
def s3_lake(s3_bucket: str, s3_endpoint: str) -> S3Lake:
    return S3Lake(s3_bucket, s3_endpoint, {})


@pytest.fixture
def proxied(proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> FaultProxy:
    """Stores made from ``s3://`` URLs, with the store's own botocore configuration, talk to
    the proxy."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    return proxy


@pytest.fixture
def via_proxy(proxied: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> FaultProxy:
    """As ``proxied``, but botocore makes ``ATTEMPTS`` attempts per call instead of 8 (a
    persistent fault would otherwise be retried for more than a minute)."""
    monkeypatch.setattr(s3_module, "MAX_ATTEMPTS", ATTEMPTS)  # the first request included
    return proxied


def quick_store(url: str, proxy: FaultProxy) -> S3Store:
    """An S3 store whose client has the store's retry settings but short timeouts.

    The store's own timeouts (connect 10 s, read 60 s) cannot be set through ``Pipeline``
    or ``S3Store``'s arguments; only a client of one's own changes them.
    """
    config = Config(
        retries={"mode": "standard", "total_max_attempts": s3_module.MAX_ATTEMPTS},
        connect_timeout=TIMEOUT,
        read_timeout=TIMEOUT,
    )
    return S3Store(url, client=boto3.client("s3", endpoint_url=proxy.url, config=config))


@dataclass(frozen=True)
class S3Fault:
    """One kind of fault, on LIST or on GET (of ``events/c.json``)."""

    id: str
    fault: Fault
    on: Operation
    stalls: bool = False  # needs the quick store's short timeouts

    @property
    def key(self) -> str | None:
        return "events/c.json" if self.on == "get" else None


FAULTS = [
    S3Fault("list-500", Fault.status(500, "InternalError"), "list"),
    S3Fault("list-503-slowdown", Fault.status(503, "SlowDown"), "list"),
    S3Fault("list-connection-reset", Fault.drop(), "list"),
    S3Fault("list-read-timeout", Fault.stall(5), "list", stalls=True),
    S3Fault("get-500", Fault.status(500, "InternalError"), "get"),
    S3Fault("get-503-slowdown", Fault.status(503, "SlowDown"), "get"),
    S3Fault("get-connection-reset", Fault.drop(), "get"),
    S3Fault("get-read-timeout", Fault.stall(5), "get", stalls=True),
    S3Fault("get-reset-mid-body", Fault.reset(after=BREAK_AFTER), "get"),
    S3Fault("get-stall-mid-body", Fault.stall(5, after=BREAK_AFTER), "get", stalls=True),
]


def s3_pipeline(
    engine: sa.Engine, lake: S3Lake, proxy: FaultProxy, case: S3Fault, event: Any
) -> Pipeline:
    store = quick_store(lake.url, proxy) if case.stalls else lake.url
    return Pipeline(engine, store=store).copy(event, "events")


def first_load(pipeline: Pipeline, lake: S3Lake) -> None:
    """Load ``events/a.json``, then add two objects for the run under test."""
    lake.put("events/a.json", 500)
    assert pipeline.run().rows_loaded == 500
    lake.put("events/b.json", 1000)
    lake.put("events/c.json", 1000)  # about 80 kB: a body can break in its middle


@pytest.mark.s3
@pytest.mark.duckdb
@pytest.mark.parametrize("case", FAULTS, ids=lambda c: c.id)
def test_a_transient_s3_fault_is_retried_and_loads_every_record_once(
    case: S3Fault,
    warehouse_duckdb: sa.Engine,
    s3_lake: S3Lake,
    proxied: FaultProxy,
    event: Any,
) -> None:
    pipeline = s3_pipeline(warehouse_duckdb, s3_lake, proxied, case, event)
    first_load(pipeline, s3_lake)
    rule = proxied.inject(case.fault, on=case.on, key=case.key, times=1)
    result = pipeline.run()
    assert rule.hits == 1  # the fault happened
    (step,) = result.steps
    assert (step.objects_loaded, step.rows_loaded, step.rows_rejected) == (2, 2000, 0)
    assert_exactly_once(warehouse_duckdb, s3_lake.objects)
    if case.fault.after is not None:
        # the body broke off: the read resumed where it stopped, with a ranged GET
        ranged = [e.range for e in proxied.log if e.key == "lake/events/c.json" and e.range]
        assert len(ranged) == 1
        assert ranged[0] is not None
        start = int(ranged[0].removeprefix("bytes=").rstrip("-"))
        assert 0 <= start <= BREAK_AFTER  # bytes urllib3 had not handed over are read again


def expected_parts(case: S3Fault, lake: S3Lake) -> list[str]:
    """What a persistent fault's error must name: the object or the listing, and the store."""
    if case.on == "list":
        return ["list", "lake/events/", lake.url]
    return ["events/c.json", lake.url]


@pytest.mark.s3
@pytest.mark.duckdb
@pytest.mark.parametrize(
    "case",
    FAULTS,
    ids=lambda c: c.id,
)
def test_a_persistent_s3_fault_is_a_clear_error_and_changes_nothing(
    case: S3Fault,
    warehouse_duckdb: sa.Engine,
    s3_lake: S3Lake,
    via_proxy: FaultProxy,
    event: Any,
) -> None:
    pipeline = s3_pipeline(warehouse_duckdb, s3_lake, via_proxy, case, event)
    first_load(pipeline, s3_lake)
    before = snapshot(warehouse_duckdb)
    rule = via_proxy.inject(case.fault, on=case.on, key=case.key, times=None)
    with pytest.raises(PipelineError) as caught:
        pipeline.run()
    assert snapshot(warehouse_duckdb) == before
    # botocore gave up after its attempts, or the store after its resumes
    assert rule.hits == (MAX_RESUMES + 1 if case.fault.after is not None else ATTEMPTS)
    via_proxy.clear()
    assert pipeline.run().rows_loaded == 2000
    assert_exactly_once(warehouse_duckdb, s3_lake.objects)
    assert_names(caught.value, *expected_parts(case, s3_lake))


@pytest.mark.s3
@pytest.mark.postgres
@pytest.mark.parametrize("on", ["list", "get"])
def test_a_persistent_s3_fault_leaves_postgresql_as_it_was(
    on: Operation,
    warehouse_postgresql: sa.Engine,
    s3_lake: S3Lake,
    via_proxy: FaultProxy,
    event: Any,
) -> None:
    pipeline = Pipeline(warehouse_postgresql, store=s3_lake.url).copy(event, "events")
    # the very first run fails: not even the tables it would create are left behind
    s3_lake.put("events/a.json", 500)
    via_proxy.inject(Fault.status(503, "SlowDown"), on=on, times=None)
    with pytest.raises(PipelineError) as caught:
        pipeline.run()
    assert_names(caught.value, "SlowDown", s3_lake.url)
    assert snapshot(warehouse_postgresql) == Snapshot(frozenset(), (), ())
    via_proxy.clear()
    first_load(pipeline, s3_lake)
    before = snapshot(warehouse_postgresql)
    via_proxy.inject(
        Fault.status(500), on=on, key="events/c.json" if on == "get" else None, times=None
    )
    with pytest.raises(PipelineError):
        pipeline.run()
    assert snapshot(warehouse_postgresql) == before
    via_proxy.clear()
    assert pipeline.run().rows_loaded == 2000
    assert_exactly_once(warehouse_postgresql, s3_lake.objects)


@pytest.mark.s3
@pytest.mark.duckdb
def test_an_s3_outage_is_a_retryable_pipeline_error(
    warehouse_duckdb: sa.Engine, s3_lake: S3Lake, via_proxy: FaultProxy, event: Any
) -> None:
    s3_lake.put("events/a.json", 10)
    via_proxy.inject(Fault.status(503, "SlowDown"), on="get", times=None)
    with pytest.raises(PipelineError) as caught:
        Pipeline(warehouse_duckdb, store=s3_lake.url).copy(event, "events").run()
    assert caught.value.retryable


@pytest.mark.s3
@pytest.mark.duckdb
def test_the_attempts_an_error_reports_are_the_attempts_made(
    warehouse_duckdb: sa.Engine,
    s3_lake: S3Lake,
    proxy: FaultProxy,
    event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setattr(s3_module, "MAX_ATTEMPTS", 1)  # as the store configures botocore
    s3_lake.put("events/a.json", 10)
    rule = proxy.inject(Fault.drop(), on="list", times=None)
    with pytest.raises(PipelineError) as caught:
        Pipeline(warehouse_duckdb, store=s3_lake.url).copy(event, "events").run()
    assert f"after {rule.hits} attempts" in str(caught.value)


# -- PostgreSQL: the connection killed --------------------------------------------------------


@dataclass
class Killer:
    """Terminates one application's PostgreSQL backend when the load reaches a point.

    The load calls ``reached()`` at the point and blocks until the backend is gone, so the
    kill lands exactly there. ``seen`` is the backend's state and query at that moment.
    """

    admin: sa.Engine
    application: str
    seen: tuple[str, str] | None = None
    error: BaseException | None = None

    def reached(self) -> None:
        if self.seen is not None:
            return  # only the first time
        done = threading.Event()

        def kill() -> None:
            try:
                with self.admin.connect() as conn:
                    row = conn.execute(
                        sa.text(
                            "SELECT pid, state, query FROM pg_stat_activity "
                            "WHERE application_name = :app"
                        ),
                        {"app": self.application},
                    ).one()
                    self.seen = (str(row.state), str(row.query))
                    conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": row.pid})
                    for _ in range(500):  # gone within 5 s
                        if not conn.execute(
                            sa.text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"),
                            {"pid": row.pid},
                        ).first():
                            break
                        threading.Event().wait(0.01)
            except BaseException as exc:  # reported by the test
                self.error = exc
                self.seen = ("", "")
            finally:
                done.set()

        # on a thread of its own: the caller may be inside a psycopg2 callback
        threading.Thread(target=kill, name="killer").start()
        assert done.wait(10)


@pytest.fixture
def killer(postgres_server: sa.Engine) -> Iterator[Killer]:
    admin = sa.create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    yield Killer(admin, f"arbalest-fault-{uuid.uuid4().hex[:10]}")
    admin.dispose()


@pytest.fixture
def killable(postgres_url: str, killer: Killer) -> Iterator[sa.Engine]:
    """A PostgreSQL warehouse whose connections carry the killer's application name."""
    url = sa.make_url(postgres_url).update_query_dict({"application_name": killer.application})
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


@dataclass
class FolderLake:
    root: Path
    objects: dict[str, list[dict[str, Any]]]

    def put(self, key: str, count: int) -> None:
        rows = records(key, count)
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body(rows))
        self.objects[key] = rows


@pytest.fixture
def folder_lake(tmp_path: Path) -> FolderLake:
    (tmp_path / "lake").mkdir()
    return FolderLake(tmp_path / "lake", {})


@pytest.mark.postgres
def test_postgresql_connection_killed_mid_copy_fails_cleanly_and_a_rerun_loads_once(
    killable: sa.Engine, killer: Killer, folder_lake: FolderLake, event: Any
) -> None:
    import psycopg2.extensions

    class KillOnFirstRead:
        """The COPY's data: the first read, with the server in COPY IN, waits for the kill."""

        def __init__(self, data: Any) -> None:
            self.data = data

        def read(self, size: int = -1) -> Any:
            killer.reached()
            return self.data.read(size)

        def readline(self, size: int = -1) -> Any:
            killer.reached()
            return self.data.readline(size)

    class KillingCursor(psycopg2.extensions.cursor):  # type: ignore[misc]
        def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> Any:
            return super().copy_expert(sql, KillOnFirstRead(file), size)

    pipeline = Pipeline(killable, store=folder_lake.root).copy(event, "events")
    folder_lake.put("events/a.json", 500)
    pipeline.run()
    folder_lake.put("events/b.json", 3000)
    folder_lake.put("events/c.json", 3000)
    before = snapshot(killable)

    def use_killing_cursors(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.cursor_factory = KillingCursor

    killable.dispose()
    sa.event.listen(killable, "connect", use_killing_cursors)
    with pytest.raises(PipelineError) as caught:
        pipeline.run()
    sa.event.remove(killable, "connect", use_killing_cursors)
    assert killer.error is None
    assert killer.seen is not None
    state, query = killer.seen
    assert (state, query.split(" FROM ")[0]) == ("active", "COPY events (id, n, pad)")
    assert isinstance(caught.value, WarehouseUnavailableError)
    assert caught.value.retryable
    assert_names(caught.value, "connection to the warehouse was lost")
    killable.dispose()
    assert snapshot(killable) == before
    assert pipeline.run().rows_loaded == 6000
    assert_exactly_once(killable, folder_lake.objects)


class BlockingStore(LocalStore):
    """A folder whose ``open`` of one key first lets ``killer`` kill the warehouse's backend."""

    def __init__(self, root: Path, key: str, killer: Killer) -> None:
        super().__init__(str(root))
        self.key = key
        self.killer = killer

    def open(self, key: str) -> Any:
        if key == self.key:
            self.killer.reached()
        return super().open(key)


@pytest.mark.postgres
def test_postgresql_connection_killed_between_objects_fails_cleanly_and_a_rerun_loads_once(
    killable: sa.Engine, killer: Killer, folder_lake: FolderLake, event: Any
) -> None:
    store = BlockingStore(folder_lake.root, "events/c.json.gz", killer)
    pipeline = Pipeline(killable, store=store).copy(event, "events")
    folder_lake.put("events/a.json", 500)
    pipeline.run()
    folder_lake.put("events/b.json", 3000)
    rows = records("events/c.json.gz", 3000)
    import gzip

    (folder_lake.root / "events/c.json.gz").write_bytes(gzip.compress(body(rows)))
    folder_lake.objects["events/c.json.gz"] = rows
    before = snapshot(killable)
    with pytest.raises(PipelineError) as caught:
        pipeline.run()
    assert killer.error is None
    assert killer.seen is not None
    assert killer.seen[0] == "idle in transaction"  # the step's transaction, open, between
    assert isinstance(caught.value, WarehouseUnavailableError)
    assert_names(caught.value, "connection to the warehouse was lost")
    killable.dispose()
    assert snapshot(killable) == before
    assert pipeline.run().rows_loaded == 6000
    assert_exactly_once(killable, folder_lake.objects)


# -- DuckDB: a file that cannot grow, or cannot be written ------------------------------------

CHILD = """
import json, resource, signal, sys
import sqlalchemy as sa
from arbalest import Integer, Pipeline, Schema, String

class Base(Schema):
    __abstract__ = True
    metadata = sa.MetaData()

class Event(Base):
    __tablename__ = "events"
    id = String(40, primary_key=True)
    n = Integer()
    pad = String(64)

url, lake, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    result = Pipeline(url, store=lake).copy(Event, "events").run()
except Exception as exc:
    print(json.dumps({"error": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}))
else:
    print(json.dumps({"rows": result.rows_loaded}))
"""


def run_child(url: str, lake: Path, limit: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(lake), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome


@pytest.mark.duckdb
def test_duckdb_files_that_cannot_grow_fail_the_step_and_keep_the_database(
    tmp_path: Path, folder_lake: FolderLake, event: Any
) -> None:
    path = tmp_path / "warehouse.duckdb"
    url = f"duckdb:///{path}"
    folder_lake.put("events/a.json", 100)
    engine = sa.create_engine(url)
    pipeline = Pipeline(engine, store=folder_lake.root).copy(event, "events")
    assert pipeline.run().rows_loaded == 100
    before = snapshot(engine)
    engine.dispose()  # the child process opens the file
    folder_lake.put("events/b.json", 60_000)  # more than the file may grow by
    limit = path.stat().st_size + 4096
    outcome = run_child(url, folder_lake.root, limit)
    assert "PipelineError" in outcome["error"], outcome
    assert outcome["message"].startswith(f"step {LABEL!r} failed: ")
    assert str(path) in outcome["message"]
    assert "File too large" in outcome["message"]
    try:
        assert snapshot(engine) == before
    finally:
        engine.dispose()
    try:
        assert pipeline.run().rows_loaded == 60_000
        assert_exactly_once(engine, folder_lake.objects)
    finally:
        engine.dispose()


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where``; skips the test where mounting is not allowed."""
    where.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


@pytest.mark.duckdb
def test_duckdb_on_a_full_filesystem_fails_the_step_and_keeps_the_database(
    tmp_path: Path, folder_lake: FolderLake, event: Any
) -> None:
    with tmpfs(tmp_path / "mnt", "3m") as mnt:
        engine = sa.create_engine(f"duckdb:///{mnt / 'warehouse.duckdb'}")
        try:
            pipeline = Pipeline(engine, store=folder_lake.root).copy(event, "events")
            folder_lake.put("events/a.json", 100)
            pipeline.run()
            before = snapshot(engine)
            folder_lake.put("events/b.json", 60_000)
            with pytest.raises(PipelineError) as caught:
                pipeline.run()
            assert_names(caught.value, "No space left on device", str(mnt))
            engine.dispose()
            assert snapshot(engine) == before
            engine.dispose()
            remount(mnt, "size=64m")
            assert pipeline.run().rows_loaded == 60_000
            assert_exactly_once(engine, folder_lake.objects)
        finally:
            engine.dispose()


@pytest.mark.duckdb
def test_duckdb_whose_wal_cannot_be_created_fails_the_step_and_keeps_the_database(
    tmp_path: Path, folder_lake: FolderLake, event: Any
) -> None:
    path = tmp_path / "warehouse.duckdb"
    engine = sa.create_engine(f"duckdb:///{path}")
    try:
        pipeline = Pipeline(engine, store=folder_lake.root).copy(event, "events")
        folder_lake.put("events/a.json", 100)
        pipeline.run()
        before = snapshot(engine)
        engine.dispose()  # the next connection writes a new WAL...
        wal = Path(f"{path}.wal")
        wal.symlink_to(tmp_path / "no-such-folder" / "wal")  # ...where no file can be made
        folder_lake.put("events/b.json", 1000)
        with pytest.raises(CopyError) as caught:
            pipeline.run()
        assert_names(caught.value, str(wal))
        engine.dispose()
        wal.unlink()
        assert snapshot(engine) == before
        assert pipeline.run().rows_loaded == 1000
        assert_exactly_once(engine, folder_lake.objects)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("duckdb-parent-is-a-file", marks=pytest.mark.duckdb),
        pytest.param("duckdb-read-only-mount", marks=pytest.mark.duckdb),
        pytest.param("postgresql-refused", marks=pytest.mark.postgres),
    ],
)
def test_a_warehouse_that_cannot_be_opened_is_a_pipeline_error(
    where: str, tmp_path: Path, folder_lake: FolderLake, event: Any
) -> None:
    folder_lake.put("events/a.json", 10)
    with contextlib.ExitStack() as stack:
        if where == "duckdb-parent-is-a-file":
            (tmp_path / "file").write_text("not a folder")
            url, named = f"duckdb:///{tmp_path / 'file' / 'w.duckdb'}", str(tmp_path / "file")
        elif where == "duckdb-read-only-mount":
            mnt = stack.enter_context(tmpfs(tmp_path / "mnt", "8m"))
            url, named = f"duckdb:///{mnt / 'w.duckdb'}", str(mnt)
            loaded = Pipeline(url, store=folder_lake.root).copy(event, "events")
            loaded.run()
            before = snapshot(loaded.engine)
            loaded.engine.dispose()  # a file open for writing keeps the mount busy
            folder_lake.put("events/b.json", 10)
            remount(mnt, "ro")
        else:
            with socket_closed_port() as port:
                url, named = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/test", str(port)
        pipeline = Pipeline(url, store=folder_lake.root).copy(event, "events")
        try:
            with pytest.raises(PipelineError) as caught:
                pipeline.run()
        finally:
            pipeline.engine.dispose()
        assert named in str(caught.value)
        if where == "duckdb-read-only-mount":
            reader = sa.create_engine(url, connect_args={"read_only": True})
            try:
                assert snapshot(reader) == before
            finally:
                reader.dispose()


@contextlib.contextmanager
def socket_closed_port() -> Iterator[int]:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port
