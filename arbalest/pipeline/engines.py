"""Engines made from warehouse URLs: the URL as people write it, the driver that is installed,
and no connection kept open between uses.

``Pipeline``, ``SortedSources`` and ``S3CopyPipeline`` make their engines from a URL here.
Their connections are not pooled (``NullPool``): each use opens one and closes it when it is
done, so a DuckDB file is free for other processes (and for ``duckdb.connect()`` in this one)
at once, and a server's sessions end. Only an in-memory database keeps its pool: its data
lives as long as its connection.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Final

import sqlalchemy as sa

from arbalest.errors import ConfigurationError

__all__ = ["create_engine", "duckdb_file", "warehouse_url"]

# What to install for a driver module SQLAlchemy could not import
_INSTALL: Final = {
    "psycopg2": "psycopg2-binary",
    "psycopg": '"psycopg[binary]"',
    "redshift_connector": "redshift_connector",
    "duckdb": "duckdb duckdb-engine",
    "duckdb_engine": "duckdb-engine",
    "sqlalchemy_redshift": "sqlalchemy-redshift",
}
# ... and for a dialect SQLAlchemy has no plug-in for
_DIALECT_PACKAGES: Final = {"duckdb": "duckdb-engine", "redshift": "sqlalchemy-redshift"}
# The drivers a bare ``postgresql://`` may use, in order of preference: psycopg2 is the one
# Arbalest depends on; psycopg 3 serves when it is the one installed.
_POSTGRES_DRIVERS: Final = ("psycopg2", "psycopg")


def warehouse_url(url: str | sa.URL) -> sa.URL:
    """``url`` as SQLAlchemy should read it: ``postgres://`` is ``postgresql://``, and a bare
    ``postgresql://`` names the PostgreSQL driver that is installed (psycopg2, else psycopg 3).

    Raises:
        ConfigurationError: If the URL cannot be read, or no PostgreSQL driver is installed.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"cannot read the warehouse URL: {exc}") from None
    backend, plus, driver = parsed.drivername.partition("+")
    if backend == "postgres":  # what many hosting services print
        backend = "postgresql"
    if backend == "postgresql" and not plus:
        driver = _installed_postgres_driver()
    drivername = f"{backend}+{driver}" if driver else backend
    return parsed if drivername == parsed.drivername else parsed.set(drivername=drivername)


def _installed_postgres_driver() -> str:
    for module in _POSTGRES_DRIVERS:
        if importlib.util.find_spec(module) is not None:
            return module
    raise ConfigurationError(
        "a postgresql:// warehouse needs a PostgreSQL driver, and neither psycopg2 nor psycopg 3 "
        'is installed; install one with: pip install psycopg2-binary (or: pip install "psycopg'
        '[binary]")'
    )


def _in_memory(url: sa.URL) -> bool:
    database = url.database or ""
    return url.get_backend_name() in ("duckdb", "sqlite") and (
        not database or database.startswith(":memory:")
    )


def duckdb_file(url: sa.URL) -> Path | None:
    """The file a DuckDB URL opens (``None``: not DuckDB, in memory, or not a local file)."""
    database = url.database or ""
    if url.get_backend_name() != "duckdb" or _in_memory(url):
        return None
    if database.startswith(("md:", "motherduck:")):
        return None
    return Path(database)


def create_engine(url: str | sa.URL) -> sa.Engine:
    """An engine for a warehouse URL. It never shows bound parameters (which may hold
    credentials) in errors, and keeps no connection open between uses.

    Raises:
        ConfigurationError: If the URL cannot be read, or its dialect or driver is not
            installed (the message says what to install).
    """
    parsed = warehouse_url(url)
    pooling = {} if _in_memory(parsed) else {"poolclass": sa.pool.NullPool}
    shown = parsed.render_as_string(hide_password=True)
    try:
        return sa.create_engine(parsed, hide_parameters=True, **pooling)
    except sa.exc.NoSuchModuleError:
        backend = parsed.get_backend_name()
        package = _DIALECT_PACKAGES.get(backend)
        fix = (
            f"install it with: pip install {package}"
            if package is not None
            else "check the URL's scheme (duckdb:///file.duckdb, postgresql://..., "
            "redshift+psycopg2://...), or install the package that gives SQLAlchemy that dialect"
        )
        raise ConfigurationError(
            f"cannot use the warehouse URL {shown}: SQLAlchemy has no dialect "
            f"{parsed.drivername!r}; {fix}"
        ) from None
    except ImportError as exc:
        module = (exc.name or "").split(".")[0]
        package = _INSTALL.get(module, module or parsed.get_driver_name())
        raise ConfigurationError(
            f"cannot use the warehouse URL {shown}: its driver {module or package!r} is not "
            f"installed; install it with: pip install {package}"
        ) from None
