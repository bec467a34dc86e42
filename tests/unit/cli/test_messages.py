"""What the command says about a pipeline beyond its results: retry hints and its name."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

from arbalest.cli.output import result_table
from arbalest.pipeline import RunResult, StepResult
from tests.fixtures.cli import Cli
from tests.fixtures.modules import module

pytestmark = pytest.mark.usefixtures("clean_cli")

HEAD = module(
    """\
class Unreachable(LocalStore):
    def list(self, prefix="", *, exclude=None):
        raise StoreUnavailableError(f"cannot list {{prefix}}: S3 did not answer")
        yield
""",
    "WAREHOUSE = {warehouse!r}\nSTORE = {store!r}\n",
    imports=(
        "from arbalest.errors import StoreUnavailableError",
        "from arbalest.stores.local import LocalStore",
    ),
)


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    """A module with the header above; tests append their pipeline to it."""
    (tmp_path / "lake" / "events").mkdir(parents=True)
    (tmp_path / "lake" / "events" / "a.json").write_text('{"id": "a", "n": 1}\n')
    path = tmp_path / "jobs.py"
    path.write_text(
        HEAD.format(warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}", store=str(tmp_path / "lake"))
    )
    return path


def write(path: Path, body: str) -> Path:
    path.write_text(path.read_text() + "\n" + textwrap.dedent(body))
    return path


# -- retry hints --------------------------------------------------------------------------


def test_a_store_outage_in_a_step_says_retryable(cli: Cli, jobs: Path) -> None:
    write(jobs, 'pipeline = Pipeline(WAREHOUSE, store=Unreachable(STORE)).copy(Event, "events")\n')
    assert cli("run", str(jobs)) == (
        1,
        "",
        "error: step 'copy events (incremental)' failed: cannot list events/: "
        "S3 did not answer (retryable: try again)\n",
    )


def test_a_store_outage_outside_a_step_says_retryable(cli: Cli, jobs: Path) -> None:
    write(jobs, 'pipeline = Pipeline(WAREHOUSE, store=Unreachable(STORE)).copy(Event, "events")\n')
    assert cli("plan", str(jobs)) == (
        1,
        "",
        "error: cannot list events/: S3 did not answer (retryable: try again)\n",
    )


# -- the pipeline's name ------------------------------------------------------------------

NAMED = 'pipeline = Pipeline(WAREHOUSE, store=STORE, name="nightly").copy(Event, "events")\n'


@pytest.mark.parametrize("command", ["run", "validate", "plan", "status"])
def test_a_named_pipeline_is_announced_on_stderr(cli: Cli, jobs: Path, command: str) -> None:
    write(jobs, NAMED)
    duckdb.connect(str(jobs.with_name("w.duckdb"))).close()  # status reads an existing one
    code, out, err = cli(command, str(jobs))
    assert code == 0
    assert err.splitlines()[0] == f"pipeline nightly: {command}"
    assert "nightly" not in out  # results stay as they are
    # --quiet: nothing on stderr
    assert cli("-q", command, str(jobs))[2] == ""


def test_an_unnamed_pipeline_has_no_header(cli: Cli, jobs: Path) -> None:
    write(jobs, 'pipeline = Pipeline(WAREHOUSE, store=STORE).copy(Event, "events")\n')
    code, out, err = cli("run", str(jobs))
    assert (code, out) == (0, "")
    assert not err.startswith("pipeline")


def test_the_summary_table_names_the_pipeline() -> None:
    result = RunResult([StepResult("sql: SELECT 1", None, 0, 0, 0, [], 0.5)])
    assert result_table(result, name="nightly").title == "nightly: run"
    assert result_table(RunResult([], validated=True), name="nightly").title == (
        "nightly: validated (rolled back)"
    )
    assert result_table(result).title == "run"
