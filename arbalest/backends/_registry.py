"""Backends by SQLAlchemy dialect name: runtime registrations, then built-ins (imported
lazily), then the ``arbalest.backends`` entry-point group."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Final

import sqlalchemy as sa

from arbalest.backends.base import Backend
from arbalest.errors import UnknownBackendError

__all__ = ["backend_for", "register"]

_BUILTIN: Final = {
    "duckdb": "arbalest.backends.duckdb:DuckDBBackend",
    "postgresql": "arbalest.backends.postgres:PostgresBackend",
    "redshift": "arbalest.backends.redshift:RedshiftBackend",
}
#: Backends for one driver of a dialect (``dialect+driver``), before the dialect's own.
_BY_DRIVER: Final = {"redshift+data": "arbalest.backends.redshift_data:RedshiftDataBackend"}
_REGISTERED: dict[str, type[Backend]] = {}


def register(dialect: str, backend: type[Backend]) -> None:
    """Serve the SQLAlchemy dialect ``dialect`` with ``backend`` (overrides built-ins)."""
    _REGISTERED[dialect] = backend


def _load(target: str) -> type[Backend]:
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{target} is not an Arbalest backend")
    return cls


def backend_for(engine: sa.Engine) -> Backend:
    """The backend for ``engine``'s dialect.

    Raises:
        UnknownBackendError: No backend serves the dialect (the message lists those known).
    """
    dialect = engine.dialect.name
    if dialect in _REGISTERED:
        return _REGISTERED[dialect](engine)
    driver = f"{dialect}+{engine.dialect.driver}"
    if driver in _BY_DRIVER:
        return _load(_BY_DRIVER[driver])(engine)
    if dialect in _BUILTIN:
        return _load(_BUILTIN[dialect])(engine)
    for entry in entry_points(group="arbalest.backends"):
        if entry.name == dialect:
            return _load(entry.value)(engine)
    known = {*_REGISTERED, *_BUILTIN, *(e.name for e in entry_points(group="arbalest.backends"))}
    raise UnknownBackendError(dialect, sorted(known))
