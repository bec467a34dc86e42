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
import typing
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa

from arbalest.errors import ConfigurationError

__all__ = ["create_engine", "duckdb_file", "in_memory", "warehouse_url"]

# What to install for a driver module SQLAlchemy could not import
_INSTALL: Final = {
    "psycopg2": "psycopg2-binary",
    "psycopg": '"psycopg[binary]"',
    "redshift_connector": '"arbalest[redshift]>=2"',
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


def in_memory(url: sa.URL) -> bool:
    """Whether ``url`` names an in-memory database (gone once its last connection closes)."""
    database = url.database or ""
    return url.get_backend_name() in ("duckdb", "sqlite") and (
        not database or database.startswith(":memory:")
    )


def duckdb_file(url: sa.URL) -> Path | None:
    """The file a DuckDB URL opens (``None``: not DuckDB, in memory, or not a local file)."""
    database = url.database or ""
    if url.get_backend_name() != "duckdb" or in_memory(url):
        return None
    if database.startswith(("md:", "motherduck:")):
        return None
    return Path(database)


def create_engine(url: str | sa.URL) -> sa.Engine:
    """An engine for a warehouse URL. It never shows bound parameters (which may hold
    credentials) in errors, and keeps no connection open between uses.

    Redshift over psycopg2 signs in with IAM when the URL says ``iam=true`` (see
    ``arbalest.backends._redshift_iam``); the options of a ``redshift+redshift_connector://``
    URL reach the driver as the types it takes (``iam=true`` a boolean, ``db_groups=a,b`` a
    list).

    Raises:
        ConfigurationError: If the URL cannot be read, holds an AWS secret in its query, or
            its dialect or driver is not installed (the message says what to install).
    """
    parsed = warehouse_url(url)
    pooling: dict[str, Any] = {} if in_memory(parsed) else {"poolclass": sa.pool.NullPool}
    shown = parsed.render_as_string(hide_password=True)
    sign_in = None
    if parsed.get_backend_name() == "redshift" and parsed.get_driver_name() == "data":
        # the secret's ARN goes to the driver, never into the engine's URL (messages show it)
        from arbalest.backends._redshift_data import RedshiftDataAPI

        return RedshiftDataAPI.from_url(parsed).engine()
    if parsed.get_backend_name() == "redshift":
        _refuse_secrets_in_query(parsed, shown)
        driver = parsed.get_driver_name()
        if driver == "redshift_connector":
            pooling["connect_args"] = _redshift_connector_options(parsed)
        elif "iam" in parsed.query and _iam_asked(parsed):
            from arbalest.backends._redshift_iam import IAM_OPTIONS, IAMSignIn

            sign_in = IAMSignIn.from_url(parsed)
            parsed = parsed.difference_update_query(IAM_OPTIONS)
        elif "iam" in parsed.query:
            parsed = parsed.difference_update_query(["iam"])
    try:
        engine = sa.create_engine(parsed, hide_parameters=True, **pooling)
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
    if sign_in is not None:
        sign_in.install(engine)
    return engine


def _refuse_secrets_in_query(url: sa.URL, shown: str) -> None:
    from arbalest.backends._redshift_iam import SECRET_OPTIONS

    found = sorted(name for name in url.query if name.lower() in SECRET_OPTIONS)
    if found:
        raise ConfigurationError(
            f"the warehouse URL {url.set(query={}).render_as_string(hide_password=True)} "
            f"carries {', '.join(found)} in its query, where messages and process lists would "
            "show it: name an AWS profile (profile=) or let boto3 find credentials in the "
            "environment, or pass an Engine made with connect_args"
        )


def _iam_asked(url: sa.URL) -> bool:
    from arbalest.backends._redshift_iam import truthy

    value = url.query["iam"]
    return truthy("iam", value if isinstance(value, str) else value[-1])


# read by sqlalchemy-redshift's dialect itself, not by the driver
_DIALECT_OPTIONS: Final = ("client_encoding",)


def _redshift_connector_options(url: sa.URL) -> dict[str, Any]:
    """The URL's query parameters as the types ``redshift_connector.connect`` declares:
    booleans, integers, and lists (comma-separated); other parameters stay strings."""
    try:
        import redshift_connector
    except ImportError:
        raise ConfigurationError(
            f"cannot use the warehouse URL {url.render_as_string(hide_password=True)}: its "
            "driver 'redshift_connector' is not installed; install it with: pip install "
            '"arbalest[redshift]>=2"'
        ) from None
    hints = typing.get_type_hints(redshift_connector.connect)
    options: dict[str, Any] = {}
    for name, raw in url.query.items():
        value = raw if isinstance(raw, str) else raw[-1]
        kinds = set(typing.get_args(hints.get(name))) or {hints.get(name)}
        if bool in kinds:
            from arbalest.backends._redshift_iam import truthy

            options[name] = truthy(name, value)
        elif int in kinds:
            try:
                options[name] = int(value)
            except ValueError:
                raise ConfigurationError(
                    f"the warehouse URL's {name}={value!r} is not a whole number"
                ) from None
        elif any(typing.get_origin(kind) is list for kind in kinds):
            options[name] = [part.strip() for part in value.split(",") if part.strip()]
        elif name not in hints and name not in _DIALECT_OPTIONS:
            raise ConfigurationError(
                f"the warehouse URL's {name}= is not an option of redshift_connector.connect "
                "(check its spelling)"
            )
    if (
        options.get("iam")
        and url.username
        and "db_user" not in url.query
        and not options.get("is_serverless")
    ):
        # as with psycopg2, the URL's user is the database user to ask credentials for,
        # unless db_user= names another
        options["db_user"] = url.username
    return options
