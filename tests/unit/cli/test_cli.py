"""The ``arbalest`` command, in process: what goes to stdout, to stderr, and the exit codes.

Every pipeline module is written into ``tmp_path`` and every warehouse is a DuckDB file there.
``main(argv)`` returns the exit code; stderr is not a terminal under ``capsys``, so progress
comes as plain lines and the summary as the plain-text table of ``str(result)``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa

from arbalest import Pipeline
from tests.fixtures.cli import Cli, timeless
from tests.fixtures.lakes import put
from tests.fixtures.modules import module, write_module

pytestmark = pytest.mark.usefixtures("clean_cli")

# -- helpers ------------------------------------------------------------------------------

HEAD = module(
    """\
class Other(Base):
    __tablename__ = "others"
    id = String(36, primary_key=True)
""",
    "WAREHOUSE = {warehouse!r}\nSTORE = {store!r}\n",
)


@dataclass
class Project:
    """A folder with a lake, a DuckDB warehouse file and pipeline modules."""

    root: Path
    lake: Path
    warehouse: Path

    @property
    def url(self) -> str:
        return f"duckdb:///{self.warehouse}"

    def module(self, body: str, name: str = "jobs", *, folder: Path | None = None) -> Path:
        head = HEAD.format(warehouse=self.url, store=str(self.lake))
        return write_module(
            (folder or self.root) / f"{name}.py", head + "\n" + textwrap.dedent(body)
        )

    def put(self, key: str, records: list[dict[str, Any]], lake: Path | None = None) -> int:
        return put(lake or self.lake, key, records)


def query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(f"duckdb:///{warehouse}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def tables(warehouse: Path) -> set[str]:
    return {r[0] for r in query(warehouse, "SELECT table_name FROM information_schema.tables")}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    lake = tmp_path / "lake"
    lake.mkdir()
    return Project(tmp_path, lake, tmp_path / "warehouse.duckdb")


@pytest.fixture
def events(project: Project) -> int:
    """One object of two good records; returns its size in bytes."""
    return project.put("events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": 2}])


PIPELINE = 'pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events")\n'


@pytest.fixture
def jobs(project: Project, events: int) -> Path:
    """The module of ``PIPELINE`` (one step, ``events``), with ``events`` in the lake."""
    return project.module(PIPELINE)


def run_lines(size: int, objects: int = 1, rows: int = 2, rejected: int = 0) -> str:
    """What a one-step run of ``events`` writes on stderr (durations as `` T``)."""
    label = "copy events (incremental)"
    return (
        f"{label}: {objects} object(s) to load, {size:,} bytes\n"
        f"{label}: done, {objects} object(s), {rows:,} row(s), {rejected:,} rejected, T s\n"
        "step                       objects  rows  rejected  seconds\n"
        "-------------------------  -------  ----  --------  -------\n"
        f"{label}        {objects}     {rows}         {rejected} T\n"
        f"total                                  {rows}         {rejected} T\n"
    )


# -- run ----------------------------------------------------------------------------------


def test_run_prints_plain_progress_and_the_summary_on_stderr_only(
    cli: Cli, project: Project, events: int, jobs: Path
) -> None:
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (0, "")
    assert timeless(err) == run_lines(events)
    assert query(project.warehouse, "SELECT id, n FROM events ORDER BY id") == [
        ("a1", 1),
        ("a2", 2),
    ]
    # a second run loads nothing
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (0, "")
    assert timeless(err) == run_lines(0, objects=0, rows=0)


def test_run_with_a_sql_step_shows_its_line_and_row(
    cli: Cli, project: Project, events: int
) -> None:
    jobs = project.module(
        'pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events").sql(\n'
        '    "CREATE TABLE total AS SELECT sum(n) AS s FROM events"\n'
        ")\n"
    )
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (0, "")
    sql = "sql: CREATE TABLE total AS SELECT sum(n) A..."  # the first 37 characters
    assert timeless(err) == (
        f"copy events (incremental): 1 object(s) to load, {events} bytes\n"
        "copy events (incremental): done, 1 object(s), 2 row(s), 0 rejected, T s\n"
        f"{sql}: done, T s\n"
        "step                                           objects  rows  rejected  seconds\n"
        "---------------------------------------------  -------  ----  --------  -------\n"
        "copy events (incremental)                            1     2         0 T\n"
        f"{sql} T\n"
        "total                                                      2         0 T\n"
    )
    assert query(project.warehouse, "SELECT s FROM total") == [(3,)]


def test_a_named_pipeline_heads_its_output(cli: Cli, project: Project, events: int) -> None:
    jobs = project.module(
        'pipeline = Pipeline(WAREHOUSE, store=STORE, name="nightly").copy(Event, "events")\n'
    )
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (0, "")
    assert timeless(err) == "pipeline nightly: run\n" + run_lines(events)
    code, out, err = cli("status", str(jobs))
    assert (code, err) == (0, "pipeline nightly: status\n")
    assert out.splitlines()[1].startswith("events        1     2         0  ")
    assert cli("-q", "validate", str(jobs)) == (0, "", "")


def test_quiet_prints_nothing_on_success(
    cli: Cli, project: Project, events: int, jobs: Path
) -> None:
    assert cli("--quiet", "run", str(jobs)) == (0, "", "")
    assert query(project.warehouse, "SELECT count(*) FROM events") == [(2,)]
    project.put("events/b.json", [{"id": "b1"}])
    assert cli("-q", "validate", str(jobs)) == (0, "", "")


def test_quiet_from_the_environment(
    cli: Cli,
    project: Project,
    events: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARBALEST_QUIET", "1")
    assert cli("run", str(project.module(PIPELINE))) == (0, "", "")
    assert query(project.warehouse, "SELECT count(*) FROM events") == [(2,)]


def test_rejects_within_max_errors_are_listed_on_stderr(cli: Cli, project: Project) -> None:
    size = project.put("events/b.json", [{"id": "b1", "n": 3}, {"id": "b2", "n": "x"}])
    jobs = project.module(
        'pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events", max_errors=1)\n'
    )
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (0, "")
    assert timeless(err) == run_lines(size, rows=1, rejected=1) + (
        "rejected: events/b.json:2 column n: Invalid digit (type INTEGER) value 'x' [1207]\n"
    )
    assert query(project.warehouse, "SELECT id, n FROM events") == [("b1", 3)]


def test_more_than_twenty_rejects_are_counted_not_listed(cli: Cli, project: Project) -> None:
    project.put("events/c.json", [{"id": f"c{i:02}", "n": "x"} for i in range(25)])
    jobs = project.module(
        'pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events", max_errors=30)\n'
    )
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (0, "")
    rejected = [line for line in err.splitlines() if line.startswith("rejected: ")]
    assert rejected == [
        f"rejected: events/c.json:{i} column n: Invalid digit (type INTEGER) value 'x' [1207]"
        for i in range(1, 21)
    ]
    assert err.endswith("\n... and 5 more rejected\n")
    assert query(project.warehouse, "SELECT count(*) FROM events") == [(0,)]


def test_too_many_rejects_fail_with_exit_1_and_no_traceback(cli: Cli, project: Project) -> None:
    size = project.put("events/b.json", [{"id": "b1", "n": 3}, {"id": "b2", "n": "x"}])
    jobs = project.module(PIPELINE)
    code, out, err = cli("run", str(jobs))
    reject = "events/b.json:2 column n: Invalid digit (type INTEGER) value 'x' [1207]"
    assert (code, out) == (1, "")
    assert err == (
        f"copy events (incremental): 1 object(s) to load, {size} bytes\n"
        f"rejected: {reject}\n"
        "error: step 'copy events (incremental)' failed: 1 record(s) rejected, more than "
        f"max_errors=0; first: {reject}. Fix the data or raise max_errors.\n"
    )
    # nothing of the step was committed: neither the table it created nor the journal
    assert tables(project.warehouse) == set()


def test_quiet_still_reports_a_failure(cli: Cli, project: Project) -> None:
    project.put("events/b.json", [{"id": "b2", "n": "x"}])
    reject = "events/b.json:1 column n: Invalid digit (type INTEGER) value 'x' [1207]"
    assert cli("-q", "run", str(project.module(PIPELINE))) == (
        1,
        "",
        f"rejected: {reject}\n"
        "error: step 'copy events (incremental)' failed: 1 record(s) rejected, more than "
        f"max_errors=0; first: {reject}. Fix the data or raise max_errors.\n",
    )


def test_verbose_shows_the_traceback_of_a_failure(cli: Cli, project: Project) -> None:
    project.put("events/b.json", [{"id": "b2", "n": "x"}])
    jobs = project.module(PIPELINE)
    code, out, err = cli("--verbose", "run", str(jobs))
    assert (code, out) == (1, "")
    message = (
        "step 'copy events (incremental)' failed: 1 record(s) rejected, more than max_errors=0"
    )
    traceback = err[err.index("\nTraceback (most recent call last):\n") :]
    assert "in run\n" in traceback
    # the message once: on the error line, after the traceback (not also as its last line)
    assert traceback.count(message) == 1
    assert traceback.splitlines()[-1].startswith(f"error: {message}")
    # the same failure without --verbose: the message, no traceback
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (1, "")
    assert "Traceback" not in err
    assert "TooManyRejectsError" not in err
    assert f"\nerror: {message}" in err


def test_the_verbose_traceback_ends_with_the_whole_message(cli: Cli, project: Project) -> None:
    project.put("events/b.json", [{"id": "b2", "n": "x"}])
    code, out, err = cli("-v", "run", str(project.module(PIPELINE)))
    assert (code, out) == (1, "")
    assert err.rstrip("\n").splitlines()[-1] == (
        "error: step 'copy events (incremental)' failed: "
        "1 record(s) rejected, more than max_errors=0; first: events/b.json:1 column n: "
        "Invalid digit (type INTEGER) value 'x' [1207]. Fix the data or raise max_errors."
    )


@pytest.mark.parametrize("how", ["flag", "environment", "after the command"])
def test_verbose_says_each_thing_once_and_each_object(
    cli: Cli,
    project: Project,
    events: int,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    if how == "environment":
        monkeypatch.setenv("ARBALEST_VERBOSE", "1")
    jobs = str(project.module(PIPELINE))
    argv = {"flag": ["-v", "run", jobs], "environment": ["run", jobs]}.get(how, ["run", jobs, "-v"])
    code, out, err = cli(*argv)
    assert (code, out) == (0, "")
    lines = timeless(err).splitlines(keepends=True)
    # the progress lines and the summary as without --verbose, plus a line per object; not
    # the runner's log lines that say the same again (a step is done, the run is done)
    plain = run_lines(events).splitlines(keepends=True)
    loaded = f"copy events (incremental): loaded events/a.json ({events} bytes)\n"
    assert lines == [plain[0], loaded, *plain[1:]]


def test_a_failed_sql_step_exits_1_and_keeps_the_earlier_steps(
    cli: Cli, project: Project, events: int
) -> None:
    jobs = project.module(
        'pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events").sql(\n'
        '    "INSERT INTO no_such_table VALUES (1)"\n'
        ")\n"
    )
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (1, "")
    assert timeless(err).startswith(
        f"copy events (incremental): 1 object(s) to load, {events} bytes\n"
        "copy events (incremental): done, 1 object(s), 2 row(s), 0 rejected, T s\n"
        "error: step 'sql: INSERT INTO no_such_table VALUES (1)' failed: Catalog Error: "
        "Table with name no_such_table does not exist! Did you mean "
    )
    # the driver's text, over several lines, is folded into the one line of the error
    assert err.count("\n") == 3
    assert "Traceback" not in err
    assert query(project.warehouse, "SELECT count(*) FROM events") == [(2,)]


def test_a_retryable_failure_says_so(cli: Cli, project: Project, events: int) -> None:
    jobs = project.module(
        'pipeline = Pipeline(WAREHOUSE, store=STORE, lock_timeout=0.2).copy(Event, "events")\n'
    )
    holder = Pipeline(project.url)
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with holder.engine.connect() as conn, holder.backend.lock(conn, "events", timeout=5):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold_the_lock)
    thread.start()
    try:
        assert held.wait(10)
        code, out, err = cli("run", str(jobs))
    finally:
        release.set()
        thread.join()
        holder.engine.dispose()
    assert (code, out) == (1, "")
    assert err == (
        "error: step 'copy events (incremental)' failed: another run in this process has "
        "been writing to the DuckDB file for more than 0.2 s (lock_timeout); try again later "
        "(retryable: try again)\n"
    )
    # and once the lock is free, the same command does the work
    assert cli("-q", "run", str(jobs)) == (0, "", "")
    assert query(project.warehouse, "SELECT count(*) FROM events") == [(2,)]


def test_a_store_outage_during_a_step_gets_the_retry_hint(
    cli: Cli, project: Project, events: int
) -> None:
    jobs = project.module(
        """\
        from arbalest.errors import StoreUnavailableError
        from arbalest.stores.local import LocalStore


        class Flaky(LocalStore):
            def list(self, prefix="", *, exclude=None):
                raise StoreUnavailableError("cannot list events/: S3 did not answer")
                yield


        pipeline = Pipeline(WAREHOUSE, store=Flaky(STORE)).copy(Event, "events")
        """
    )
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (1, "")
    assert err == (
        "error: step 'copy events (incremental)' failed: cannot list events/: "
        "S3 did not answer (retryable: try again)\n"
    )


# -- validate -----------------------------------------------------------------------------


def test_validate_reports_like_run_and_changes_nothing(
    cli: Cli, project: Project, events: int, jobs: Path
) -> None:
    code, out, err = cli("validate", str(jobs))
    assert (code, out) == (0, "")
    assert timeless(err) == run_lines(events) + "(validated: every step was rolled back)\n"
    assert tables(project.warehouse) == set()


def test_validate_fails_with_exit_1_on_too_many_rejects(cli: Cli, project: Project) -> None:
    project.put("events/b.json", [{"id": "b2", "n": "x"}])
    code, out, err = cli("validate", str(project.module(PIPELINE)))
    assert (code, out) == (1, "")
    assert err.splitlines()[-1] == (
        "error: step 'copy events (incremental)' failed: 1 record(s) rejected, more than "
        "max_errors=0; first: events/b.json:1 column n: Invalid digit (type INTEGER) "
        "value 'x' [1207]. Fix the data or raise max_errors."
    )
    assert tables(project.warehouse) == set()


# -- plan ---------------------------------------------------------------------------------


def test_plan_prints_the_plan_on_stdout_only(cli: Cli, project: Project, events: int) -> None:
    project.put("events/b.json", [{"id": "b1"}])
    jobs = project.module(
        'pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events").sql(\n'
        '    "DELETE FROM events WHERE n > :limit", limit=5\n'
        ")\n"
    )
    code, out, err = cli("plan", str(jobs))
    assert (code, err) == (0, "")
    assert out == (
        "1. copy events (incremental)\n"
        "   create: CREATE TABLE events ( id VARCHAR(36) NOT NULL, n INTEGER, PRIMARY KEY (id) )\n"
        "   objects to load: 2\n"
        "     events/a.json\n"
        "     events/b.json\n"
        "2. sql: DELETE FROM events WHERE n > :limit\n"
        "   sql: DELETE FROM events WHERE n > :limit\n"
    )
    assert tables(project.warehouse) == set()
    # after a run, nothing is left to create or load
    assert cli("-q", "run", str(jobs)) == (0, "", "")
    code, out, err = cli("plan", str(jobs))
    assert (code, err) == (0, "")
    assert out == (
        "1. copy events (incremental)\n"
        "   objects to load: 0\n"
        "2. sql: DELETE FROM events WHERE n > :limit\n"
        "   sql: DELETE FROM events WHERE n > :limit\n"
    )


def test_plan_of_a_pipeline_without_steps(cli: Cli, project: Project) -> None:
    jobs = project.module("pipeline = Pipeline(WAREHOUSE, store=STORE)\n")
    assert cli("plan", str(jobs)) == (0, "(no steps)\n", "")


# -- status -------------------------------------------------------------------------------

TWO_COPIES = """\
pipeline = (
    Pipeline(WAREHOUSE, store=STORE)
    .copy(Event, "events", max_errors=5)
    .sql("SELECT 1")
    .copy(Other, "others")
)
"""


def test_status_before_and_after_a_run(cli: Cli, project: Project) -> None:
    project.put("events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    project.put("events/b.json", [{"id": "b1", "n": 2}, {"id": "b2"}, {"id": "b3"}])
    project.put("others/a.json", [{"id": "o1"}])
    jobs = project.module(TWO_COPIES)
    header = "target  objects  rows  rejected  last loaded\n"
    duckdb.connect(str(project.warehouse)).close()  # an empty database: status creates none
    code, out, err = cli("status", str(jobs))
    assert (code, err) == (0, "")
    assert out == (
        header + "events        0     0         0  never\nothers        0     0         0  never\n"
    )
    assert tables(project.warehouse) == set()  # status creates nothing

    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert cli("-q", "run", str(jobs)) == (0, "", "")
    after = dt.datetime.now(dt.UTC)
    code, out, err = cli("status", str(jobs))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] + "\n" == header
    stamp = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d)"
    events_row = re.fullmatch(r"events        2     4         1  " + stamp, lines[1])
    others_row = re.fullmatch(r"others        1     1         0  " + stamp, lines[2])
    assert events_row is not None, lines[1]
    assert others_row is not None, lines[2]
    assert len(lines) == 3
    for row in (events_row, others_row):
        when = dt.datetime.fromisoformat(row.group(1))
        assert before <= when <= after


def test_status_of_a_pipeline_without_copies_prints_the_header(cli: Cli, project: Project) -> None:
    jobs = project.module('pipeline = Pipeline(WAREHOUSE).sql("SELECT 1")\n')
    duckdb.connect(str(project.warehouse)).close()  # an empty database: status creates none
    assert cli("status", str(jobs)) == (
        0,
        "target  objects  rows  rejected  last loaded\n",
        "",
    )


# -- choosing the pipeline ----------------------------------------------------------------

CHOICES = """\
pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events")
other = Pipeline(WAREHOUSE, store=STORE).copy(Other, "others")


def daily():
    return Pipeline(WAREHOUSE, store=STORE).copy(Other, "others")
"""


@pytest.fixture
def choices(project: Project, events: int) -> Path:
    project.put("others/a.json", [{"id": "o1"}, {"id": "o2"}, {"id": "o3"}])
    return project.module(CHOICES)


def test_the_variable_pipeline_is_the_default(cli: Cli, project: Project, choices: Path) -> None:
    assert cli("-q", "run", str(choices)) == (0, "", "")
    assert tables(project.warehouse) == {"events", "_arbalest_journal", "_arbalest_cursors"}
    assert query(project.warehouse, "SELECT count(*) FROM events") == [(2,)]


def test_name_can_be_a_function_returning_a_pipeline(
    cli: Cli, project: Project, choices: Path
) -> None:
    assert cli("-q", "run", f"{choices}:daily") == (0, "", "")
    assert tables(project.warehouse) == {"others", "_arbalest_journal", "_arbalest_cursors"}
    assert query(project.warehouse, "SELECT id FROM others ORDER BY id") == [
        ("o1",),
        ("o2",),
        ("o3",),
    ]


def test_name_can_be_a_pipeline_variable(cli: Cli, project: Project, choices: Path) -> None:
    duckdb.connect(str(project.warehouse)).close()  # an empty database: status creates none
    code, out, err = cli("status", f"{choices}:other")
    assert (code, err) == (0, "")
    assert (
        out
        == "target  objects  rows  rejected  last loaded\nothers        0     0         0  never\n"
    )


def test_the_only_pipeline_of_a_module_is_used(cli: Cli, project: Project, events: int) -> None:
    jobs = project.module('nightly = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events")\n')
    assert cli("-q", "run", str(jobs)) == (0, "", "")
    assert query(project.warehouse, "SELECT count(*) FROM events") == [(2,)]


def test_a_module_name_importable_from_sys_path(
    cli: Cli,
    project: Project,
    events: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = f"cli_jobs_{uuid.uuid4().hex[:8]}"
    site = project.root / "site"
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text("")
    project.module(
        'daily = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events")\n',
        folder=site / package,
    )
    monkeypatch.syspath_prepend(str(site))
    duckdb.connect(str(project.warehouse)).close()  # an empty database: status creates none
    code, out, err = cli("status", f"{package}.jobs:daily")
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == "events        0     0         0  never"
    assert cli("-q", "run", f"{package}.jobs") == (0, "", "")
    assert query(project.warehouse, "SELECT count(*) FROM events") == [(2,)]
    code, out, err = cli("jsonpaths", f"{package}.jobs:Event")
    assert (code, out, err) == (
        0,
        '{\n  "jsonpaths": [\n    "$[\'id\']",\n    "$[\'n\']"\n  ]\n}\n',
        "",
    )


def test_a_pipeline_file_imports_its_sibling_modules(
    cli: Cli, project: Project, events: int
) -> None:
    sibling = f"cli_jobs_{uuid.uuid4().hex[:8]}"
    project.module("", name=sibling)
    jobs = project.root / "main_jobs.py"
    jobs.write_text(
        f"from {sibling} import Event, Pipeline, STORE, WAREHOUSE\n\n"
        'pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events")\n'
    )
    assert cli("-q", "run", str(jobs)) == (0, "", "")
    assert query(project.warehouse, "SELECT count(*) FROM events") == [(2,)]


# -- redirecting the load: flags and environment ------------------------------------------


@pytest.fixture
def elsewhere(project: Project) -> Path:
    """A second lake, with other records under the same source."""
    other = project.root / "other-lake"
    project.put("events/z.json", [{"id": "z1", "n": 26}], lake=other)
    return other


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_the_warehouse_can_be_redirected(
    cli: Cli, project: Project, events: int, monkeypatch: pytest.MonkeyPatch, how: str, jobs: Path
) -> None:
    other = project.root / "other.duckdb"
    args = ["-q", "run", str(jobs)]
    if how == "flag":
        args += ["--warehouse", f"duckdb:///{other}"]
    else:
        monkeypatch.setenv("ARBALEST_WAREHOUSE", f"duckdb:///{other}")
    assert cli(*args) == (0, "", "")
    assert query(other, "SELECT id, n FROM events ORDER BY id") == [("a1", 1), ("a2", 2)]
    assert not project.warehouse.exists()  # the module's own warehouse was never opened
    # status reads the redirected warehouse's journal
    code, out, err = cli("status", *args[2:])
    assert (code, err) == (0, "")
    assert re.fullmatch(r"events        1     2         0  \S+", out.splitlines()[1])
    assert not project.warehouse.exists()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_the_store_can_be_redirected(
    cli: Cli,
    project: Project,
    events: int,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    jobs: Path,
) -> None:
    args = ["run", str(jobs)]
    if how == "flag":
        args += ["--store", str(elsewhere)]
    else:
        monkeypatch.setenv("ARBALEST_STORE", str(elsewhere))
    code, out, err = cli("plan", *args[1:])
    assert (code, err) == (0, "")
    assert "     events/z.json\n" in out
    assert "events/a.json" not in out
    assert cli("-q", *args) == (0, "", "")
    assert query(project.warehouse, "SELECT id, n FROM events") == [("z1", 26)]


def test_flags_win_over_the_environment(
    cli: Cli,
    project: Project,
    events: int,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    jobs: Path,
) -> None:
    env_db, flag_db = project.root / "env.duckdb", project.root / "flag.duckdb"
    monkeypatch.setenv("ARBALEST_WAREHOUSE", f"duckdb:///{env_db}")
    monkeypatch.setenv("ARBALEST_STORE", str(elsewhere))
    argv = ["-q", "run", str(jobs), "--warehouse", f"duckdb:///{flag_db}"]
    assert cli(*argv, "--store", str(project.lake)) == (0, "", "")
    assert query(flag_db, "SELECT id FROM events ORDER BY id") == [("a1",), ("a2",)]
    assert not env_db.exists()
    assert not project.warehouse.exists()


def test_validate_on_a_redirected_warehouse(cli: Cli, project: Project, events: int) -> None:
    other = project.root / "other.duckdb"
    code, out, err = cli(
        "validate", str(project.module(PIPELINE)), "--warehouse", f"duckdb:///{other}"
    )
    assert (code, out) == (0, "")
    assert timeless(err) == run_lines(events) + "(validated: every step was rolled back)\n"
    assert tables(other) == set()
    assert not project.warehouse.exists()


# -- ddl and jsonpaths --------------------------------------------------------------------

TYPES = """\
from arbalest import Boolean, Decimal, Nested, Super, Timestamp, TimestampTZ


class Sale(Base):
    __tablename__ = "sales"
    __table_args__ = {"redshift_distkey": "id", "redshift_sortkey": ("created_at",)}
    id = String(36, primary_key=True)
    some_number = Integer(key="someNumber")
    created_at = Timestamp(key="createdAt")
    seen = TimestampTZ()
    amount = Decimal(12, 2)
    payload = Super()

    class child(Nested):
        some_boolean = Boolean(key="someBoolean")


count = 3
"""


def ddl(tail: str, **types: str) -> str:
    return (
        "\n".join(
            [
                "CREATE TABLE sales (",
                "        id VARCHAR(36) NOT NULL,",
                "        some_number INTEGER,",
                "        created_at TIMESTAMP WITHOUT TIME ZONE,",
                f"        seen {types['tz']},",
                "        amount NUMERIC(12, 2),",
                f"        payload {types['super']},",
                "        child_some_boolean BOOLEAN,",
                "        PRIMARY KEY (id)",
                f"){tail};",
            ]
        )
        + "\n"
    )


DDL = {
    "redshift": ddl(" DISTKEY (id) SORTKEY (created_at)", tz="TIMESTAMPTZ", super="SUPER"),
    "postgresql": ddl("", tz="TIMESTAMP WITH TIME ZONE", super="JSONB"),
    "duckdb": ddl("", tz="TIMESTAMP WITH TIME ZONE", super="JSON"),
}


@pytest.mark.parametrize("dialect", ["redshift", "postgresql", "duckdb"])
def test_ddl_prints_only_the_create_table(cli: Cli, project: Project, dialect: str) -> None:
    code, out, err = cli("ddl", f"{project.module(TYPES)}:Sale", "--dialect", dialect)
    assert (code, err) == (0, "")
    assert out.expandtabs(8) == DDL[dialect]


def test_ddl_is_for_redshift_by_default(cli: Cli, project: Project) -> None:
    code, out, err = cli("ddl", f"{project.module(TYPES)}:Sale")
    assert (code, err) == (0, "")
    assert out.expandtabs(8) == DDL["redshift"]


@pytest.mark.parametrize("dialect", ["postgresql", "duckdb"])
def test_ddl_dialect_from_the_environment(
    cli: Cli,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    dialect: str,
) -> None:
    monkeypatch.setenv("ARBALEST_DIALECT", dialect)
    target = f"{project.module(TYPES)}:Sale"
    code, out, err = cli("ddl", target)
    assert (code, err) == (0, "")
    assert out.expandtabs(8) == DDL[dialect]
    # the flag wins over the variable
    code, out, err = cli("ddl", target, "--dialect", "redshift")
    assert (code, err) == (0, "")
    assert out.expandtabs(8) == DDL["redshift"]


def test_a_bad_dialect_is_bad_usage(cli: Cli, project: Project) -> None:
    code, out, err = cli("ddl", f"{project.module(TYPES)}:Sale", "--dialect", "mysql")
    assert (code, out) == (2, "")
    assert err == (
        "Usage: arbalest ddl [OPTIONS] MODULE_OR_FILE:SCHEMA\n"
        "Try 'arbalest ddl --help' for help.\n"
        "\n"
        "Error: Invalid value for '--dialect' (env var: 'ARBALEST_DIALECT'): 'mysql' is not "
        "one of 'redshift', "
        "'postgresql', 'duckdb'.\n"
    )


def test_a_bad_dialect_from_the_environment_is_bad_usage(
    cli: Cli, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBALEST_DIALECT", "oracle")
    code, out, err = cli("ddl", f"{project.module(TYPES)}:Sale")
    assert (code, out) == (2, "")
    assert err.endswith(
        "Error: Invalid value for '--dialect' (env var: 'ARBALEST_DIALECT'): 'oracle' is not "
        "one of 'redshift', "
        "'postgresql', 'duckdb'.\n"
    )


def test_jsonpaths_prints_only_the_json(cli: Cli, project: Project) -> None:
    code, out, err = cli("jsonpaths", f"{project.module(TYPES)}:Sale")
    assert (code, err) == (0, "")
    paths = [
        "$['id']",
        "$['someNumber']",
        "$['createdAt']",
        "$['seen']",
        "$['amount']",
        "$['payload']",
        "$['child']['someBoolean']",
    ]
    assert out == json.dumps({"jsonpaths": paths}, indent=2) + "\n"


ODD_NAMES = """\
class Odd(Base):
    __tablename__ = "odd"
    id = String(36, key="a:rocket:b")
    n = Integer(name="c:smile:")
"""


def test_jsonpaths_prints_keys_with_colons_as_they_are(cli: Cli, project: Project) -> None:
    code, out, err = cli("jsonpaths", f"{project.module(ODD_NAMES)}:Odd")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"jsonpaths": ["$['a:rocket:b']", "$['n']"]}


def test_ddl_prints_quoted_names_with_colons_as_they_are(cli: Cli, project: Project) -> None:
    code, out, err = cli("ddl", f"{project.module(ODD_NAMES)}:Odd", "--dialect", "postgresql")
    assert (code, err) == (0, "")
    assert out.expandtabs(8) == (
        'CREATE TABLE odd (\n        id VARCHAR(36),\n        "c:smile:" INTEGER\n);\n'
    )


# -- progress lines -----------------------------------------------------------------------


def test_plain_progress_lines_are_never_wrapped(cli: Cli, project: Project) -> None:
    size = project.put("events/a.json", [{"id": "a1"}])
    table = "an_events_table_with_a_rather_long_name_for_logs"
    jobs = project.module(
        f"""\
        class Long(Base):
            __tablename__ = "{table}"
            id = String(36)


        pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Long, "events")
        """
    )
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (0, "")
    lines = timeless(err).splitlines()
    assert lines[:2] == [
        f"copy {table} (incremental): 1 object(s) to load, {size} bytes",
        f"copy {table} (incremental): done, 1 object(s), 1 row(s), 0 rejected, T s",
    ]


# -- bad usage: exit 2, a message, no traceback -------------------------------------------


def test_an_unknown_command_is_bad_usage(cli: Cli) -> None:
    assert cli("frobnicate", "jobs.py") == (
        2,
        "",
        "Usage: arbalest [OPTIONS] COMMAND [ARGS]...\n"
        "Try 'arbalest --help' for help.\n"
        "\n"
        "Error: No such command 'frobnicate'.\n",
    )


def test_a_missing_argument_is_bad_usage(cli: Cli) -> None:
    assert cli("run") == (
        2,
        "",
        "Usage: arbalest run [OPTIONS] FILE[:NAME]\n"
        "Try 'arbalest run --help' for help.\n"
        "\n"
        "Error: Missing argument 'FILE[:NAME]'.\n",
    )


def test_verbose_with_quiet_is_bad_usage(cli: Cli, project: Project, jobs: Path) -> None:
    assert cli("--verbose", "--quiet", "run", str(jobs)) == (
        2,
        "",
        "error: --verbose and --quiet cannot be used together\n",
    )
    assert not project.warehouse.exists()


def test_verbose_and_quiet_from_the_environment_are_bad_usage(
    cli: Cli,
    project: Project,
    events: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARBALEST_VERBOSE", "1")
    monkeypatch.setenv("ARBALEST_QUIET", "1")
    assert cli("run", str(project.module(PIPELINE))) == (
        2,
        "",
        "error: --verbose and --quiet cannot be used together\n",
    )


@pytest.mark.parametrize("command", ["run", "plan", "validate", "status"])
def test_a_missing_file_is_bad_usage(cli: Cli, tmp_path: Path, command: str) -> None:
    missing = tmp_path / "missing.py"
    assert cli(command, f"{missing}:pipeline") == (
        2,
        "",
        f"error: no Python file '{missing}'\n",
    )


def test_a_missing_module_is_bad_usage(cli: Cli) -> None:
    assert cli("plan", "cli_jobs_surely_missing:pipeline") == (
        2,
        "",
        "error: no Python file or module 'cli_jobs_surely_missing' "
        "(No module named 'cli_jobs_surely_missing')\n",
    )


def test_a_name_that_does_not_exist_is_bad_usage(cli: Cli, project: Project, choices: Path) -> None:
    assert cli("run", f"{choices}:weekly") == (
        2,
        "",
        f"error: {choices} has no 'weekly' (pipelines: other, pipeline; functions: daily())\n",
    )
    assert not project.warehouse.exists()


def test_a_name_that_is_not_a_pipeline_is_bad_usage(cli: Cli, project: Project) -> None:
    jobs = project.module("count = 3\nnothing = None\n\n\ndef helper():\n    return 'x'\n")
    assert cli("run", f"{jobs}:count") == (
        2,
        "",
        f"error: {jobs}:count is not a Pipeline (it is int)\n",
    )
    assert cli("plan", f"{jobs}:helper") == (
        2,
        "",
        f"error: {jobs}:helper is not a Pipeline (it is str)\n",
    )
    assert cli("status", f"{jobs}:sa") == (
        2,
        "",
        f"error: {jobs}:sa is not a Pipeline (it is module)\n",
    )


def test_two_pipelines_and_no_name_is_bad_usage(cli: Cli, project: Project) -> None:
    jobs = project.module(
        'daily = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events")\n'
        'hourly = Pipeline(WAREHOUSE, store=STORE).copy(Other, "others")\n'
    )
    assert cli("run", str(jobs)) == (
        2,
        "",
        f"error: {jobs}: say which pipeline to use as {jobs}:NAME "
        "(pipelines found: daily, hourly)\n",
    )
    assert not project.warehouse.exists()


def test_no_pipeline_at_all_is_bad_usage(cli: Cli, project: Project) -> None:
    jobs = project.module("")
    assert cli("validate", str(jobs)) == (
        2,
        "",
        f"error: {jobs}: say which pipeline to use as {jobs}:NAME (pipelines found: none)\n",
    )


def test_a_schema_target_that_is_not_a_schema_is_bad_usage(cli: Cli, project: Project) -> None:
    jobs = project.module(PIPELINE)
    for command in (["ddl"], ["jsonpaths"]):
        assert cli(*command, f"{jobs}:pipeline") == (
            2,
            "",
            f"error: {jobs}:pipeline is not a schema class (schemas there: Event, Other)\n",
        )
        assert cli(*command, f"{jobs}:Evnt") == (
            2,
            "",
            f"error: {jobs}:Evnt is not a schema class; did you mean 'Event'? "
            "(schemas there: Event, Other)\n",
        )
        assert cli(*command, f"{jobs}:Base") == (  # abstract: no table
            2,
            "",
            f"error: {jobs}:Base is not a schema class (schemas there: Event, Other)\n",
        )
        assert cli(*command, str(jobs)) == (
            2,
            "",
            f"error: '{jobs}': write MODULE_OR_FILE:SCHEMA\n",
        )


def line_of(path: Path, text: str) -> int:
    """The number of the first line of ``path`` that contains ``text``."""
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def test_code_that_cannot_be_imported_is_bad_usage(cli: Cli, project: Project) -> None:
    broken = project.root / "broken.py"
    broken.write_text("import os\n\npipeline = (\n")
    assert cli("run", str(broken)) == (
        2,
        "",
        f"error: {broken}:3: SyntaxError: '(' was never closed\n",
    )
    missing = project.module("import cli_jobs_no_such_dependency\n", name="needs")
    line = line_of(missing, "import cli_jobs_no_such_dependency")
    assert cli("plan", str(missing)) == (
        2,
        "",
        f"error: {missing}:{line}: ModuleNotFoundError: "
        "No module named 'cli_jobs_no_such_dependency'\n",
    )


SCHEMA_MISTAKE = """\
class Payment(Base):
    __tablename__ = "payments"
    id = String(36, primary_key=True)
    amount = String("forty")


pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Payment, "payments/")
"""


@pytest.mark.parametrize(
    "command", [["run"], ["plan"], ["validate"], ["status"], ["ddl"], ["jsonpaths"]]
)
def test_a_schema_mistake_shows_the_file_and_the_line_of_the_field(
    cli: Cli, project: Project, command: list[str]
) -> None:
    jobs = project.module(SCHEMA_MISTAKE)
    target = f"{jobs}:Payment" if command[0] in ("ddl", "jsonpaths") else str(jobs)
    line = line_of(jobs, 'amount = String("forty")')
    assert cli(*command, target) == (
        2,
        "",
        f"error: {jobs}:{line}: SchemaError: Payment.amount: String() argument "
        "length='forty': must be a whole number of bytes, 1 to 65535\n",
    )
    assert not project.warehouse.exists()


def test_a_misspelt_keyword_is_named_with_the_right_one(cli: Cli, project: Project) -> None:
    jobs = project.module(SCHEMA_MISTAKE.replace('String("forty")', "String(primary_kye=True)"))
    line = line_of(jobs, "primary_kye=True")
    assert cli("run", str(jobs)) == (
        2,
        "",
        f"error: {jobs}:{line}: SchemaError: Payment.amount: String() got an unexpected "
        "keyword argument 'primary_kye'; did you mean primary_key=?\n",
    )


def test_a_schema_mistake_that_is_not_a_fields_shows_the_class_line(
    cli: Cli, project: Project
) -> None:
    jobs = project.module(SCHEMA_MISTAKE.replace('String("forty")', 'String(40, name="ID")'))
    line = line_of(jobs, "class Payment(Base):")
    code, out, err = cli("plan", str(jobs))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {jobs}:{line}: SchemaError: Payment: fields 'id' and ")


def test_with_verbose_a_loading_error_shows_the_traceback_then_the_line(
    cli: Cli, project: Project
) -> None:
    jobs = project.module(SCHEMA_MISTAKE)
    line = line_of(jobs, 'amount = String("forty")')
    code, out, err = cli("plan", "-v", str(jobs))
    assert (code, out) == (2, "")
    assert err.startswith("Traceback (most recent call last):\n")
    assert err.endswith(
        f"error: {jobs}:{line}: SchemaError: Payment.amount: String() argument "
        "length='forty': must be a whole number of bytes, 1 to 65535\n"
    )
    assert err.count("error: ") == 1


def test_an_error_in_a_module_the_file_imports_shows_that_module(
    cli: Cli, project: Project
) -> None:
    helpers = project.root / "cli_jobs_helpers.py"
    helpers.write_text("import os\n\nfrom cli_jobs_nowhere import thing\n")
    jobs = project.module("import cli_jobs_helpers\n")
    assert cli("run", str(jobs)) == (
        2,
        "",
        f"error: {helpers}:3: ModuleNotFoundError: No module named 'cli_jobs_nowhere'\n",
    )
    helpers.write_text("def f(:\n    pass\n")
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {helpers}:1: SyntaxError: ")


def test_a_relative_file_is_shown_as_it_was_given(
    cli: Cli, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.module(SCHEMA_MISTAKE)
    monkeypatch.chdir(project.root)
    code, out, err = cli("plan", "jobs.py")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: jobs.py:{line_of(project.root / 'jobs.py', 'forty')}: ")


def test_a_bad_warehouse_url_is_bad_usage(cli: Cli, jobs: Path) -> None:
    code, out, err = cli("run", str(jobs), "--warehouse", "nosuch://x")
    assert (code, out) == (2, "")
    assert err == (
        "error: cannot use the warehouse URL nosuch://x: SQLAlchemy has no dialect 'nosuch'; "
        "check the URL's scheme (duckdb:///file.duckdb, postgresql://..., "
        "redshift+psycopg2://...), or install the package that gives SQLAlchemy that dialect\n"
    )


def test_a_missing_store_folder_is_bad_usage(cli: Cli, project: Project, jobs: Path) -> None:
    missing = project.root / "no-lake"
    assert cli("plan", str(jobs), "--store", str(missing)) == (
        2,
        "",
        f"error: the store folder '{missing}' does not exist\n",
    )


def test_version_and_help(cli: Cli) -> None:
    code, out, err = cli("--version")
    assert (code, err) == (0, "")
    assert re.fullmatch(r"arbalest, version \d+\.\d+\.\d+\S*\n", out)
    code, out, err = cli("--help")
    assert (code, err) == (0, "")
    assert out.startswith("Usage: arbalest [OPTIONS] COMMAND [ARGS]...\n")
    for command in ("run", "plan", "validate", "status", "ddl", "jsonpaths"):
        assert re.search(rf"^  {command} ", out, re.MULTILINE), command


# -- errors that still print a Python traceback (bugs) ------------------------------------


def test_an_exception_while_importing_the_module_is_reported_without_traceback(
    cli: Cli, project: Project
) -> None:
    jobs = project.module('import os\n\nURL = os.environ["CLI_JOBS_UNSET_VARIABLE"]\n')
    line = line_of(jobs, "CLI_JOBS_UNSET_VARIABLE")
    assert cli("run", str(jobs)) == (
        2,
        "",
        f"error: {jobs}:{line}: KeyError: 'CLI_JOBS_UNSET_VARIABLE'\n",
    )


def test_a_function_that_needs_arguments_is_bad_usage(cli: Cli, project: Project) -> None:
    jobs = project.module(
        "def for_day(day):\n"
        '    return Pipeline(WAREHOUSE, store=STORE).copy(Event, "events/" + day)\n'
    )
    code, out, err = cli("run", f"{jobs}:for_day")
    assert (code, out) == (2, "")
    assert err.startswith("error: ")
    assert "for_day" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["run", "validate", "plan", "status"])
def test_a_warehouse_that_cannot_be_opened_is_an_error_not_a_traceback(
    cli: Cli, project: Project, events: int, command: str
) -> None:
    junk = project.root / "junk.duckdb"
    junk.write_text("this is not a DuckDB database\n")
    jobs = project.module(PIPELINE)
    code, out, err = cli(command, str(jobs), "--warehouse", f"duckdb:///{junk}")
    # trying again will not help: a mistake to fix (exit 2), saying what to fix, on one line
    assert (code, out) == (2, "")
    assert err.startswith(f"error: cannot open the warehouse duckdb:///{junk}: ")
    assert "not a valid DuckDB database file" in err
    assert err.endswith(
        "; check the path of the warehouse URL: that file is not a DuckDB database\n"
    )
    assert "retryable" not in err
    assert "Traceback" not in err


# -- the command line, polished ----------------------------------------------------------


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_also_after_the_command(cli: Cli, project: Project, events: int, flag: str) -> None:
    jobs = str(project.module(PIPELINE))
    assert cli("run", jobs, flag) == (0, "", "")
    assert cli("validate", flag, jobs) == (0, "", "")
    assert query(project.warehouse, "SELECT count(*) FROM events") == [(2,)]
    # on both sides, or with the other's variable, still bad usage
    assert cli("-v", "run", jobs, flag) == (
        2,
        "",
        "error: --verbose and --quiet cannot be used together\n",
    )


def test_help_explains_targets_variables_and_exit_codes(
    cli: Cli,
) -> None:
    code, out, err = cli("--help")
    assert (code, err) == (0, "")
    text = " ".join(out.split())
    assert "FILE[:NAME] picks the pipeline of run, plan, validate, status and drift" in text
    assert "a Pipeline in it, or a function that returns one; without :NAME, the variable" in text
    assert "`pipeline`, else the file's only Pipeline" in text
    for variable in (
        "ARBALEST_WAREHOUSE",
        "ARBALEST_STORE",
        "ARBALEST_DIALECT",
        "ARBALEST_VERBOSE",
        "ARBALEST_QUIET",
        "ARBALEST_PROGRESS_SECONDS",
    ):
        assert variable in out, variable
    assert "Exit codes: 0 done 1 a step failed" in text
    assert '"(retryable: try again)"' in text
    assert "2 bad usage or configuration" in text
    assert "a file that cannot be loaded (its error is shown at FILE:LINE)" in text
    assert all(len(line) <= 80 for line in out.splitlines())
    code, out, err = cli("run", "--help")
    assert (code, err) == (0, "")
    assert "[env var: ARBALEST_WAREHOUSE]" in " ".join(out.split())
    assert re.search(r"^  -q, --quiet ", out, re.MULTILINE)


def test_a_misspelt_name_is_pointed_at_the_right_one(
    cli: Cli, project: Project, choices: Path
) -> None:
    assert cli("plan", f"{choices}:dialy") == (
        2,
        "",
        f"error: {choices} has no 'dialy'; did you mean 'daily'? "
        "(pipelines: other, pipeline; functions: daily())\n",
    )
    empty = project.module("X = 1\n", name="empty")
    assert cli("run", f"{empty}:nope") == (
        2,
        "",
        f"error: {empty} has no 'nope' (it has no pipelines, nor functions that could "
        "return one)\n",
    )


def test_run_and_status_write_numbers_alike(cli: Cli, project: Project) -> None:
    size = project.put("events/a.json", [{"id": f"e{i}", "n": i} for i in range(1234)])
    jobs = str(project.module(PIPELINE))
    code, out, err = cli("run", jobs)
    assert (code, out) == (0, "")
    lines = timeless(err).splitlines()
    assert lines[:2] == [
        f"copy events (incremental): 1 object(s) to load, {size:,} bytes",
        "copy events (incremental): done, 1 object(s), 1,234 row(s), 0 rejected, T s",
    ]
    assert lines[4] == "copy events (incremental)        1  1,234         0 T"
    code, out, err = cli("status", jobs)
    assert (code, err) == (0, "")
    assert re.fullmatch(r"events        1  1,234         0  \S+", out.splitlines()[1])


def test_the_summary_fits_80_columns(cli: Cli, project: Project) -> None:
    table = "github_archive_events_of_every_kind_pushed_and_pulled_in_2024"
    project.put("events/a.json", [{"id": "a1", "n": 1}])
    jobs = project.module(
        f"class Long(Base):\n    __tablename__ = {table!r}\n    id = String(36)\n\n\n"
        f'pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Long, "events").sql(\n'
        f"    \"SELECT count(*) FROM {table} WHERE id IS NOT NULL AND id <> 'x'\"\n)\n"
    )
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (0, "")
    summary = err.splitlines()[-5:]
    assert summary[0].startswith("step ")
    assert max(len(line) for line in summary) <= 80, summary
    # a long label keeps its start and its mode
    assert re.match(r"copy github_archive_events_\S*\.\.\. \(incremental\) +1 ", summary[2])
    assert query(project.warehouse, f"SELECT count(*) FROM {table}") == [(1,)]


def test_ddl_has_no_trailing_spaces(cli: Cli, project: Project) -> None:
    for dialect in ("redshift", "postgresql", "duckdb"):
        code, out, err = cli("ddl", f"{project.module(PIPELINE)}:Event", "--dialect", dialect)
        assert (code, err) == (0, "")
        assert [line for line in out.splitlines() if line != line.rstrip()] == []
