"""The measured methods. Each runs in a fresh child process (``python -m benchmarks.run
--child``) so that its peak memory is its own; setup and checks stay outside the clock.

Every method returns one or more measurements: rows, wall seconds, CPU seconds, peak resident
memory (the process's high-water mark, reset before each timed part) and whether the loaded
rows were checked against the data set's aggregates.

CPU seconds of a timed part are this process's own (user + system, all its threads, from
``getrusage``), plus, when the warehouse is a PostgreSQL server on this machine, the CPU of
every ``postgres`` process in ``/proc`` over the same span: the backend that runs the ``COPY``,
and the WAL writer, checkpointer and background writer that work for it.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import io
import os
import resource
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa

from benchmarks.events import (
    COLUMNS,
    CSV_HEADER,
    CSV_NULL,
    READ_JSON_COLUMNS,
    Event,
    expected,
    parts,
)
from benchmarks.report import REPLACE_FLOORS


@dataclass
class Measurement:
    """One timed part of a method."""

    method: str
    rows: int
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float | None  # None: a part of it could not be measured
    server_cpu_seconds: float | None  # the PostgreSQL server's share; None: not a server load
    verified: bool | None = None  # None: nothing to check against
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        method: str,
        rows: int,
        clock: Clock,
        verified: bool | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Measurement:
        """A measurement of ``rows`` whose times and memory are ``clock``'s."""
        return cls(
            method,
            rows,
            clock.seconds,
            clock.peak_rss_mb,
            clock.cpu_seconds,
            clock.server_cpu_seconds,
            verified,
            detail or {},
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Spec:
    """What the parent hands a child: the data, the servers and where to work."""

    data: str
    workdir: str
    postgres_url: str
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def lake(self) -> Path:
        """A folder store whose ``events/`` holds the parts (and nothing else), and
        ``events-parquet/`` and ``events-csv/`` their copies in those formats."""
        return Path(self.workdir) / "lake"

    @property
    def s3_url(self) -> str:
        return f"s3://{self.s3_bucket}/lake"


# -- memory ------------------------------------------------------------------------------------


def reset_peak_rss() -> None:
    """Start a new high-water mark for this process (Linux: ``/proc/self/clear_refs``)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def peak_rss_mb() -> float:
    """This process's resident-memory high-water mark since the last reset, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- CPU ---------------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")
_LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}


def own_cpu_seconds() -> float:
    """User + system CPU of this process (every thread, live or ended) and of its reaped
    children, so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def server_cpu_seconds() -> float | None:
    """User + system CPU so far of every process named ``postgres`` on this machine, or None
    when ``/proc`` shows none (no local server, or not allowed to see it).

    Each process counts its own time (``utime``, ``stime``) and its ended children's
    (``cutime``, ``cstime``): a backend that exits between two readings moves its time into
    the postmaster's children's count, so the difference of two readings stays right.
    """
    ticks = 0
    found = False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat_file:
                stat = stat_file.read()
        except OSError:  # gone since the listing, or not ours to read
            continue
        # "pid (comm) state ppid ..."; comm may hold spaces and parentheses
        open_paren, close_paren = stat.find(b"("), stat.rfind(b")")
        if stat[open_paren + 1 : close_paren] != b"postgres":
            continue
        fields = stat[close_paren + 2 :].split()
        # fields 14-17 of proc(5), counted from the state (field 3) here
        ticks += sum(int(value) for value in fields[11:15])
        found = True
    return ticks / _TICKS if found else None


def local_server(url: str) -> bool:
    """Whether the PostgreSQL server of ``url`` runs on this machine (its CPU is in /proc)."""
    return sa.make_url(url).host in _LOCAL_HOSTS


def checkpoint(url: str) -> None:
    """Have PostgreSQL write out the pages the previous load left dirty, outside the clock, so
    their writing is not counted against the next load (needs superuser; skipped if refused)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with contextlib.suppress(sa.exc.DBAPIError), engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
    engine.dispose()


@dataclass
class Clock:
    """What ``timed`` measured of its block."""

    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    own_cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    server: bool = False  # whether a PostgreSQL server's CPU belongs to the block

    @property
    def cpu_seconds(self) -> float | None:
        """This process's CPU plus the server's; None if the server's could not be read."""
        if not self.server:
            return self.own_cpu_seconds
        if self.server_cpu_seconds is None:
            return None
        return self.own_cpu_seconds + self.server_cpu_seconds


@contextlib.contextmanager
def timed(spec: Spec | None = None, warehouse: str | None = None) -> Iterator[Clock]:
    """Time the block: wall seconds, CPU seconds and peak memory.

    With ``warehouse="postgresql"`` the server's CPU over the block is counted too (None when
    the server is not on this machine or ``/proc`` does not show it), and a ``CHECKPOINT``
    comes first, outside the clock.
    """
    clock = Clock(server=warehouse == "postgresql")
    local = spec is not None and clock.server and local_server(spec.postgres_url)
    if spec is not None and clock.server:
        checkpoint(spec.postgres_url)
    reset_peak_rss()
    server_before = server_cpu_seconds() if local else None
    own_before = own_cpu_seconds()
    start = time.perf_counter()
    yield clock
    clock.seconds = time.perf_counter() - start
    clock.own_cpu_seconds = own_cpu_seconds() - own_before
    server_after = server_cpu_seconds() if local else None
    if server_before is not None and server_after is not None:
        clock.server_cpu_seconds = server_after - server_before
    clock.peak_rss_mb = peak_rss_mb()


# -- warehouses --------------------------------------------------------------------------------

BENCH_SCHEMA = "arbalest_bench"


def bench_schema(spec: Spec) -> str:
    """The PostgreSQL schema the loads go into (``--postgres-schema``)."""
    return str(spec.options.get("postgres_schema") or BENCH_SCHEMA)


def fresh_postgres(spec: Spec) -> sa.Engine:
    """A PostgreSQL engine whose search_path is an empty benchmark schema."""
    schema = bench_schema(spec)
    admin = sa.create_engine(spec.postgres_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    admin.dispose()
    url = sa.make_url(spec.postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return sa.create_engine(url)


def fresh_duckdb(spec: Spec, name: str) -> sa.Engine:
    path = Path(spec.workdir) / f"{name}.duckdb"
    for old in (path, Path(f"{path}.wal")):
        old.unlink(missing_ok=True)
    # made as Arbalest makes an engine from a URL, with its defaults (a memory_limit)
    from arbalest.pipeline.engines import create_engine

    limit = spec.options.get("duckdb_memory_limit")
    return create_engine(f"duckdb:///{path}" + (f"?memory_limit={limit}" if limit else ""))


def fresh_warehouse(spec: Spec, warehouse: str, name: str) -> sa.Engine:
    return fresh_postgres(spec) if warehouse == "postgresql" else fresh_duckdb(spec, name)


def fingerprint(engine: sa.Engine, table: str = "events") -> dict[str, Any]:
    """Aggregates over every column, the same SQL on PostgreSQL and DuckDB: two loads of the
    same objects agree on all of them, and the first nine must equal the manifest's."""
    epoch_ms = (
        "epoch_ms(created_at)"
        if engine.dialect.name == "duckdb"
        else "CAST(floor(extract(epoch FROM created_at) * 1000) AS BIGINT)"
    )
    sql = f"""
        SELECT count(*), count(optional_code), sum(some_number), sum(child_depth_level),
               sum(CASE WHEN active THEN 1 ELSE 0 END),
               sum(CASE WHEN child_some_boolean THEN 1 ELSE 0 END),
               CAST(sum(amount) * 100 AS BIGINT), sum(length(description)), sum({epoch_ms}),
               sum(user_id), round(CAST(sum(score) AS NUMERIC), 3), count(DISTINCT id),
               sum(length(category)), sum(length(child_name)), sum(length(optional_code))
        FROM {table}
    """
    names = [
        "rows",
        "optional_code_present",
        "sum_some_number",
        "sum_child_depth_level",
        "active_true",
        "child_some_boolean_true",
        "sum_amount_cents",
        "sum_description_chars",
        "sum_created_at_epoch_ms",
        "sum_user_id",
        "sum_score",
        "distinct_ids",
        "sum_category_chars",
        "sum_child_name_chars",
        "sum_optional_code_chars",
    ]
    with engine.connect() as conn:
        values = conn.exec_driver_sql(sql).one()
    return {
        name: (str(value) if name == "sum_score" else int(value or 0))
        for name, value in zip(names, values, strict=True)
    }


def verified(spec: Spec, engine: sa.Engine) -> tuple[bool, dict[str, Any]]:
    """Whether the loaded table reproduces the data set's aggregates, and its fingerprint."""
    got = fingerprint(engine)
    want = expected(Path(spec.data))
    return all(got[name] == value for name, value in want.items()), got


# -- Arbalest ----------------------------------------------------------------------------------


def arbalest(spec: Spec, warehouse: str, store: str, fmt: str = "json") -> list[Measurement]:
    """Arbalest's ``incremental`` load into an empty warehouse, then ``replace`` over it,
    then an incremental rerun that finds nothing to load (planning cost alone).

    ``fmt`` ``"parquet"`` or ``"csv"``: the data set's copies in that format, read with
    ``copy(..., format=fmt)`` (the CSV copies with Arbalest's default options: a header, a
    comma, ``\\N`` for NULL)."""
    from arbalest import Pipeline

    engine = fresh_warehouse(spec, warehouse, f"arbalest-{store}-{fmt}")
    location = spec.s3_url if store == "s3" else str(spec.lake)
    label = f"arbalest {warehouse} {store}" + ("" if fmt == "json" else f" {fmt}")
    source = "events" if fmt == "json" else f"events-{fmt}"
    out: list[Measurement] = []
    for mode in ("incremental", "replace", "rerun"):
        pipeline = Pipeline(engine, store=location).copy(
            Event,
            source=source,
            mode="replace" if mode == "replace" else "incremental",
            format=fmt,
        )
        with timed(spec, warehouse) as clock:
            result = pipeline.run()
        rows = result.rows_loaded
        ok, got = verified(spec, engine)
        rejects = sum(len(step.rejects) for step in result.steps)
        out.append(
            Measurement.of(
                f"{label} {mode}",
                rows,
                clock,
                ok and rejects == 0 and rows == (0 if mode == "rerun" else got["rows"]),
                {"fingerprint": got, "rejects": rejects},
            )
        )
    engine.dispose()
    return out


# -- floors ------------------------------------------------------------------------------------


def _read_json_columns() -> str:
    """DuckDB ``read_json`` ``columns=`` for the events, nested objects as STRUCTs."""
    return READ_JSON_COLUMNS % "TIMESTAMPTZ"


_FLAT_SELECT = (
    "id, someNumber, amount, createdAt, description, active, category, userId, score, "
    "optionalCode, child.someBoolean, child.name, child.depth.level"
)


def _create_table_sql(dialect: str) -> str:
    column = 1 if dialect == "postgresql" else 2
    return "CREATE TABLE events (" + ", ".join(f"{c[0]} {c[column]}" for c in COLUMNS) + ")"


def flat_csv(spec: Spec) -> list[Path]:
    """The parts flattened to CSV beforehand (by DuckDB), for the PostgreSQL floor."""
    import duckdb

    folder = Path(spec.workdir) / "flat-csv"
    folder.mkdir(exist_ok=True)
    paths = []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for part in parts(Path(spec.data)):
        target = folder / f"{part.stem}.csv"
        if not target.exists():
            con.execute(
                f"COPY (SELECT {_FLAT_SELECT} FROM read_json('{part}', "
                f"format='newline_delimited', columns={_read_json_columns()})) "
                f"TO '{target}' (FORMAT csv, HEADER false)"
            )
        paths.append(target)
    con.close()
    return paths


def _timed_copy(
    spec: Spec, engine: sa.Engine, files: list[Path], options: str, first: str
) -> Clock:
    """``COPY events FROM STDIN WITH (options)`` of each of ``files``, timed, in one
    transaction that runs ``first`` (if any) before them."""
    names = ", ".join(c[0] for c in COLUMNS)
    pooled = engine.raw_connection()
    raw: Any = pooled.dbapi_connection  # psycopg2's own connection
    try:
        with timed(spec, "postgresql") as clock:
            with raw.cursor() as cursor:
                if first:
                    cursor.execute(first)
                for path in files:
                    with path.open("rb") as data:
                        cursor.copy_expert(
                            f"COPY events ({names}) FROM STDIN WITH ({options})", data, 1 << 20
                        )
            raw.commit()
    finally:
        pooled.close()
    return clock


def postgres_floor(spec: Spec) -> list[Measurement]:
    """``COPY FROM STDIN`` of CSV flattened in advance: PostgreSQL's own ingest speed; then
    the same over the rows it loaded, after a ``DELETE`` in the same transaction (what a
    hand-written replace costs the server: readers see the old rows or the new)."""
    files = flat_csv(spec)
    engine = fresh_postgres(spec)
    with engine.begin() as conn:
        conn.exec_driver_sql(_create_table_sql("postgresql"))
    out = []
    for label, first in (
        ("floor postgresql COPY csv", ""),
        (REPLACE_FLOORS["postgresql"], "DELETE FROM events"),
    ):
        clock = _timed_copy(spec, engine, files, "FORMAT csv", first)
        ok, got = verified(spec, engine)
        out.append(Measurement.of(label, got["rows"], clock, ok, {"fingerprint": got}))
    engine.dispose()
    return out


def postgres_csv_floor(spec: Spec) -> list[Measurement]:
    """``COPY FROM STDIN (FORMAT csv, HEADER, NULL '\\N')`` of the data set's CSV copies,
    as they are: PostgreSQL's own speed on the objects Arbalest's CSV loads read.

    It is also the floor of the Parquet loads into PostgreSQL: PostgreSQL reads no Parquet,
    so any way in goes through a client that decodes it and hands the server rows, and the
    least the server can do with those rows is a ``COPY`` of them in its native text format.
    This floor is that ``COPY`` of the same rows, with the decoding counted as free (a
    stricter floor than any client's Parquet-to-COPY path)."""
    files = parts(Path(spec.data), "csv")
    engine = fresh_postgres(spec)
    with engine.begin() as conn:
        conn.exec_driver_sql(_create_table_sql("postgresql"))
    options = f"FORMAT csv, HEADER true, NULL '{CSV_NULL}'"
    clock = _timed_copy(spec, engine, files, options, "")
    ok, got = verified(spec, engine)
    engine.dispose()
    detail = {"fingerprint": got}
    return [Measurement.of("floor postgresql COPY csv files", got["rows"], clock, ok, detail)]


def duckdb_format_floor(spec: Spec, fmt: str) -> list[Measurement]:
    """DuckDB's own reader of the data set's Parquet or CSV copies into a typed table:
    ``read_parquet`` (the file's own types), or ``read_csv`` with the header, the null
    string and explicit column types."""
    import duckdb

    path = Path(spec.workdir) / f"floor-{fmt}.duckdb"
    for old in (path, Path(f"{path}.wal")):
        old.unlink(missing_ok=True)
    glob = str(Path(spec.data) / fmt / f"part-*.{fmt}")
    if fmt == "parquet":
        read = f"read_parquet('{glob}')"
        select = _FLAT_SELECT
    else:
        types = ", ".join(
            f"'{name}': '{column[2]}'" for name, column in zip(CSV_HEADER, COLUMNS, strict=True)
        )
        read = (
            f"read_csv('{glob}', header = true, delim = ',', quote = '\"', escape = '\"', "
            f"nullstr = '{CSV_NULL}', columns = {{{types}}})"
        )
        select = ", ".join(f'"{name}"' for name in CSV_HEADER)
    with timed(spec, "duckdb") as clock:
        con = duckdb.connect(str(path))
        con.execute(_create_table_sql("duckdb"))
        con.execute(f"INSERT INTO events SELECT {select} FROM {read}")
        con.close()
    engine = sa.create_engine(f"duckdb:///{path}")
    ok, got = verified(spec, engine)
    engine.dispose()
    name = "read_parquet" if fmt == "parquet" else "read_csv"
    return [Measurement.of(f"floor duckdb {name}", got["rows"], clock, ok, {"fingerprint": got})]


def duckdb_floor(spec: Spec) -> list[Measurement]:
    """DuckDB's ``read_json`` with explicit column types: DuckDB's own JSON ingest speed."""
    import duckdb

    path = Path(spec.workdir) / "floor.duckdb"
    for old in (path, Path(f"{path}.wal")):
        old.unlink(missing_ok=True)
    glob = str(Path(spec.data) / "part-*.ndjson")
    with timed(spec, "duckdb") as clock:
        con = duckdb.connect(str(path))
        con.execute(_create_table_sql("duckdb"))
        con.execute(
            f"INSERT INTO events SELECT {_FLAT_SELECT} FROM read_json('{glob}', "
            f"format='newline_delimited', columns={_read_json_columns()})"
        )
        con.close()
    engine = sa.create_engine(f"duckdb:///{path}")
    ok, got = verified(spec, engine)
    engine.dispose()
    return [Measurement.of("floor duckdb read_json", got["rows"], clock, ok, {"fingerprint": got})]


# -- dlt ---------------------------------------------------------------------------------------


def dlt(spec: Spec, warehouse: str) -> list[Measurement]:
    """dlt on the same objects: parsed by orjson one file at a time and handed over as lists
    (dlt's fastest input), with its fastest loader format for the warehouse."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    import dlt as dlt_module
    import orjson

    files = parts(Path(spec.data))
    limit = int(spec.options.get("dlt_max_files", len(files)))
    files = files[:limit]

    @dlt_module.resource(name="events", write_disposition="append")
    def events() -> Iterator[list[Any]]:
        for path in files:
            yield [orjson.loads(line) for line in path.read_bytes().splitlines() if line]

    dataset = f"{bench_schema(spec)}_dlt"
    if warehouse == "postgresql":
        fresh_postgres(spec).dispose()
        url = sa.make_url(spec.postgres_url)
        destination: Any = dlt_module.destinations.postgres(
            credentials=url.set(
                drivername="postgresql", password=url.password or "unused"
            ).render_as_string(hide_password=False)
        )
        file_format = None  # insert_values, dlt's default and fastest for PostgreSQL here
        with sa.create_engine(spec.postgres_url).begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {dataset} CASCADE")
    else:
        path = Path(spec.workdir) / "dlt.duckdb"
        path.unlink(missing_ok=True)
        destination = dlt_module.destinations.duckdb(credentials=str(path))
        file_format = "parquet"  # 5x dlt's default for DuckDB, at a tenth of the memory
    pipeline = dlt_module.pipeline(
        pipeline_name=f"bench_{warehouse}",
        pipelines_dir=str(Path(spec.workdir) / "dlt-pipelines"),
        destination=destination,
        dataset_name=dataset,
    )
    kwargs: dict[str, Any] = {"loader_file_format": file_format} if file_format else {}
    with timed(spec, warehouse) as clock:
        info = pipeline.run(events(), **kwargs)
    info.raise_on_failed_jobs()
    with pipeline.sql_client() as client:
        counted: Any = client.execute_sql("SELECT count(*) FROM events")
        rows = int(counted[0][0])
    want = sum(1 for path in files for line in path.read_bytes().splitlines() if line)
    return [
        Measurement.of(
            f"dlt {warehouse}",
            rows,
            clock,
            rows == want,
            {"dlt": dlt_module.__version__, "loader_file_format": file_format or "insert_values"},
        )
    ]


# -- planning and listing ----------------------------------------------------------------------


class SyntheticStore:
    """A store whose listing is already in memory: planning is measured against the journal,
    not against a file system's directory walk or S3's pagination (measured apart)."""

    def __init__(self, count: int) -> None:
        from arbalest.stores.base import ObjectInfo

        self.url = "synthetic://events"
        modified = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        # made before the clock starts: what is measured is Arbalest's work, not this store's
        self.objects = [
            ObjectInfo(f"events/{index:09d}.json", 1000, f"etag-{index}", modified)
            for index in range(count)
        ]

    def list(self, prefix: str = "", *, exclude: str | None = None) -> Iterator[Any]:
        yield from self.objects

    def children(self, prefix: str = "") -> builtins.list[str]:
        return ["events"]

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(b"")

    def get(self, key: str) -> bytes:
        return b""

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def uri(self, key: str) -> str:
        return f"{self.url}/{key}"


def _fill_journal(engine: sa.Engine, keys: int) -> None:
    """``keys`` journal entries for the events target, written by the database itself."""
    from arbalest import journal

    with engine.begin() as conn:
        journal.ensure(conn)
        conn.exec_driver_sql(_create_table_sql(engine.dialect.name))
        series = (
            f"generate_series(0, {keys - 1}) AS s(i)"
            if engine.dialect.name == "postgresql"
            else f"range({keys}) AS s(i)"
        )
        pad = "lpad(CAST(i AS VARCHAR), 9, '0')"
        conn.exec_driver_sql(
            "INSERT INTO _arbalest_journal (target, key, etag, size, last_modified, "
            "rows_loaded, rows_rejected, mode, store, run_id, loaded_at) "
            f"SELECT 'events', 'events/' || {pad} || '.json', 'etag-' || CAST(i AS VARCHAR), "
            "1000, CURRENT_TIMESTAMP, 10, 0, 'incremental', 'synthetic://events', "
            f"'00000000-0000-0000-0000-000000000000', CURRENT_TIMESTAMP FROM {series}"
        )


def planning(spec: Spec, warehouse: str) -> list[Measurement]:
    """``plan()`` of an incremental copy against a journal of 1,000,000 keys, with 10,000 new
    objects in the listing."""
    from arbalest import Pipeline

    journal_keys = int(spec.options.get("journal_keys", 1_000_000))
    new = int(spec.options.get("new_objects", 10_000))
    engine = fresh_warehouse(spec, warehouse, "planning")
    _fill_journal(engine, journal_keys)
    store: Any = SyntheticStore(journal_keys + new)
    pipeline = Pipeline(engine, store=store).copy(Event, source="events")
    with timed(spec, warehouse) as clock:
        plan = pipeline.plan()
    keys = plan.steps[0].keys
    engine.dispose()
    return [
        Measurement.of(
            f"plan {warehouse} journal={journal_keys:,} new={new:,}",
            0,
            clock,
            len(keys) == new and keys[0] == f"events/{journal_keys:09d}.json",
            {"new_objects_found": len(keys)},
        )
    ]


def s3_listing(spec: Spec) -> list[Measurement]:
    """Listing an S3 prefix of many objects (moto's server): the time of a listing streamed
    through, then the Python heap while a listing is kept whole: its peak beyond what is kept
    is what the pages cost on the way (one page at a time, not all of them)."""
    from arbalest.stores.s3 import S3Store

    store = S3Store(f"s3://{spec.s3_bucket}/many")
    with timed() as clock:  # moto's server runs in the parent: its CPU is not counted here
        count = sum(1 for _ in store.list())
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    kept = list(store.list())
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    want = int(spec.options.get("listing_objects", 100_000))
    return [
        Measurement.of(
            f"s3 listing {want:,} objects",
            0,
            clock,
            count == len(kept) == want,
            {
                "listing_held_mb": round((held - before) / 2**20, 2),
                "pages_in_flight_mb": round((peak - held) / 2**20, 2),
            },
        )
    ]


METHODS: dict[str, Callable[[Spec], list[Measurement]]] = {
    "floor-postgresql": postgres_floor,
    "floor-duckdb": duckdb_floor,
    "arbalest-postgresql-folder": lambda spec: arbalest(spec, "postgresql", "folder"),
    "arbalest-duckdb-folder": lambda spec: arbalest(spec, "duckdb", "folder"),
    "arbalest-postgresql-s3": lambda spec: arbalest(spec, "postgresql", "s3"),
    "arbalest-duckdb-s3": lambda spec: arbalest(spec, "duckdb", "s3"),
    "floor-postgresql-csv": postgres_csv_floor,
    "floor-duckdb-parquet": lambda spec: duckdb_format_floor(spec, "parquet"),
    "floor-duckdb-csv": lambda spec: duckdb_format_floor(spec, "csv"),
    "arbalest-postgresql-folder-parquet": lambda spec: arbalest(
        spec, "postgresql", "folder", "parquet"
    ),
    "arbalest-postgresql-folder-csv": lambda spec: arbalest(spec, "postgresql", "folder", "csv"),
    "arbalest-duckdb-folder-parquet": lambda spec: arbalest(spec, "duckdb", "folder", "parquet"),
    "arbalest-duckdb-folder-csv": lambda spec: arbalest(spec, "duckdb", "folder", "csv"),
    "dlt-postgresql": lambda spec: dlt(spec, "postgresql"),
    "dlt-duckdb": lambda spec: dlt(spec, "duckdb"),
    "plan-postgresql": lambda spec: planning(spec, "postgresql"),
    "plan-duckdb": lambda spec: planning(spec, "duckdb"),
    "s3-listing": s3_listing,
}
