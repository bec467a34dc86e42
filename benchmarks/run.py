"""Run the benchmarks side by side and write ``benchmarks/RESULTS.md``.

    python -m benchmarks.run                      # N = 1,000,000, every method
    python -m benchmarks.run -n 100000 --methods arbalest-duckdb-folder,floor-duckdb
    python -m benchmarks.run --data /path/to/events-n1000000-f100   # reuse a data set
    python -m benchmarks.run --list

Each method runs in a fresh child process (its peak memory is its own), one after the other,
against the same data: Arbalest's loads, each warehouse's floor, dlt, planning against a big
journal and listing a big S3 prefix. Speeds are compared as ratios within the run, because
absolute figures drift on shared machines. Nothing here asserts a time.
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

from benchmarks import events
from benchmarks.methods import METHODS, Spec

HERE = Path(__file__).resolve().parent
DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
START, END = "<!-- results:start -->", "<!-- results:end -->"
S3_METHODS = {"arbalest-postgresql-s3", "arbalest-duckdb-s3", "s3-listing"}


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
    data = args.data or HERE / ".data" / f"events-n{args.n}-f{args.files}"
    if args.data is None or not (data / "manifest.json").exists():
        print(f"data: {data} (generating if needed)", flush=True)
        events.generate(data, args.n, args.files)
    with tempfile.TemporaryDirectory(prefix="arbalest-bench-") as workdir:
        _make_lake(Path(workdir), data)
        with _s3(S3_METHODS & set(methods), Path(workdir), data, args) as (endpoint, bucket):
            spec = Spec(
                data=str(data),
                workdir=workdir,
                postgres_url=args.postgres_url,
                s3_endpoint=endpoint,
                s3_bucket=bucket,
                options={
                    "journal_keys": args.journal_keys,
                    "new_objects": args.new_objects,
                    "listing_objects": args.listing_objects,
                    "dlt_max_files": args.dlt_max_files or args.files,
                    "duckdb_memory_limit": args.duckdb_memory_limit,
                },
            )
            results = [row for method in methods for row in _run_child(method, spec)]
    report = _report(results, args, data)
    print(report)
    _write(args.output, report)
    failed = [r for r in results if r.get("error") or r.get("verified") is False]
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-n", type=int, default=1_000_000, help="events (default 1,000,000)")
    parser.add_argument("--files", type=int, default=events.FILES, help="objects (default 100)")
    parser.add_argument(
        "--data", type=Path, help="a data set folder: reused as it is if it has a manifest.json"
    )
    parser.add_argument("--methods", default="all", help="comma-separated (see --list)")
    parser.add_argument("--list", action="store_true", help="list the methods and exit")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("ARBALEST_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help="a PostgreSQL database to use (a schema arbalest_bench is dropped and made)",
    )
    parser.add_argument("--journal-keys", type=int, default=1_000_000)
    parser.add_argument("--new-objects", type=int, default=10_000)
    parser.add_argument("--listing-objects", type=int, default=100_000)
    parser.add_argument("--dlt-max-files", type=int, help="give dlt only the first files")
    parser.add_argument(
        "--duckdb-memory-limit",
        help="DuckDB's memory_limit for Arbalest's DuckDB warehouses (default: DuckDB's own)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    return parser


# -- the children ------------------------------------------------------------------------------


def _child(method: str, spec: Spec) -> int:
    rows = [m.as_dict() for m in METHODS[method](spec)]
    print("RESULT " + json.dumps(rows), flush=True)
    return 0


def _run_child(method: str, spec: Spec) -> list[dict[str, Any]]:
    print(f"running {method} ...", flush=True)
    command = [sys.executable, "-m", "benchmarks.run", "--child", method]
    command += ["--spec", json.dumps(asdict(spec))]
    done = subprocess.run(
        command, cwd=HERE.parent, capture_output=True, text=True, env=os.environ.copy()
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            rows: list[dict[str, Any]] = json.loads(line[len("RESULT ") :])
            for row in rows:
                print(
                    f"  {row['method']}: {_rate(row)} rows/s, {row['seconds']:.2f} s, "
                    f"peak {row['peak_rss_mb']:.0f} MB, verified={row['verified']}",
                    flush=True,
                )
            return rows
    error = (done.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"  {method} FAILED: {error}", flush=True)
    return [{"method": method, "error": error, "stderr": done.stderr[-4000:]}]


# -- the data where each store reads it ---------------------------------------------------------


def _make_lake(workdir: Path, data: Path) -> None:
    """A folder store whose ``events/`` links to the parts (the manifest stays out)."""
    folder = workdir / "lake" / "events"
    folder.mkdir(parents=True)
    for part in events.parts(data):
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


def _rate(row: dict[str, Any]) -> str:
    if not row.get("rows") or not row.get("seconds"):
        return "-"
    return f"{row['rows'] / row['seconds']:,.0f}"


def _speed(row: dict[str, Any] | None) -> float | None:
    if row is None or row.get("error") or not row.get("rows") or not row.get("seconds"):
        return None
    return float(row["rows"]) / float(row["seconds"])


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def _report(results: list[dict[str, Any]], args: argparse.Namespace, data: Path) -> str:
    by_name = {r["method"]: r for r in results}
    floors = {
        "postgresql": _speed(by_name.get("floor postgresql COPY csv")),
        "duckdb": _speed(by_name.get("floor duckdb read_json")),
    }
    dlts = {w: _speed(by_name.get(f"dlt {w}")) for w in ("postgresql", "duckdb")}
    lines = [
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: `python -m benchmarks.run "
        + " ".join(sys.argv[1:])
        + "`",
        "",
        _machine(args.postgres_url),
        "",
        f"Data: {data.name}, {events.expected(data)['rows']:,} events in "
        f"{len(events.parts(data))} objects.",
        "",
        "| method | rows | seconds | rows/s | × floor | × dlt | peak RSS MB | checked |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in results:
        if row.get("error"):
            lines.append(f"| {row['method']} | failed: {row['error']} | | | | | | |")
            continue
        name = row["method"]
        warehouse = next((w for w in ("postgresql", "duckdb") if w in name), None)
        arbalest_load = name.startswith("arbalest") and not name.endswith("rerun")
        speed = _speed(row)
        lines.append(
            f"| {name} | {row['rows']:,} | {row['seconds']:.2f} | {_rate(row)} | "
            f"{_ratio(speed, floors.get(warehouse or '')) if arbalest_load else ''} | "
            f"{_ratio(speed, dlts.get(warehouse or '')) if arbalest_load else ''} | "
            f"{row['peak_rss_mb']:.0f} | {_checked(row)} |"
        )
    lines += ["", "Targets (ratios within this run):", ""]
    lines += [f"- {t}" for t in _targets(by_name, floors, dlts)]
    return "\n".join(lines) + "\n"


def _checked(row: dict[str, Any]) -> str:
    verified = row.get("verified")
    extra = {k: v for k, v in row.get("detail", {}).items() if k != "fingerprint"}
    text = {True: "yes", False: "**NO**", None: "-"}[verified]
    return text + (f" {json.dumps(extra)}" if extra else "")


def _targets(
    by_name: dict[str, dict[str, Any]],
    floors: dict[str, float | None],
    dlts: dict[str, float | None],
) -> list[str]:
    out = []

    def verdict(ok: bool | None) -> str:
        return {True: "**met**", False: "**not met**", None: "not measured"}[ok]

    for warehouse in ("postgresql", "duckdb"):
        speed = _speed(by_name.get(f"arbalest {warehouse} folder incremental"))
        floor, dlt = floors[warehouse], dlts[warehouse]
        ratio = None if speed is None or floor is None else speed / floor
        out.append(
            f"{warehouse}, folder store: ≥ 0.5× the floor: "
            f"{_ratio(speed, floor)} {verdict(None if ratio is None else ratio >= 0.5)}"
        )
        ratio = None if speed is None or dlt is None else speed / dlt
        out.append(
            f"{warehouse}: ≥ 10× dlt: {_ratio(speed, dlt)} "
            f"{verdict(None if ratio is None else ratio >= 10)}"
        )
        s3 = _speed(by_name.get(f"arbalest {warehouse} s3 incremental"))
        ratio = None if s3 is None or speed is None else s3 / speed
        out.append(
            f"{warehouse}: S3 (moto) ≥ 0.7× the folder store: {_ratio(s3, speed)} "
            f"{verdict(None if ratio is None else ratio >= 0.7)}"
        )
    pg = by_name.get("arbalest postgresql folder incremental", {}).get("detail", {})
    duck = by_name.get("arbalest duckdb folder incremental", {}).get("detail", {})
    same = None
    if pg.get("fingerprint") and duck.get("fingerprint"):
        same = pg["fingerprint"] == duck["fingerprint"]
    out.append(f"DuckDB and PostgreSQL loads hold the same rows (fingerprint): {verdict(same)}")
    peaks = [
        r["peak_rss_mb"]
        for name, r in by_name.items()
        if name.startswith("arbalest") and not r.get("error")
    ]
    out.append(
        f"peak RSS of Arbalest's loads < 250 MB: max {max(peaks):.0f} MB "
        f"{verdict(max(peaks) < 250)}"
        if peaks
        else "peak RSS of Arbalest's loads < 250 MB: not measured"
    )
    for name, row in by_name.items():
        if name.startswith("plan ") and not row.get("error"):
            out.append(
                f"{name}: {row['seconds']:.2f} s < 5 s {verdict(row['seconds'] < 5)}"
                f"{'' if row['verified'] else ' (**wrong plan**)'}"
            )
        if name.startswith("s3 listing") and not row.get("error"):
            detail = row["detail"]
            out.append(
                f"{name}: {row['seconds']:.2f} s (moto's server is most of it); the listing "
                f"kept whole is {detail['listing_held_mb']} MB of Python heap, the pages on "
                f"the way add {detail['pages_in_flight_mb']} MB at most "
                f"{verdict(_paged(detail))} (pages are not all held: under a tenth of the "
                "listing)"
            )
    return out


def _paged(detail: dict[str, float]) -> bool:
    return detail["pages_in_flight_mb"] < 0.1 * detail["listing_held_mb"]


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
