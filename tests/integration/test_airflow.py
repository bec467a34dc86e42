"""PipelineOperator: a DAG run by Airflow's own test runner, ``dag.test()``.

Airflow keeps its configuration, metadata database and DAG folder in process-wide state read
at import, so each DAG runs in a Python process of its own, with an ``AIRFLOW_HOME`` made for
the session; the process prints what Airflow recorded (states, tries, XCom, rendered fields).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.extras import need

need("airflow", "airflow", load=False)  # Airflow runs in processes of its own

ROOT = Path(__file__).parents[2]

#: Appended to a DAG file: run it with dag.test() and print what Airflow recorded.
REPORT = """

if __name__ == "__main__":
    import json as _json
    import sys as _sys

    from airflow.models.renderedtifields import RenderedTaskInstanceFields as _Fields

    _run = dag.test(run_conf=_json.loads(_sys.argv[1]) if len(_sys.argv) > 1 else None)
    _tasks = {
        ti.task_id: {
            "state": str(ti.state),
            "try_number": ti.try_number,
            "xcom": ti.xcom_pull(task_ids=ti.task_id),
            "rendered": _Fields.get_templated_fields(ti),
        }
        for ti in _run.get_task_instances()
    }
    print("REPORT " + _json.dumps({"state": str(_run.state), "tasks": _tasks}, default=str))
"""


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An Airflow home with a migrated SQLite database and an empty DAG folder."""
    home = tmp_path_factory.mktemp("airflow")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(ROOT),
    }
    (home / "dags").mkdir()
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return env


def run_dag(env: dict[str, str], name: str, text: str, *args: str) -> dict[str, Any]:
    """Write a DAG file into the DAG folder, run it, and return its report."""
    path = Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{name}.py"
    path.write_text(textwrap.dedent(text) + REPORT)
    done = subprocess.run(
        [sys.executable, str(path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    path.unlink()
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(lines[-1].removeprefix("REPORT "))
    report["output"] = done.stdout + done.stderr
    return report


def write_lake(root: Path) -> None:
    (root / "lake" / "visits").mkdir(parents=True)
    (root / "lake" / "visits" / "a.json").write_text(
        '{"id": "a", "n": 1}\n{"id": "b", "n": 2}\n{"id": "c", "n": 3}\n'
    )
    (root / "lake" / "bad").mkdir()
    (root / "lake" / "bad" / "a.json").write_text('{"id": "a", "n": "many"}\n')


JOBS = """\
from arbalest import Pipeline
from tests.fixtures.schemas import Visit


ROOT = {root!r}


def visits():
    return Pipeline(f"duckdb:///{{ROOT}}/visits.duckdb", store=f"{{ROOT}}/lake").copy(
        Visit, "visits"
    )


def bad():
    return Pipeline(f"duckdb:///{{ROOT}}/bad.duckdb", store=f"{{ROOT}}/lake").copy(Visit, "bad")


# nothing listens on port 1: a refused connection, which trying again may cure
unreachable = Pipeline(
    "postgresql+psycopg2://nobody:s3cr3t@127.0.0.1:1/none?connect_timeout=2", store=ROOT
).copy(Visit, "visits")
"""

DAG = """\
import datetime as dt

from airflow.sdk import DAG

from arbalest.contrib.airflow import PipelineOperator

with DAG(
    "arbalest_loads",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1),
    params={{"jobs": {jobs!r}, "root": {root!r}}},
) as dag:
    PipelineOperator(task_id="load", pipeline="{{{{ params.jobs }}}}:visits")
    PipelineOperator(
        task_id="elsewhere",
        pipeline={jobs!r} + ":visits",
        warehouse="duckdb:///{{{{ params.root }}}}/elsewhere.duckdb",
        show_plan=False,
    )
    PipelineOperator(
        task_id="bad_data", pipeline={jobs!r} + ":bad", retries=2, retry_delay=dt.timedelta(0)
    )
    PipelineOperator(
        task_id="missing", pipeline={jobs!r} + ":nope", retries=2, retry_delay=dt.timedelta(0)
    )
    PipelineOperator(
        task_id="unreachable",
        pipeline={jobs!r} + ":unreachable",
        retries=1,
        retry_delay=dt.timedelta(0),
    )
"""


def test_a_dag_of_pipelines_with_airflow_s_test_runner(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    write_lake(tmp_path)
    jobs = tmp_path / "jobs.py"
    jobs.write_text(JOBS.format(root=str(tmp_path)))
    report = run_dag(airflow_env, "arbalest_loads", DAG.format(jobs=str(jobs), root=str(tmp_path)))
    tasks = report["tasks"]
    assert report["state"] == "failed"

    load = tasks["load"]
    assert load["state"] == "success"
    assert load["try_number"] == 1
    assert load["xcom"]["command"] == "run"
    assert load["xcom"]["rows_loaded"] == 3
    assert [s["label"] for s in load["xcom"]["steps"]] == ["copy visits (incremental)"]
    assert load["rendered"]["pipeline"] == f"{jobs}:visits"  # templated
    plan = load["rendered"]["plan"]
    assert "1. copy visits (incremental)" in plan
    assert "objects to load: 1" in plan
    assert "visits/a.json" in plan

    # warehouse= points the same pipeline elsewhere (templated); show_plan=False: no plan
    elsewhere = tasks["elsewhere"]
    assert elsewhere["state"] == "success"
    assert elsewhere["xcom"]["rows_loaded"] == 3
    assert elsewhere["rendered"]["warehouse"] == f"duckdb:///{tmp_path}/elsewhere.duckdb"
    assert elsewhere["rendered"]["plan"] == ""
    assert (tmp_path / "elsewhere.duckdb").exists()

    # bad data: no retry can help, so none is made although retries=2
    bad = tasks["bad_data"]
    assert (bad["state"], bad["try_number"]) == ("failed", 1)
    assert bad["xcom"] is None
    assert "AirflowFailException" in report["output"]
    assert "TooManyRejectsError" in report["output"]

    # a name the file does not have: a mistake to fix, not to retry
    missing = tasks["missing"]
    assert (missing["state"], missing["try_number"]) == ("failed", 1)
    assert f"{jobs} has no 'nope'" in missing["rendered"]["plan"]
    assert f"{jobs} has no 'nope'" in report["output"]

    # a refused connection: retried as retries=1 says
    unreachable = tasks["unreachable"]
    assert (unreachable["state"], unreachable["try_number"]) == ("failed", 2)
    assert "WarehouseUnavailableError" in unreachable["rendered"]["plan"]
    assert "s3cr3t" not in report["output"]


@pytest.mark.slow
def test_the_example_dag(airflow_env: dict[str, str], tmp_path: Path) -> None:
    dags = Path(airflow_env["AIRFLOW__CORE__DAGS_FOLDER"])
    example = (ROOT / "examples" / "airflow_dag.py").read_text()
    (dags / "airflow_dag.py").write_text(example)
    try:
        done = subprocess.run(
            [sys.executable, str(dags / "airflow_dag.py"), str(tmp_path / "out")],
            env=airflow_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        (dags / "airflow_dag.py").unlink()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rows loaded: 2" in done.stdout
    assert "seconds per country: DE 5, FR 30" in done.stdout
