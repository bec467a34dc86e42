"""Warehouses: one backend per SQLAlchemy dialect (DuckDB, PostgreSQL, Redshift)."""

from __future__ import annotations

from arbalest.backends._registry import backend_for, register
from arbalest.backends.base import Backend, Capabilities, CopyJob, LoadResult

__all__ = ["Backend", "Capabilities", "CopyJob", "LoadResult", "backend_for", "register"]
