"""Run the benchmarks side by side and write ``benchmarks/RESULTS.md``.

    python -m benchmarks.run                      # N = 1,000,000, every method, 5 rounds
    python -m benchmarks.run -n 100000 --methods arbalest-duckdb-folder,floor-duckdb
    python -m benchmarks.run --sizes 100000,1000000,10000000 --rounds-large 3
    python -m benchmarks.run --data /path/to/events-n1000000-f100   # reuse a data set
    python -m benchmarks.run --list

Each method runs in a fresh child process (its peak memory is its own) against the same data.
Each warehouse's floor and Arbalest's loads into it run in interleaved rounds (floor,
Arbalest, floor, Arbalest, ...), and Arbalest's speed is compared with the floor's round by
round, because absolute figures drift on shared machines; dlt, planning against a big journal
and listing a big S3 prefix run once. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import events, report
from benchmarks.methods import BENCH_SCHEMA, METHODS, Spec

HERE = Path(__file__).resolve().parent
DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
START, END = "<!-- results:start -->", "<!-- results:end -->"
S3_METHODS = {"arbalest-postgresql-s3", "arbalest-duckdb-s3", "s3-listing"}
WAREHOUSES = ("postgresql", "duckdb")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        return _child(args.child, Spec(**json.loads(args.spec)))
    if args.list:
        print("\n".join(METHODS))
        return 0
    methods = list(METHODS) if args.methods == "all" else args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"unknown method(s): {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    sizes = sorted({args.n, *args.sizes})
    results: list[dict[str, Any]] = []
    runs: list[report.SizeRun] = []
    with tempfile.TemporaryDirectory(prefix="arbalest-bench-") as workdir:
        for size in sizes:
            data = _data_set(args, size)
            if any(_format(m) != "json" for m in methods):
                print(f"data: Parquet and CSV copies in {data} (writing if needed)", flush=True)
                events.write_formats(data)
            run = report.SizeRun(size, data, _rounds(args, size), size == args.n)
            runs.append(run)
            results += _run_size(args, methods, run, Path(workdir) / f"n{size}")
    if any("postgresql" in m for m in methods):
        _drop_schemas(args)
    header = [
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: `python -m benchmarks.run "
        + " ".join(sys.argv[1:] if argv is None else argv)
        + "`",
        "",
        _machine(args.postgres_url),
    ]
    text = report.render(results, runs, header)
    print(text)
    _write(args.output, text)
    failed = [r for r in results if r.get("error") or r.get("verified") is False]
    return 1 if failed else 0


def _rounds(args: argparse.Namespace, size: int) -> int:
    """``--rounds``, or ``--rounds-large`` at the sizes above ``-n``."""
    large = size > args.n and args.rounds_large is not None
    return int(args.rounds_large if large else args.rounds)


def _data_set(args: argparse.Namespace, size: int) -> Path:
    """The data set of ``size`` events: ``--data`` at ``-n`` if given, else under
    ``--data-root``; generated if it has no manifest yet."""
    if args.data is not None and size == args.n:
        data: Path = args.data
        if (data / "manifest.json").exists():
            return data  # reused as it is, whatever its size
    else:
        data = args.data_root / f"events-n{size}-f{args.files}"
    print(f"data: {data} (generating if needed)", flush=True)
    return events.generate(data, size, args.files)


def _rounded(method: str) -> bool:
    """Floors and Arbalest's loads run in rounds, at every size; the rest once, at ``-n``."""
    return method.startswith(("floor-", "arbalest-"))


def _format(method: str) -> str:
    """The source format a method reads: ``"parquet"`` or ``"csv"`` by its last word, else
    ``"json"``."""
    last = method.rsplit("-", 1)[-1]
    return last if last in events.FORMATS else "json"


def _round_order(methods: list[str]) -> list[str]:
    """One round: for each warehouse and each format, the floor, then Arbalest's loads of
    that format into that warehouse. Parquet's loads into PostgreSQL follow the CSV floor
    (``floor-postgresql-csv``, their floor too), as do CSV's."""
    order = []
    for warehouse in WAREHOUSES:
        for fmt in ("json", *events.FORMATS):
            floor = f"floor-{warehouse}" + ("" if fmt == "json" else f"-{fmt}")
            if warehouse == "postgresql" and fmt == "parquet":
                floor = f"floor-{warehouse}-csv"
            if floor not in order:
                order += [m for m in methods if m == floor]
            order += [
                m for m in methods if m.startswith(f"arbalest-{warehouse}-") and _format(m) == fmt
            ]
    return order


def _run_size(
    args: argparse.Namespace, methods: list[str], run: report.SizeRun, workdir: Path
) -> list[dict[str, Any]]:
    """Every round of the floors and Arbalest's loads at one size, then (at ``-n``) the
    methods that run once; each row tagged with its size and round."""
    here = [m for m in methods if run.main or _rounded(m)]
    rounded = _round_order([m for m in here if _rounded(m)])
    once = [m for m in here if not _rounded(m)]
    _make_lake(workdir, run.data)
    out: list[dict[str, Any]] = []
    with _s3(S3_METHODS & set(here), workdir, run.data, args) as (endpoint, bucket):
        spec = Spec(
            data=str(run.data),
            workdir=str(workdir),
            postgres_url=args.postgres_url,
            s3_endpoint=endpoint,
            s3_bucket=bucket,
            options={
                "journal_keys": args.journal_keys,
                "new_objects": args.new_objects,
                "listing_objects": args.listing_objects,
                "dlt_max_files": args.dlt_max_files or args.files,
                "duckdb_memory_limit": args.duckdb_memory_limit,
                "postgres_schema": args.postgres_schema,
            },
        )
        schedule = [(r, m) for r in range(1, run.rounds + 1) for m in rounded]
        schedule += [(1, m) for m in once]
        for round_, method in schedule:
            where = f"N={run.size:,}" + (
                f" round {round_}/{run.rounds}" if _rounded(method) else ""
            )
            for row in _run_child(method, spec, where):
                out.append({**row, "size": run.size, "round": round_})
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-n", type=int, default=1_000_000, help="events: the size every method runs at (1,000,000)"
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[],
        help="comma-separated event counts where the floors and Arbalest's loads run too",
    )
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=5,
        help="interleaved rounds of the floors and Arbalest's loads (default 5)",
    )
    parser.add_argument(
        "--rounds-large", type=_positive, help="rounds at the sizes above -n (default --rounds)"
    )
    parser.add_argument("--files", type=int, default=events.FILES, help="objects (default 100)")
    parser.add_argument(
        "--data",
        type=Path,
        help="the data set folder of size -n: reused as it is if it has a manifest.json",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=HERE / ".data",
        help="where data sets events-n<N>-f<files> are found or made (benchmarks/.data)",
    )
    parser.add_argument("--methods", default="all", help="comma-separated (see --list)")
    parser.add_argument("--list", action="store_true", help="list the methods and exit")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("ARBALEST_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help="a PostgreSQL database to use (its benchmark schemas are dropped and made)",
    )
    parser.add_argument(
        "--postgres-schema",
        default=BENCH_SCHEMA,
        help=f"the schema loads go into, dropped at the end with <it>_dlt ({BENCH_SCHEMA})",
    )
    parser.add_argument("--journal-keys", type=int, default=1_000_000)
    parser.add_argument("--new-objects", type=int, default=10_000)
    parser.add_argument("--listing-objects", type=int, default=100_000)
    parser.add_argument("--dlt-max-files", type=int, help="give dlt only the first files")
    parser.add_argument(
        "--duckdb-memory-limit",
        help="DuckDB's memory_limit for Arbalest's DuckDB warehouses "
        "(default: Arbalest's, as for a URL)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def _sizes(text: str) -> list[int]:
    return [_positive(part.replace("_", "")) for part in text.split(",") if part.strip()]


# -- the children ------------------------------------------------------------------------------


def _child(method: str, spec: Spec) -> int:
    rows = [m.as_dict() for m in METHODS[method](spec)]
    print("RESULT " + json.dumps(rows), flush=True)
    return 0


def _run_child(method: str, spec: Spec, where: str) -> list[dict[str, Any]]:
    print(f"running {method} ({where}) ...", flush=True)
    command = [sys.executable, "-m", "benchmarks.run", "--child", method]
    command += ["--spec", json.dumps(asdict(spec))]
    done = subprocess.run(
        command, cwd=HERE.parent, capture_output=True, text=True, env=os.environ.copy()
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            rows: list[dict[str, Any]] = json.loads(line[len("RESULT ") :])
            for row in rows:
                cpu = row["cpu_seconds"]
                print(
                    f"  {row['method']}: {report.rate(row)} rows/s, {row['seconds']:.2f} s, "
                    f"CPU {'-' if cpu is None else f'{cpu:.2f}'} s, "
                    f"peak {row['peak_rss_mb']:.0f} MB, verified={row['verified']}",
                    flush=True,
                )
            return rows
    error = (done.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"  {method} FAILED: {error}", flush=True)
    for line in done.stderr.strip().splitlines()[-20:]:  # the cause, not only its last line
        print(f"    {line}", flush=True)
    return [{"method": method, "error": error, "stderr": done.stderr[-4000:]}]


def _drop_schemas(args: argparse.Namespace) -> None:
    """Drop what the loads left in PostgreSQL (the benchmark schema and dlt's)."""
    import sqlalchemy as sa

    engine = sa.create_engine(args.postgres_url)
    with contextlib.suppress(sa.exc.DBAPIError), engine.begin() as conn:
        for schema in (args.postgres_schema, f"{args.postgres_schema}_dlt"):
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    engine.dispose()


# -- the data where each store reads it ---------------------------------------------------------


def _make_lake(workdir: Path, data: Path) -> None:
    """A folder store whose ``events/`` links to the parts (the manifest stays out), and
    ``events-parquet/`` and ``events-csv/`` to their copies when they were written."""
    for fmt in ("json", *events.FORMATS):
        folder = workdir / "lake" / ("events" if fmt == "json" else f"events-{fmt}")
        folder.mkdir(parents=True)
        for part in events.parts(data, fmt):
            (folder / part.name).symlink_to(part)


@contextlib.contextmanager
def _s3(
    needed: set[str], workdir: Path, data: Path, args: argparse.Namespace
) -> Iterator[tuple[str | None, str | None]]:
    """moto's S3 server in this process, holding the parts (and a large listing if asked)."""
    if not needed:
        yield None, None
        return
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    bucket = "arbalest-bench"
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket=bucket)
        print("uploading the parts to moto's S3 server ...", flush=True)
        for part in events.parts(data):
            client.upload_file(str(part), bucket, f"lake/events/{part.name}")
        if "s3-listing" in needed:
            _many_objects(bucket, args.listing_objects)
        yield endpoint, bucket
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


def _many_objects(bucket: str, count: int) -> None:
    """``count`` small objects under ``many/``, written straight into moto's in-process
    backend (a PUT per object over HTTP would take minutes); they are listed over HTTP."""
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]  # moto's default account
    for index in range(count):
        backend.put_object(bucket, f"many/{index // 1000:03d}/{index:07d}.json", b"{}\n")


# -- the report --------------------------------------------------------------------------------


def _machine(postgres_url: str) -> str:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 2**20:.0f} GiB"
    server = "unreachable"
    with contextlib.suppress(Exception):
        import sqlalchemy as sa

        engine = sa.create_engine(postgres_url)
        with engine.connect() as conn:
            server = str(conn.exec_driver_sql("SHOW server_version").scalar())
        engine.dispose()
    commit = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    packages = ", ".join(
        f"{p} {version(p)}" for p in ("duckdb", "psycopg2-binary", "sqlalchemy", "pyarrow", "dlt")
    )
    return (
        f"Machine: {cpu}, {os.cpu_count()} cores, {memory}; {platform.platform()}; "
        f"Python {platform.python_version()}; PostgreSQL {server}; {packages}; "
        f"arbalest {version('arbalest')} at {commit}."
    )


def _write(path: Path, report: str) -> None:
    """Put the report between the markers of ``path``, keeping the hand-written rest."""
    block = f"{START}\n{report}{END}"
    if path.exists():
        text = path.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            path.write_text(head + block + tail)
            return
    path.write_text(f"# Benchmark results\n\n{block}\n")


if __name__ == "__main__":
    sys.exit(main())
