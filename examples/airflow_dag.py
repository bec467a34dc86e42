"""Two pipelines as an Airflow DAG: load visits, then summarise them.

    pip install 'arbalest[airflow]>=2'    # from a clone: pip install -e '.[airflow]'
    cp examples/airflow_dag.py "$AIRFLOW_HOME/dags/"   # Airflow runs DAGs of its DAG folder
    airflow db migrate
    python "$AIRFLOW_HOME/dags/airflow_dag.py" [FOLDER]

Each task is a PipelineOperator naming its pipeline as the command line does (this file,
then ``:NAME``). The run's result goes to XCom; the plan is in the task's rendered fields.
Running it again loads nothing new: the journal knows what is loaded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import sqlalchemy as sa
from airflow.sdk import DAG

from arbalest import Integer, Pipeline, Schema, String
from arbalest.contrib.airflow import PipelineOperator

#: Where the lake and the warehouse are (main() sets it for the tasks).
FOLDER = Path(os.environ.get("ARBALEST_AIRFLOW_FOLDER", "arbalest-airflow"))


class Visit(Schema):
    __tablename__ = "visits"
    # Airflow imports this file more than once in one process (the DAG parser, the task, and
    # here the script itself): a MetaData of its own each time, or the table is defined twice
    metadata = sa.MetaData()

    id = String(36, primary_key=True)
    country = String(2)
    seconds = Integer()


def load_visits() -> Pipeline:
    """New visit objects into the visits table."""
    return Pipeline(f"duckdb:///{FOLDER / 'warehouse.duckdb'}", store=FOLDER / "lake").copy(
        Visit, "visits"
    )


def country_totals() -> Pipeline:
    """Seconds per country, rebuilt after each load."""
    return Pipeline(f"duckdb:///{FOLDER / 'warehouse.duckdb'}").sql(
        "CREATE OR REPLACE TABLE country_totals AS "
        "SELECT country, sum(seconds) AS seconds FROM visits GROUP BY country"
    )


with DAG("arbalest_visits", schedule="@hourly", start_date=dt.datetime(2026, 1, 1)) as dag:
    load = PipelineOperator(
        task_id="load_visits",
        pipeline=f"{__file__}:load_visits",
        retries=3,  # only for failures trying again can cure (retryable)
        retry_delay=dt.timedelta(minutes=1),
    )
    totals = PipelineOperator(task_id="country_totals", pipeline=f"{__file__}:country_totals")
    load >> totals


def write_visits(lake: Path, name: str, visits: list[dict[str, object]]) -> None:
    folder = lake / "visits"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(v) + "\n" for v in visits))


def main(folder: str = "arbalest-airflow") -> bool:
    root = Path(folder).resolve()
    os.environ["ARBALEST_AIRFLOW_FOLDER"] = str(root)  # the tasks' pipelines read it
    if not (root / "lake").exists():
        write_visits(
            root / "lake",
            "2026-11-25.json",
            [
                {"id": "v1", "country": "FR", "seconds": 30},
                {"id": "v2", "country": "DE", "seconds": 5},
            ],
        )
    run = dag.test()
    if str(run.state) != "success":
        print(f"the DAG run ended {run.state}: see Airflow's log above")
        return False
    (loaded,) = [ti for ti in run.get_task_instances() if ti.task_id == "load_visits"]
    result = loaded.xcom_pull(task_ids="load_visits")
    print("rows loaded:", result["rows_loaded"])
    engine = sa.create_engine(f"duckdb:///{root / 'warehouse.duckdb'}")
    try:
        with engine.connect() as conn:
            totals = conn.execute(sa.text("SELECT * FROM country_totals ORDER BY 1")).all()
    finally:
        engine.dispose()
    print("seconds per country:", ", ".join(f"{c} {s}" for c, s in totals))
    return True


if __name__ == "__main__":
    sys.exit(0 if main(*sys.argv[1:2]) else 1)
