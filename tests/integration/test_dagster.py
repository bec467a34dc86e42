"""pipeline_assets: Dagster materialises a pipeline's tables, in process, for real."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fixtures.extras import need

dagster: Any = need("dagster", "dagster")

ROOT = Path(__file__).parents[2]

from arbalest import (  # noqa: E402
    ConfigurationError,
    Date,
    Pipeline,
    SortedSources,
    String,
)
from arbalest.contrib.dagster import observe_journal, pipeline_assets  # noqa: E402
from tests.fixtures.lakes import put  # noqa: E402
from tests.fixtures.schemas import Visit, fresh_base  # noqa: E402


class Click(fresh_base()):  # type: ignore[misc]
    __tablename__ = "clicks"
    id = String(10, primary_key=True)
    page = String(20)


def values(event: Any) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def materialised(result: Any) -> dict[str, dict[str, Any]]:
    """Metadata of each materialisation, by the asset key's path joined with dots."""
    return {
        ".".join(event.asset_key.path): values(event.event_specific_data.materialization)
        for event in result.get_asset_materialization_events()
    }


def rows(engine: sa.Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))]


@pytest.fixture
def instance() -> Any:
    """A Dagster instance in a temporary folder, removed afterwards."""
    with dagster.DagsterInstance.ephemeral() as made:
        yield made


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    put(root, "visits/a.json", [{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c"}])
    put(root, "clicks/a.json", [{"id": "x", "page": "/"}, {"id": "y", "page": "/" + "p" * 30}])
    return root


def two_tables(warehouse: sa.Engine, lake: Path) -> Pipeline:
    return (
        Pipeline(warehouse, store=lake, name="site-loads")
        .copy(Visit, "visits")
        .copy(Click, "clicks", max_errors=1)
        .sql("CREATE TABLE IF NOT EXISTS totals AS SELECT sum(n) AS n FROM visits")
    )


def test_each_table_is_an_asset_with_the_run_s_figures(
    warehouse: sa.Engine, lake: Path, instance: Any
) -> None:
    assets = pipeline_assets(two_tables(warehouse, lake), group_name="site")
    assert {k.to_user_string() for k in assets.keys} == {"visits", "clicks"}
    assert assets.op.name == "site_loads"
    assert assets.group_names_by_key[dagster.AssetKey("visits")] == "site"
    assert assets.specs_by_key[dagster.AssetKey("visits")].description == "One visit to the site."
    assert assets.specs_by_key[dagster.AssetKey("clicks")].description is None

    result = dagster.materialize([assets], instance=instance)
    assert result.success
    found = materialised(result)
    assert set(found) == {"visits", "clicks"}
    visits, clicks = found["visits"], found["clicks"]
    assert (visits["rows_loaded"], visits["rows_rejected"], visits["objects_loaded"]) == (3, 0, 1)
    assert (clicks["rows_loaded"], clicks["rows_rejected"], clicks["objects_loaded"]) == (1, 1, 1)
    assert visits["step"] == "copy visits (incremental)"
    assert isinstance(visits["seconds"], float)
    assert visits["seconds"] >= 0
    assert (visits["journal_objects"], visits["journal_rows_loaded"]) == (1, 3)
    assert rows(warehouse, "visits") == [("a", 1), ("b", 2), ("c", None)]
    assert rows(warehouse, "totals") == [(3,)]  # every asset selected: the SQL step ran

    # nothing new: both materialise again with zero rows, and the journal's time stays
    first = visits["dagster/last_updated_timestamp"]
    again = materialised(dagster.materialize([assets], instance=instance))
    assert again["visits"]["rows_loaded"] == 0
    assert again["visits"]["journal_rows_loaded"] == 3
    assert again["visits"]["dagster/last_updated_timestamp"] == first


def test_a_subset_runs_only_its_steps(warehouse: sa.Engine, lake: Path, instance: Any) -> None:
    assets = pipeline_assets(two_tables(warehouse, lake), key_prefix="raw")
    result = dagster.materialize([assets], selection=["raw/clicks"], instance=instance)
    assert result.success
    assert set(materialised(result)) == {"raw.clicks"}
    assert rows(warehouse, "clicks") == [("x", "/")]
    with warehouse.connect() as conn:
        tables = (
            set(sa.inspect(conn).get_table_names())
            if warehouse.dialect.name != "duckdb"
            else {
                r[0]
                for r in conn.execute(sa.text("SELECT table_name FROM information_schema.tables"))
            }
        )
    assert "visits" not in tables
    assert "totals" not in tables  # a subset runs no SQL step


@pytest.mark.duckdb
# Dagster's last-update checks read dagster/last_updated_timestamp; its newer FreshnessPolicy
# is evaluated by its daemon, which an in-process test does not run
@pytest.mark.filterwarnings("ignore::dagster.SupersessionWarning")
def test_the_journal_is_the_freshness_source(tmp_path: Path, lake: Path, instance: Any) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    pipeline = Pipeline(url, store=lake).copy(Visit, "visits")
    assets = pipeline_assets(pipeline)
    checks = dagster.build_last_update_freshness_checks(
        assets=[assets], lower_bound_delta=dt.timedelta(hours=1)
    )

    # loaded outside Dagster (the command line): the journal says when
    pipeline.run()
    (observation,) = observe_journal(pipeline)
    assert observation.asset_key == dagster.AssetKey("visits")
    seen = values(observation)
    assert (seen["journal_objects"], seen["journal_rows_loaded"]) == (1, 3)
    loaded_at = seen["dagster/last_updated_timestamp"]
    assert abs(loaded_at - dt.datetime.now(dt.UTC).timestamp()) < 600
    instance.report_runless_asset_event(observation)

    result = dagster.materialize(
        [*checks], instance=instance, selection=dagster.AssetSelection.all_asset_checks()
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert values(evaluation)["dagster/last_updated_timestamp"] == loaded_at

    # a day-old load is overdue, however recently Dagster ran (on an instance that has not
    # seen the observation above)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE _arbalest_journal SET loaded_at = loaded_at - INTERVAL 1 DAY"))
    engine.dispose()
    with dagster.DagsterInstance.ephemeral() as later:
        (seen,) = materialised(dagster.materialize([assets], instance=later)).values()
        assert seen["rows_loaded"] == 0
        assert seen["dagster/last_updated_timestamp"] == pytest.approx(loaded_at - 86400)
        result = dagster.materialize(
            [assets, *checks], instance=later, selection=dagster.AssetSelection.all_asset_checks()
        )
        (evaluation,) = result.get_asset_check_evaluations()
        assert not evaluation.passed


@pytest.mark.duckdb
def test_a_failure_that_retrying_cannot_fix_allows_no_retries(
    tmp_path: Path, instance: Any
) -> None:
    lake = tmp_path / "lake"
    put(lake, "visits/a.json", [{"id": "a", "n": "many"}])
    assets = pipeline_assets(
        Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=lake).copy(Visit, "visits"),
        retry_policy=dagster.RetryPolicy(max_retries=2),
    )
    result = dagster.materialize([assets], raise_on_error=False, instance=instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    assert "TooManyRejectsError" in error.message
    assert "a.json" in error.message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_a_pipeline_that_loads_no_table_has_no_assets() -> None:
    with pytest.raises(ConfigurationError, match="loads no table"):
        pipeline_assets(Pipeline("duckdb:///:memory:").sql("SELECT 1"))


def test_the_example_materialises_its_assets_and_checks_them(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dagster_assets.py"), str(tmp_path / "out")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "visits: 2 rows loaded, 0 rejected, 1 objects in the journal" in done.stdout
    assert "pages: 1 rows loaded" in done.stdout
    assert "visits: fresh" in done.stdout


def test_a_failure_that_retrying_may_cure_follows_the_retry_policy(instance: Any) -> None:
    # nothing listens on port 1: a refused connection, which is retryable
    pipeline = Pipeline(
        "postgresql+psycopg2://nobody:s3cr3t@127.0.0.1:1/none?connect_timeout=2",
        store=Path(__file__).parent,
    ).copy(Visit, "visits")
    assets = pipeline_assets(pipeline, retry_policy=dagster.RetryPolicy(max_retries=1))
    result = dagster.materialize([assets], raise_on_error=False, instance=instance)
    assert not result.success
    kinds = [e.event_type_value for e in result.all_events]
    assert kinds.count("STEP_UP_FOR_RETRY") == 1
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "WarehouseUnavailableError" in failure.step_failure_data.error.cause.message
    assert "s3cr3t" not in str(result.all_events)


class Hit(fresh_base()):  # type: ignore[misc]
    __tablename__ = "hits"
    id = String(10)
    day = Date()


@pytest.mark.duckdb
def test_a_time_series_table_is_an_asset(tmp_path: Path, instance: Any) -> None:
    lake = tmp_path / "lake"
    put(lake, "hits/2026-11-24/a.json", [{"id": "a", "day": "2026-11-24"}])
    put(lake, "hits/2026-11-25/a.json", [{"id": "b", "day": "2026-11-25"}] * 2)
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        sources = SortedSources(lake, "hits", warehouse=engine)
        pipeline = Pipeline(engine).time_series(Hit, sources, series_column="day")
        assets = pipeline_assets(pipeline)
        assert {k.to_user_string() for k in assets.keys} == {"hits"}
        found = materialised(dagster.materialize([assets], instance=instance))
        hits = found["hits"]
        assert (hits["step"], hits["objects_loaded"], hits["rows_loaded"]) == (
            "time series hits",
            2,
            3,
        )
        assert hits["journal_objects"] == 2
        assert "dagster/last_updated_timestamp" in hits
        assert sources.committed() == "hits/2026-11-25"
    finally:
        engine.dispose()


@pytest.mark.duckdb
def test_two_steps_into_one_table_are_one_materialisation(
    tmp_path: Path, lake: Path, instance: Any
) -> None:
    put(lake, "more/b.json", [{"id": "d", "n": 4}])
    pipeline = (
        Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=lake)
        .copy(Visit, "visits")
        .copy(Visit, "more")
    )
    found = materialised(dagster.materialize([pipeline_assets(pipeline)], instance=instance))
    visits = found["visits"]
    assert visits["step"] == "copy visits (incremental); copy visits (incremental)"
    assert (visits["rows_loaded"], visits["objects_loaded"], visits["journal_objects"]) == (
        4,
        2,
        2,
    )
