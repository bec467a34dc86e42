"""Every example runs, and leaves in the warehouse what it says."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import duckdb
import pytest
import sqlalchemy as sa

from tests.fixtures.lakes import EXAMPLE_ORDERS, ndjson

ROOT = Path(__file__).parents[2]


def load(name: str) -> ModuleType:
    """An example as a module, loaded once per test process (running its file again would
    declare its schemas again in the shared MetaData)."""
    if f"example_{name}" in sys.modules:
        return sys.modules[f"example_{name}"]
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", ROOT / "examples" / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_time_series_by_day_and_hour(tmp_path: Path) -> None:
    example = load("time_series")
    first = example.main(str(tmp_path))
    assert (first.steps[0].objects_loaded, first.rows_loaded) == (5, 4 + 5 + 6 + 7 + 8)
    second = example.main(str(tmp_path))
    assert second.rows_loaded == 0
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        hours = con.execute(
            "SELECT date_trunc('hour', clicked_at), count(*) FROM clicks GROUP BY 1 ORDER BY 1"
        ).fetchall()
        (cursor,) = con.execute("SELECT point FROM _arbalest_cursors").fetchone() or (None,)
    finally:
        con.close()
    assert hours == [
        (dt.datetime(2026, 11, 24, 22), 4),
        (dt.datetime(2026, 11, 24, 23), 5),
        (dt.datetime(2026, 11, 25, 0), 6),
        (dt.datetime(2026, 11, 25, 1), 7),
        (dt.datetime(2026, 11, 26, 12), 8),
    ]
    assert cursor == "clicks/2026-11-26"


def test_parquet_lake_into_duckdb(tmp_path: Path) -> None:
    example = sys.modules.get("example_parquet_lake") or load("parquet_lake")
    first = example.main(str(tmp_path))
    assert (first.steps[0].objects_loaded, first.rows_loaded) == (3, 12)
    assert first.steps[0].rows_rejected == 0
    assert example.main(str(tmp_path)).rows_loaded == 0
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        revenue = con.execute("SELECT * FROM parquet_revenue ORDER BY day").fetchall()
        coupons = con.execute(
            "SELECT CAST(created_at AS DATE), count(coupon) FROM parquet_orders "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        shipping = con.execute(
            "SELECT shipping->>'city', items->0->>'sku' FROM parquet_orders WHERE id = 101"
        ).fetchall()
    finally:
        con.close()
    days = [dt.date(2026, 3, d) for d in (1, 2, 3)]
    assert revenue == [(day, Decimal("66.99")) for day in days]
    assert coupons == [(days[0], 0), (days[1], 2), (days[2], 2)]
    assert shipping == [("Lyon", "sku-0")]


def test_luigi_graph_runs_then_is_complete_then_runs_again(tmp_path: Path) -> None:
    import luigi

    example = load("luigi_graph")
    ran: list[str] = []

    @luigi.Task.event_handler(luigi.Event.SUCCESS)  # type: ignore[untyped-decorator]
    def record(task: Any) -> None:
        ran.append(type(task).__name__)

    try:
        assert example.main(str(tmp_path))
        assert sorted(ran) == ["CountryTotals", "LoadVisits"]
        ran.clear()
        assert example.main(str(tmp_path))
        assert ran == []  # both complete, from the journal
        example.write_visits(
            tmp_path / "lake", "later.json", [{"id": "v3", "country": "FR", "seconds": 12}]
        )
        assert example.main(str(tmp_path))
        assert sorted(ran) == ["CountryTotals", "LoadVisits"]
    finally:
        luigi.Task._event_callbacks.get(luigi.Task, {}).get(luigi.Event.SUCCESS, set()).discard(
            record
        )
    # the tasks' engines are still open in this process: read through an engine too
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    with engine.connect() as conn:
        totals = conn.execute(
            sa.text("SELECT country, seconds FROM country_totals ORDER BY country")
        ).all()
    engine.dispose()
    assert [tuple(t) for t in totals] == [("DE", 5), ("FR", 42)]


@pytest.mark.postgres
@pytest.mark.s3
def test_s3_to_redshift_with_an_iam_role(redshift_standin: Any, s3_bucket: str) -> None:
    example = load("s3_to_redshift")
    body = ndjson(EXAMPLE_ORDERS).encode()
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="raw/orders/2026-11-25.json", Body=body)
    role = "arn:aws:iam::123456789012:role/RedshiftLoader"
    result = example.build(redshift_standin.engine, s3_bucket, role).run()
    assert result.rows_loaded == 3
    (copy,) = redshift_standin.copies
    assert copy["manifest_url"].startswith(f"s3://{s3_bucket}/raw/_arbalest/manifests/orders/")
    with redshift_standin.engine.connect() as conn:
        revenue = conn.execute(sa.text("SELECT day, revenue FROM daily_revenue")).all()
        (credentials,) = conn.execute(sa.text("SELECT statement FROM standin_copies")).one()
    assert [(d, str(r)) for d, r in revenue] == [(dt.date(2026, 11, 25), "14.75")]
    assert "WITH CREDENTIALS AS" in credentials


@pytest.mark.postgres
@pytest.mark.s3
def test_the_original_readme_example_runs_as_written(
    postgres_url: str, postgres_schema: str, s3_bucket: str, s3_endpoint: str
) -> None:
    client = boto3.client("s3")
    client.put_object(
        Bucket=s3_bucket,
        Key="path_of_source_data/a.json",
        Body=b'{"id": "66bc8153-d6d9-4351-bada-803330f22db7", "someNumber": 1}\n',
    )
    client.put_object(
        Bucket=s3_bucket,
        Key="path_of_incremental_source_data/b.json",
        Body=b'{"id": "b", "someNumber": 2}\n{"id": "c", "someNumber": 3}\n',
    )
    dsn = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    dsn += f" options=-csearch_path={postgres_schema}"
    env = {
        **os.environ,
        "BUCKET_NAME": s3_bucket,
        "REDSHIFT_CONNECTION": dsn,
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "seed_s3_copy_pipeline.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            bulk = conn.execute(
                sa.text("SELECT id, custom_column_name FROM destination_table_name")
            ).all()
            incremental = conn.execute(
                sa.text(
                    "SELECT id, custom_column_name FROM incremental_destination_table_name "
                    "ORDER BY id"
                )
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in bulk] == [("66bc8153-d6d9-4351-bada-803330f22db7", 1)]
    assert [tuple(r) for r in incremental] == [("b", 2), ("c", 3)]


def test_the_seed_example_names_a_missing_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("BUCKET_NAME", "REDSHIFT_CONNECTION")}
    env["BUCKET_NAME"] = "some-bucket"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "seed_s3_copy_pipeline.py")],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "REDSHIFT_CONNECTION" in done.stderr
    assert "BUCKET_NAME" not in done.stderr.splitlines()[-1].split("(")[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "summary"),
    [
        ("quickstart", "copy events (incremental)"),
        ("time_series", "cursor: clicks/2026-11-26"),
        ("luigi_graph", "seconds per country: DE 5, FR 30"),
    ],
)
def test_each_local_example_prints_a_summary(name: str, summary: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py"), str(tmp_path / "out")],
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert summary in done.stdout


def test_observability_prints_the_span_tree_of_a_run(tmp_path: Path) -> None:
    example = load("observability")
    result, lines, totals = example.main(str(tmp_path))
    assert (result.rows_loaded, result.rows_rejected) == (64_005, 2)
    names = [line.split(" (")[0] for line in lines]
    assert names == [
        "arbalest.run",
        "  arbalest.step",
        "    arbalest.object",
        "      arbalest.batch",  # the large object: read in five pieces of about 2 MB
        "      arbalest.batch",
        "      arbalest.batch",
        "      arbalest.batch",
        "      arbalest.batch",
        "    arbalest.object",
        "      arbalest.batch",
        "    arbalest.object",
        "      arbalest.batch",
    ]
    assert "arbalest.object.key='clicks/2026-12-03.json'" in lines[-2]
    assert "arbalest.rows.loaded=2 arbalest.rows.rejected=2" in lines[-2]
    size = sum(p.stat().st_size for p in (tmp_path / "lake" / "clicks").iterdir())
    assert totals == {
        "arbalest.rows.loaded": 64_005,
        "arbalest.rows.rejected": 2,
        "arbalest.objects.loaded": 3,
        "arbalest.bytes": size,
        "arbalest.step.duration": 1,
    }
