"""The installed ``arbalest`` script, run in a subprocess against DuckDB and PostgreSQL.

Each test writes a pipeline module and a lake into ``tmp_path``, runs the script next to
``sys.executable``, checks stdout, stderr and the exit code, then queries the warehouse.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fixtures.cli import ARBALEST, arbalest, environment, timeless
from tests.fixtures.lakes import put
from tests.fixtures.modules import module

MODULE = module(
    """\
pipeline = (
    Pipeline({warehouse!r}, store={store!r})
    .copy(Event, "events", max_errors={max_errors})
    .sql("CREATE TABLE IF NOT EXISTS checked (c INTEGER)")
)
"""
)

SQL_LABEL = "sql: CREATE TABLE IF NOT EXISTS checked (c..."
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def duckdb_engine(path: Path) -> sa.Engine:
    """An engine that closes its connection after each use: DuckDB lets one process at a
    time open a database file, and the script runs in another."""
    return sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)


def rows(engine: sa.Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def summary(size: int, objects: int = 1, loaded: int = 2, rejected: int = 0) -> str:
    """Plain progress lines and the summary table of a run of MODULE (durations as T)."""
    copy = "copy events (incremental)"
    return (
        f"{copy}: {objects} object(s) to load, {size:,} bytes\n"
        f"{copy}: done, {objects} object(s), {loaded} row(s), {rejected} rejected, T s\n"
        f"{SQL_LABEL}: done, T s\n"
        "step                                           objects  rows  rejected  seconds\n"
        "---------------------------------------------  -------  ----  --------  -------\n"
        f"{copy}                            {objects}     {loaded}         {rejected} T\n"
        f"{SQL_LABEL} T\n"
        f"total                                                      {loaded}         "
        f"{rejected} T\n"
    )


HEADER = "target  objects  rows  rejected  last loaded"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"


class Project:
    def __init__(self, root: Path, warehouse: str, max_errors: int = 0) -> None:
        self.root = root
        self.lake = root / "lake"
        self.lake.mkdir(exist_ok=True)
        self.jobs = root / "jobs.py"
        self.jobs.write_text(
            MODULE.format(warehouse=warehouse, store=str(self.lake), max_errors=max_errors)
        )

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return arbalest(*args, cwd=self.root, env=environment(**env))


def check_a_whole_session(project: Project, engine: sa.Engine, plan_ddl: str) -> None:
    """status, plan, validate, run, status, plan: the life of a pipeline, on any warehouse."""
    size = put(project.lake, "events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    put(project.lake, "events/b.json", [{"id": "b1", "n": 2}])
    size += (project.lake / "events/b.json").stat().st_size

    status = project("status", "jobs.py")
    assert (status.returncode, status.stderr) == (0, "")
    assert status.stdout == f"{HEADER}\nevents        0     0         0  never\n"

    plan = project("plan", "jobs.py")
    assert (plan.returncode, plan.stderr) == (0, "")
    assert plan.stdout == (
        "1. copy events (incremental)\n"
        f"   create: {plan_ddl}\n"
        "   objects to load: 2\n"
        "     events/a.json\n"
        "     events/b.json\n"
        f"2. {SQL_LABEL}\n"
        "   sql: CREATE TABLE IF NOT EXISTS checked (c INTEGER)\n"
    )

    validate = project("validate", "jobs.py")
    assert (validate.returncode, validate.stdout) == (0, "")
    reject = "rejected: events/a.json:2 column n: Invalid digit (type INTEGER) value 'x' [1207]\n"
    assert timeless(validate.stderr) == (
        summary(size, objects=2, loaded=2, rejected=1)
        + "(validated: every step was rolled back)\n"
        + reject
    )
    assert table_names(engine) == set()

    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run = project("run", "jobs.py")
    after = dt.datetime.now(dt.UTC)
    assert (run.returncode, run.stdout) == (0, "")
    assert timeless(run.stderr) == summary(size, objects=2, loaded=2, rejected=1) + reject
    assert rows(engine, "SELECT id, n FROM events ORDER BY id") == [("a1", 1), ("b1", 2)]
    assert table_names(engine) == {"events", "checked", "_arbalest_journal", "_arbalest_cursors"}

    status = project("status", "jobs.py")
    assert (status.returncode, status.stderr) == (0, "")
    header, line = status.stdout.splitlines()
    assert header == HEADER
    found = re.fullmatch(rf"events        2     2         1  ({STAMP})", line)
    assert found is not None, line
    assert before <= dt.datetime.fromisoformat(found.group(1)) <= after

    plan = project("plan", "jobs.py")
    assert (plan.returncode, plan.stderr) == (0, "")
    assert plan.stdout == (
        "1. copy events (incremental)\n"
        "   objects to load: 0\n"
        f"2. {SQL_LABEL}\n"
        "   sql: CREATE TABLE IF NOT EXISTS checked (c INTEGER)\n"
    )

    again = project("-q", "run", "jobs.py")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert rows(engine, "SELECT count(*) FROM events") == [(2,)]


def check_a_failed_step(project: Project, engine: sa.Engine) -> None:
    """Too many rejects: exit 1, the rejects and the error on stderr, nothing committed."""
    put(project.lake, "events/ok.json", [{"id": "ok", "n": 1}])
    assert project("-q", "run", "jobs.py").returncode == 0
    size = put(project.lake, "events/z.json", [{"id": "z1", "n": 2}, {"n": 3}])
    run = project("run", "jobs.py")
    assert (run.returncode, run.stdout) == (1, "")
    reject = "events/z.json:2 column id: Missing data for not-null field [1213]"
    assert run.stderr == (
        f"copy events (incremental): 1 object(s) to load, {size} bytes\n"
        f"rejected: {reject}\n"
        "error: step 'copy events (incremental)' failed: 1 record(s) rejected, more than "
        f"max_errors=0; first: {reject}. Fix the data or raise max_errors.\n"
    )
    assert rows(engine, "SELECT id FROM events") == [("ok",)]
    status = project("status", "jobs.py")
    assert re.fullmatch(rf"events        1     1         0  {STAMP}", status.stdout.splitlines()[1])


# -- DuckDB ---------------------------------------------------------------------------


@pytest.fixture
def duck(tmp_path: Path) -> tuple[Project, sa.Engine]:
    path = tmp_path / "warehouse.duckdb"
    engine = duckdb_engine(path)
    return Project(tmp_path, f"duckdb:///{path}", max_errors=1), engine


DUCKDB_DDL = "CREATE TABLE events ( id VARCHAR(36) NOT NULL, n INTEGER, PRIMARY KEY (id) )"


@pytest.mark.duckdb
def test_a_whole_session_on_duckdb(duck: tuple[Project, sa.Engine]) -> None:
    project, engine = duck
    try:
        with engine.connect():
            pass  # an empty database (read-only commands create none; a missing one is an error)
        engine.dispose()
        check_a_whole_session(project, engine, DUCKDB_DDL)
    finally:
        engine.dispose()


@pytest.mark.duckdb
def test_a_failed_step_on_duckdb(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    project = Project(tmp_path, f"duckdb:///{path}")
    engine = duckdb_engine(path)
    try:
        check_a_failed_step(project, engine)
    finally:
        engine.dispose()


@pytest.mark.duckdb
def test_the_environment_redirects_the_load(tmp_path: Path) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'declared.duckdb'}")
    other_lake = tmp_path / "other-lake"
    put(project.lake, "events/a.json", [{"id": "a1", "n": 1}])
    put(other_lake, "events/z.json", [{"id": "z1", "n": 26}, {"id": "z2", "n": 27}])
    target = tmp_path / "target.duckdb"
    env = {"ARBALEST_WAREHOUSE": f"duckdb:///{target}", "ARBALEST_STORE": str(other_lake)}
    run = project("-q", "run", "jobs.py", **env)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    assert not (tmp_path / "declared.duckdb").exists()
    engine = duckdb_engine(target)
    try:
        assert rows(engine, "SELECT id, n FROM events ORDER BY id") == [("z1", 26), ("z2", 27)]
    finally:
        engine.dispose()
    status = project("status", "jobs.py", **env)
    assert status.returncode == 0
    assert re.fullmatch(rf"events        1     2         0  {STAMP}", status.stdout.splitlines()[1])


@pytest.mark.duckdb
def test_ddl_and_jsonpaths_from_a_module_on_pythonpath(tmp_path: Path) -> None:
    Project(tmp_path, "duckdb:///unused.duckdb")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = environment(PYTHONPATH=str(tmp_path), ARBALEST_DIALECT="postgresql")
    ddl = arbalest("ddl", "jobs:Event", cwd=elsewhere, env=env)
    assert (ddl.returncode, ddl.stderr) == (0, "")
    assert ddl.stdout.expandtabs(8) == (
        "CREATE TABLE events (\n"
        "        id VARCHAR(36) NOT NULL,\n"
        "        n INTEGER,\n"
        "        PRIMARY KEY (id)\n"
        ");\n"
    )
    paths = arbalest("jsonpaths", "jobs:Event", cwd=elsewhere, env=env)
    assert (paths.returncode, paths.stderr) == (0, "")
    assert json.loads(paths.stdout) == {"jsonpaths": ["$['id']", "$['n']"]}
    assert not (elsewhere / "unused.duckdb").exists()


@pytest.mark.duckdb
def test_bad_usage_exits_2_with_the_program_name(tmp_path: Path) -> None:
    unknown = arbalest("frobnicate", cwd=tmp_path)
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr == (
        "Usage: arbalest [OPTIONS] COMMAND [ARGS]...\n"
        "Try 'arbalest --help' for help.\n"
        "\n"
        "Error: No such command 'frobnicate'.\n"
    )
    missing = arbalest("run", "nowhere.py", cwd=tmp_path)
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        2,
        "",
        "error: no Python file 'nowhere.py'\n",
    )
    Project(tmp_path, f"duckdb:///{tmp_path / 'w.duckdb'}")
    both = arbalest("-v", "-q", "status", "jobs.py", cwd=tmp_path)
    assert (both.returncode, both.stdout, both.stderr) == (
        2,
        "",
        "error: --verbose and --quiet cannot be used together\n",
    )
    name = arbalest("plan", "jobs.py:Event", cwd=tmp_path)
    assert (name.returncode, name.stdout, name.stderr) == (
        2,
        "",
        "error: jobs.py:Event is not a Pipeline (it is Event)\n",
    )


# -- PostgreSQL -----------------------------------------------------------------------

POSTGRES_DDL = "CREATE TABLE events ( id VARCHAR(36) NOT NULL, n INTEGER, PRIMARY KEY (id) )"


@pytest.mark.postgres
def test_a_whole_session_on_postgresql(
    tmp_path: Path, postgres_url: str, warehouse_postgresql: sa.Engine
) -> None:
    project = Project(tmp_path, postgres_url, max_errors=1)
    check_a_whole_session(project, warehouse_postgresql, POSTGRES_DDL)


@pytest.mark.postgres
def test_a_failed_step_on_postgresql(
    tmp_path: Path, postgres_url: str, warehouse_postgresql: sa.Engine
) -> None:
    check_a_failed_step(Project(tmp_path, postgres_url), warehouse_postgresql)


@pytest.mark.postgres
def test_a_duckdb_pipeline_redirected_to_postgresql(
    tmp_path: Path, postgres_url: str, warehouse_postgresql: sa.Engine
) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'local.duckdb'}")
    size = put(project.lake, "events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": 2}])
    run = project("run", "jobs.py", "--warehouse", postgres_url)
    assert (run.returncode, run.stdout) == (0, "")
    assert timeless(run.stderr) == summary(size)
    assert rows(warehouse_postgresql, "SELECT id, n FROM events ORDER BY id") == [
        ("a1", 1),
        ("a2", 2),
    ]
    assert not (tmp_path / "local.duckdb").exists()
    status = project("status", "jobs.py", ARBALEST_WAREHOUSE=postgres_url)
    assert (status.returncode, status.stderr) == (0, "")
    assert re.fullmatch(rf"events        1     2         0  {STAMP}", status.stdout.splitlines()[1])


# -- a warehouse that cannot be opened -------------------------------------------------


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The whole stderr of a command that failed before any step: one line, ``error: ...``."""
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert done.stderr == line + "\n"
    assert line.startswith("error: cannot open the warehouse ")
    assert "step" not in line
    return line


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["run", "plan", "status"])
def test_a_wrong_database_or_role_is_a_mistake_to_fix(
    tmp_path: Path, postgres_server: sa.Engine, command: str
) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'unused.duckdb'}")
    database = postgres_server.url.set(database="arbalest_no_such_database")
    done = project(command, "jobs.py", "--warehouse", database.render_as_string(False))
    assert done.returncode == 2  # not retryable: the configuration needs fixing
    line = one_error_line(done)
    assert line.endswith(
        'FATAL:  database "arbalest_no_such_database" does not exist; '
        "check the database name of the warehouse URL, or create that database"
    )
    role = postgres_server.url.set(username="arbalest_no_such_role")
    done = project(command, "jobs.py", ARBALEST_WAREHOUSE=role.render_as_string(False))
    assert done.returncode == 2
    assert one_error_line(done).endswith(
        'FATAL:  role "arbalest_no_such_role" does not exist; '
        "check the user name of the warehouse URL, or create that role"
    )
    assert not (tmp_path / "unused.duckdb").exists()


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["run", "plan", "status"])
def test_a_refused_connection_is_retryable(
    tmp_path: Path, postgres_server: sa.Engine, command: str
) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'unused.duckdb'}")
    closed = postgres_server.url.set(port=closed_port())
    done = project(command, "jobs.py", "--warehouse", closed.render_as_string(False))
    assert done.returncode == 1
    # psycopg2's two lines, folded into one
    assert one_error_line(done) == (
        f"error: cannot open the warehouse {closed.render_as_string(True)}: connection to "
        f'server at "127.0.0.1", port {closed.port} failed: Connection refused; Is the server '
        "running on that host and accepting TCP/IP connections? (retryable: try again)"
    )


@pytest.mark.duckdb
@pytest.mark.parametrize("command", ["run", "plan", "status"])
def test_a_duckdb_file_in_a_missing_folder_is_a_mistake_to_fix(
    tmp_path: Path, command: str
) -> None:
    folder = tmp_path / "warehouses"
    project = Project(tmp_path, f"duckdb:///{folder / 'w.duckdb'}")
    done = project(command, "jobs.py")
    assert done.returncode == 2
    assert one_error_line(done).endswith(
        f"; the folder {str(folder)!r} does not exist: create it, or check the path of the "
        "warehouse URL"
    )
    assert not folder.exists()


# -- on a terminal --------------------------------------------------------------------


def run_on_a_terminal(args: list[str], cwd: Path, columns: int = 160) -> tuple[int, str]:
    """Run the script with stdin, stdout and stderr on a pseudo-terminal; return the exit
    code and everything it wrote, escape sequences removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = environment(TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    env.pop("TTY_COMPATIBLE", None)
    env.pop("TTY_INTERACTIVE", None)
    process = subprocess.Popen(
        [str(ARBALEST), *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError as exc:  # EIO: the other side is closed
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    text = b"".join(chunks).decode("utf-8", errors="replace").replace("\r\n", "\n")
    return code, ANSI.sub("", text)


@pytest.mark.duckdb
def test_a_terminal_gets_rich_tables_not_plain_lines(tmp_path: Path) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    for i in range(30):
        put(project.lake, f"events/{i:02}.json", [{"id": f"e{i}-{j}", "n": j} for j in range(20)])

    code, text = run_on_a_terminal(["validate", "jobs.py"], tmp_path)
    assert code == 0, text
    assert "validated (rolled back)" in text

    code, text = run_on_a_terminal(["run", "jobs.py"], tmp_path)
    assert code == 0, text
    # the bar: drawn when the step's task is added (rich refreshes then), removed at the end
    # with the bytes done of the total, the objects and the rows
    bar = r"copy events \(incremental\) [━╸╺]+ +[\d.]+/[\d.]+ kB \d+/30 obj [\d,]+ rows"
    assert re.search(bar, text), text
    # rich's summary table: box-drawing characters around the cells
    assert re.search(r"[┃│]\s*step\s*[┃│]\s*objects\s*[┃│]\s*rows\s*[┃│]", text), text
    assert re.search(r"│\s*copy events \(incremental\)\s*│\s*30\s*│\s*600\s*│\s*0\s*│", text), text
    assert re.search(r"│\s*total\s*│\s*│\s*600\s*│\s*0\s*│", text), text
    assert any(c in text for c in "┏┡└╰"), text
    # and not the plain lines meant for logs
    assert "object(s) to load" not in text
    assert ": done," not in text
    assert "-------  ----" not in text

    engine = duckdb_engine(tmp_path / "warehouse.duckdb")
    try:
        assert rows(engine, "SELECT count(*) FROM events") == [(600,)]
    finally:
        engine.dispose()


@pytest.mark.duckdb
def test_a_terminal_summary_fits_80_columns(tmp_path: Path) -> None:
    table = "github_archive_events_of_every_kind_pushed_and_pulled_in_2024"
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    project.jobs.write_text(
        project.jobs.read_text().replace('__tablename__ = "events"', f"__tablename__ = {table!r}")
    )
    put(project.lake, "events/a.json", [{"id": f"e{i}", "n": i} for i in range(1500)])
    code, text = run_on_a_terminal(["run", "jobs.py"], tmp_path, columns=160)
    assert code == 0, text
    table_lines = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert table_lines, text
    assert max(len(line) for line in table_lines) <= 80, text
    assert re.search(
        r"│ copy github_archive_\S*\.\.\. \(incremental\) *│ +1 │ 1,500 │ +0 │", text
    ), text


def test_quiet_and_verbose_after_the_command(tmp_path: Path) -> None:
    project = Project(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    put(project.lake, "events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": 2}])
    quiet = project("run", "jobs.py", "-q")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    put(project.lake, "events/b.json", [{"id": "b1", "n": 3}])
    verbose = project("validate", "jobs.py", "--verbose")
    assert (verbose.returncode, verbose.stdout) == (0, "")
    assert "copy events (incremental): loaded events/b.json (" in verbose.stderr
    assert "INFO " not in verbose.stderr  # the progress lines say it; the log does not repeat it
    status = project("status", "jobs.py", "-q")
    assert (status.returncode, status.stderr) == (0, "")
    assert status.stdout.splitlines()[0] == HEADER
    missing = project("run", "jobs.py:nightly")
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        2,
        "",
        "error: jobs.py has no 'nightly' (pipelines: pipeline)\n",
    )
