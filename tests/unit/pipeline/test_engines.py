"""Warehouse URLs as people write them: ``postgres://``, a bare ``postgresql://`` served by
whichever PostgreSQL driver is installed, and a missing driver named with what to install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from arbalest import ConfigurationError, Pipeline, SortedSources
from arbalest.compat import S3CopyPipeline
from arbalest.pipeline.engines import create_engine, warehouse_url


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` look not installed (importing them fails, as when they are absent)."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize(
    ("url", "drivername"),
    [
        ("postgres://user@db.example.com/app", "postgresql+psycopg2"),
        ("postgres+psycopg://user@db.example.com/app", "postgresql+psycopg"),
        ("postgresql://user@db.example.com/app", "postgresql+psycopg2"),
        ("postgresql+psycopg://user@db.example.com/app", "postgresql+psycopg"),
        ("redshift+psycopg2://user@cluster:5439/dev", "redshift+psycopg2"),
        ("duckdb:///warehouse.duckdb", "duckdb"),
    ],
)
def test_urls_as_people_write_them(url: str, drivername: str) -> None:
    assert warehouse_url(url).drivername == drivername
    pipeline = Pipeline(url)
    assert pipeline.engine.url.drivername == drivername
    assert pipeline.engine.url.database == sa.make_url(url).database


@pytest.mark.parametrize(
    ("hidden", "drivername"),
    [((), "postgresql+psycopg2"), (("psycopg2",), "postgresql+psycopg")],
)
def test_a_bare_postgresql_url_uses_the_driver_that_is_installed(
    monkeypatch: pytest.MonkeyPatch, hidden: tuple[str, ...], drivername: str
) -> None:
    hide(monkeypatch, *hidden)
    for url in ("postgresql://user@127.0.0.1/test", "postgres://user@127.0.0.1/test"):
        pipeline = Pipeline(url)
        assert pipeline.engine.url.drivername == drivername
        assert pipeline.backend.name == "postgresql"


def test_no_postgresql_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "psycopg2", "psycopg")
    with pytest.raises(ConfigurationError, match=r"pip install psycopg2-binary") as caught:
        Pipeline("postgresql://user@127.0.0.1/test")
    assert 'pip install "psycopg[binary]"' in str(caught.value)


@pytest.mark.parametrize(
    ("url", "hidden", "install"),
    [
        ("postgresql+psycopg://u:s3cr3t@h/db", "psycopg", 'pip install "psycopg[binary]"'),
        ("postgresql+psycopg2://u:s3cr3t@h/db", "psycopg2", "pip install psycopg2-binary"),
        (
            "redshift+redshift_connector://u:s3cr3t@c:5439/dev",
            "redshift_connector",
            'pip install "arbalest[redshift]>=2"',
        ),
    ],
)
def test_a_url_whose_driver_is_missing_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, url: str, hidden: str, install: str
) -> None:
    hide(monkeypatch, hidden)
    with pytest.raises(ConfigurationError) as caught:
        Pipeline(url)
    message = str(caught.value)
    assert message.endswith(f"its driver {hidden!r} is not installed; install it with: {install}")
    assert "s3cr3t" not in message
    assert caught.value.__cause__ is None  # nor in a chained error


def test_a_url_with_an_unknown_scheme_says_what_to_check() -> None:
    with pytest.raises(ConfigurationError, match=r"SQLAlchemy has no dialect 'postgress'; check"):
        Pipeline("postgress://user@127.0.0.1/test")
    with pytest.raises(ConfigurationError, match=r"cannot read the warehouse URL"):
        Pipeline("warehouse.duckdb")


def test_every_engine_made_from_a_url_reads_it_the_same_way(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hide(monkeypatch, "psycopg2")
    url = "postgres://user@127.0.0.1/test"
    sources = SortedSources(tmp_path, "events", warehouse=url)
    seed = S3CopyPipeline(None, None, "bucket", url)
    for engine in (sources._warehouse(), seed._pipeline(None).engine, create_engine(url)):
        assert engine.url.drivername == "postgresql+psycopg"


def test_engines_made_from_a_url_pool_no_connection_but_in_memory(tmp_path: Path) -> None:
    assert isinstance(create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}").pool, sa.pool.NullPool)
    assert isinstance(create_engine("postgresql://user@127.0.0.1/test").pool, sa.pool.NullPool)
    # an in-memory database lives in its connection: that one is kept
    assert not isinstance(create_engine("duckdb:///:memory:").pool, sa.pool.NullPool)


def test_a_duckdb_url_sets_duckdb_options(tmp_path: Path) -> None:
    # DuckDB's own memory_limit (80% of the machine) stays unless the URL sets one: a lower
    # limit that a table's primary-key index outgrows fails the commit (and DuckDB then
    # refuses the database until it is opened again), so Arbalest sets none of its own.
    own = create_engine(f"duckdb:///{tmp_path / 'b.duckdb'}?memory_limit=1GB&threads=1")
    try:
        with own.connect() as conn:
            limit, threads = conn.exec_driver_sql(
                "SELECT current_setting('memory_limit'), current_setting('threads')"
            ).one()
        assert (limit, threads) in {("953.6 MiB", 1), ("1.0 GiB", 1)}
    finally:
        own.dispose()
