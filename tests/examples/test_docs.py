"""Every code block in README.md and docs/ that claims to run, runs.

A page runs as a reader would follow it: in a folder of its own, its Python blocks in one
namespace and its shell blocks in that folder, top to bottom. An HTML comment right before a
block (invisible on the rendered page) says what the block needs:

- ``<!-- docs-test: skip REASON -->``: an illustration, not run (Redshift-only, installs
  packages, a fragment of a larger file...). The reason is required.
- ``<!-- docs-test: setup NAME -->``: run the hidden setup NAME (in ``SETUPS`` below) first,
  e.g. sample objects in a lake or the test's own PostgreSQL schema.
- ``<!-- docs-test: file PATH -->``: the block is the content of the file PATH, written to the
  page's folder instead of run.

Several comments may stand one above the other; setups run before a block is written or run.

A Python block that starts with ``>>>`` is a session: its outputs are checked, as doctest does.
Blocks in ``text``, ``json`` or ``sql`` are output or code shown for reading and never run;
any other language, and any Python or shell block without a comment, must run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import doctest
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import arbalest

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNS = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell"}
FOR_READING = {"text", "json", "sql"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)\s*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<verb>skip|setup|file)\s+(?P<arg>.+?)\s*-->$")
BIN = Path(sys.executable).parent


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    directives: list[tuple[str, str]] = field(default_factory=list)

    def arg(self, verb: str) -> str | None:
        """The argument of the block's directive ``verb``, or None without one."""
        return next((arg for v, arg in self.directives if v == verb), None)

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name
        return f"{page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, each with the directive right before it, if any."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent = len(opening["indent"])
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        i += 1
        directives: list[tuple[str, str]] = []
        previous = start - 1
        while previous >= 0 and (not lines[previous].strip() or DIRECTIVE.match(lines[previous])):
            if directive := DIRECTIVE.match(lines[previous]):
                directives.insert(0, (directive["verb"], directive["arg"]))
            previous -= 1
        block = Block(page, start + 1, opening["lang"].lower(), "\n".join(body) + "\n")
        block.directives = directives
        found.append(block)
    return found


@dataclass
class Reader:
    """What a reader following a page has: a folder, a Python session, a shell."""

    folder: Path
    request: pytest.FixtureRequest
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__docs__"})
    replacements: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(self.folder)]),
            "COLUMNS": "200",
        }

    def write(self, relative: str, text: str) -> Path:
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def postgres_url(self) -> str:
        return str(self.request.getfixturevalue("postgres_url"))


EVENT = """\
from arbalest import Boolean, Decimal, Integer, Nested, Schema, String, Timestamp


class Event(Schema):
    __tablename__ = "events"
    __table_args__ = {"redshift_distkey": "id", "redshift_sortkey": ("created_at",)}

    id = String(36, primary_key=True)
    some_number = Integer(key="someNumber")
    created_at = Timestamp(key="createdAt")
    amount = Decimal(12, 2)

    class child(Nested):
        some_boolean = Boolean(key="someBoolean")

        class depth(Nested):
            level = Integer()
"""


def write_jobs(reader: Reader) -> None:
    """jobs.py: the README's Event schema, and a pipeline loading lake/events into DuckDB."""
    reader.write(
        "jobs.py",
        EVENT + "\nfrom arbalest import Pipeline\n\n"
        'pipeline = Pipeline("duckdb:///warehouse.duckdb", store="lake").copy(Event, "events")\n',
    )


def write_myproject(reader: Reader) -> None:
    """myproject/schemas.py with the README's Event schema."""
    reader.write("myproject/__init__.py", "")
    reader.write("myproject/schemas.py", EVENT)


def define_users(reader: Reader) -> None:
    """A User schema in the session, and its objects under lake/users."""
    reader.write("lake/users/all.json", '{"id": "u1", "name": "Ada"}\n{"id": "u2", "name": "Bo"}\n')
    exec(
        "from arbalest import Schema, String\n\n"
        "class User(Schema):\n"
        '    __tablename__ = "users"\n'
        "    id = String(36, primary_key=True)\n"
        "    name = String(100)\n",
        reader.namespace,
    )


PARTITIONS = ["2014-11-04/00", "2014-11-04/01", "2014-11-05/00", "2014-11-06", "2014-11-07/00"]


def partitioned_lake(reader: Reader) -> None:
    """Partitions laid out as on the time series pages, in lake/ and on S3 (as my-bucket)."""
    import boto3

    bucket = str(reader.request.getfixturevalue("s3_bucket"))
    client = boto3.client("s3", endpoint_url=str(reader.request.getfixturevalue("s3_endpoint")))
    for partition in PARTITIONS:
        day = partition.split("/")[0]
        body = json.dumps({"id": partition, "createdAt": f"{day}T12:00:00"}) + "\n"
        reader.write(f"lake/events/{partition}/part-0.json", body)
        client.put_object(Bucket=bucket, Key=f"raw/events/{partition}/part-0.json", Body=body)
        client.put_object(Bucket=bucket, Key=f"events/{partition}/part-0.json", Body=body)
    reader.replacements["s3://lake/raw"] = f"s3://{bucket}/raw"
    reader.replacements["s3://my-bucket"] = f"s3://{bucket}"


def cursor_moved_twice(reader: Reader) -> None:
    """``lake`` and ``engine`` in the session; the cursor committed twice."""
    from arbalest import SortedSources

    engine = sa.create_engine(f"duckdb:///{reader.folder / 'warehouse.duckdb'}")
    sources = SortedSources(
        reader.folder / "lake", "events", start="2014-11-04/01", warehouse=engine
    )
    sources.commit("events/2014-11-05/00")
    sources.commit("events/2014-11-06")
    reader.namespace.update(lake=reader.folder / "lake", engine=engine)


def time_series_parts(reader: Reader) -> None:
    """The README's Event, ``sources`` over lake/events and an empty ``pipeline``."""
    exec(
        EVENT + "\nfrom arbalest import Pipeline, SortedSources\n"
        'sources = SortedSources(lake, "events", start="2014-11-04/01", warehouse=engine)\n'
        "pipeline = Pipeline(engine)\n",
        reader.namespace,
    )


def click_lake(reader: Reader) -> None:
    """Clicks partitioned by day and hour under arbalest-time-series/lake, as in the example."""
    for partition in ["2026-11-24/21", "2026-11-24/22", "2026-11-25/00", "2026-11-26"]:
        day, _, hour = partition.partition("/")
        at = f"{day}T{hour or '12'}:00:00"
        reader.write(
            f"arbalest-time-series/lake/clicks/{partition}/clicks.json",
            json.dumps({"id": partition, "page": "/", "at": at}) + "\n",
        )


def visit_lake(reader: Reader) -> None:
    """A Visit schema in the session, and its objects under arbalest-luigi/lake."""
    reader.write(
        "arbalest-luigi/lake/visits/2026-11-25.json",
        '{"id": "v1", "country": "FR", "seconds": 30}\n',
    )
    exec(
        "from arbalest import Integer, Schema, String\n\n"
        "class Visit(Schema):\n"
        '    __tablename__ = "visits"\n'
        "    id = String(36, primary_key=True)\n"
        "    country = String(2)\n"
        "    seconds = Integer()\n",
        reader.namespace,
    )


def write_events(reader: Reader) -> None:
    records = [
        {"id": "a", "someNumber": 1, "createdAt": "2026-11-25T10:00:00", "amount": "1.50"},
        {"id": "b", "someNumber": "2", "createdAt": "2026-11-25T11:00:00", "amount": 2},
    ]
    reader.write("lake/events/2026-11-25.json", "".join(json.dumps(r) + "\n" for r in records))


def on_postgres(reader: Reader) -> None:
    """The page's example URLs point at the test server, in a schema of the test's own."""
    url = reader.postgres_url()
    for example in (
        "postgresql+psycopg2://loader:secret@db.example.com:5432/analytics",
        "postgresql+psycopg2://loader@db.example.com/analytics",
    ):
        reader.replacements[example] = url


def revenue_on_both(reader: Reader) -> None:
    """The getting-started page leaves the same revenue in DuckDB and in PostgreSQL."""
    expected = [(dt.date(2026, 11, 25), Decimal("14.75"))]
    for url in (f"duckdb:///{reader.folder / 'warehouse.duckdb'}", reader.postgres_url()):
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT day, revenue FROM revenue")).all()
                (objects,) = conn.execute(sa.text("SELECT count(*) FROM _arbalest_journal")).one()
        finally:
            engine.dispose()
        assert ([tuple(r) for r in rows], objects) == (expected, 1), url


CHECKS: dict[str, Callable[[Reader], None]] = {"getting-started.md": revenue_on_both}

SETUPS: dict[str, Callable[[Reader], None]] = {
    "events": write_events,
    "partitions": partitioned_lake,
    "cursor": cursor_moved_twice,
    "time_series": time_series_parts,
    "clicks": click_lake,
    "visits": visit_lake,
    "schema": lambda reader: exec(EVENT, reader.namespace),
    "jobs": write_jobs,
    "myproject": write_myproject,
    "users": define_users,
    "postgres": on_postgres,
}


def run(block: Block, reader: Reader) -> None:
    code = block.code
    for example, actual in reader.replacements.items():
        code = code.replace(example, actual)
    if RUNS[block.lang] == "python" and code.lstrip().startswith(">>>"):
        session = doctest.DocTestParser().get_doctest(
            code, reader.namespace, block.where, str(block.page), block.line
        )
        report = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(session, out=report.write, clear_globs=False)
        reader.namespace.update(session.globs)  # the parser ran the session on a copy
        assert not runner.failures, f"{block.where} failed:\n{report.getvalue()}"
    elif RUNS[block.lang] == "python":
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, block.where, "exec"), reader.namespace)
        except Exception as error:
            raise AssertionError(
                f"{block.where} failed: {type(error).__name__}: {error}\n{code}\n{out.getvalue()}"
            ) from error
    else:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=reader.folder,
            env=reader.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{block.where} failed:\n{code}\n{done.stdout}{done.stderr}"


@contextlib.contextmanager
def following(folder: Path, request: pytest.FixtureRequest) -> Iterator[Reader]:
    """The page's folder as current directory and first on the import path, then clean up."""
    before = set(sys.modules)
    # A page declares its schemas in arbalest.metadata as a reader would, in a process where
    # other tests (the examples, loaded once) may have declared theirs: those are set aside
    # while the page runs, and put back after.
    aside = list(arbalest.metadata.tables.values())
    for table in aside:
        arbalest.metadata.remove(table)
    cwd = Path.cwd()
    sys.path.insert(0, str(folder))
    os.chdir(folder)
    reader = Reader(folder, request)
    try:
        yield reader
    finally:
        os.chdir(cwd)
        sys.path.remove(str(folder))
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if origin.startswith(str(folder)):
                del sys.modules[name]
        for table in list(arbalest.metadata.tables.values()):
            arbalest.metadata.remove(table)
        for table in aside:
            arbalest.metadata._add_table(table.name, table.schema, table)
        for value in reader.namespace.values():
            dispose = getattr(value, "dispose", None)
            if callable(dispose) and type(value).__name__ == "Engine":
                dispose()
            close = getattr(value, "close", None)
            if callable(close) and type(value).__name__ == "Pipeline":
                close()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs_as_written(
    page: Path, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(tmp_path)]))
    failures: list[str] = []
    with following(tmp_path, request) as reader:
        for block in blocks(page):
            if block.arg("skip") is not None:
                continue
            for name in (block.arg("setup") or "").split():
                SETUPS[name](reader)
            if (path := block.arg("file")) is not None:
                reader.write(path, block.code)
                continue
            if block.lang in FOR_READING:
                continue
            if block.lang not in RUNS:
                failures.append(
                    f"{block.where}: a ```{block.lang} block must run (python, bash) or be "
                    "marked <!-- docs-test: skip REASON -->"
                )
                continue
            try:
                run(block, reader)
            except AssertionError as error:  # go on: one report lists every broken block
                failures.append(str(error))
        assert not failures, "\n\n".join(failures)
        if page.name in CHECKS:
            CHECKS[page.name](reader)


def test_an_unmarked_block_that_does_not_run_fails(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Prose.\n\n<!-- docs-test: skip shown only -->\n```python\nnot python at all\n```\n\n"
        "```python\nundefined_name\n```\n"
    )
    skipped, unmarked = blocks(page)
    assert (skipped.directives, unmarked.directives) == ([("skip", "shown only")], [])
    folder = tmp_path / "run"
    folder.mkdir()
    with following(folder, request) as reader, pytest.raises(AssertionError, match=r"page\.md:8"):
        run(unmarked, reader)


def test_every_page_has_blocks_and_every_directive_is_known() -> None:
    for page in PAGES:
        for block in blocks(page):
            unknown = set((block.arg("setup") or "").split()) - set(SETUPS)
            assert not unknown, f"{block.where}: no setup named {unknown}"
    assert sum(len(blocks(page)) for page in PAGES) > 50
