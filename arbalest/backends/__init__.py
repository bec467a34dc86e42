"""Warehouses: one backend per SQLAlchemy dialect (DuckDB, PostgreSQL, Redshift).

- ``base``: the ``Backend`` interface, ``Capabilities``, ``CopyJob``, ``LoadResult``, and
  ``TransformBackend``: the load loop of the warehouses Arbalest feeds itself.
- ``duckdb``, ``postgres``: those two, each writing the transform's batches its own way.
- ``_stream``: a step's batches as one Arrow stream, written by one statement (DuckDB's
  ``INSERT``, which then appends with all its threads).
- ``redshift``: Redshift, whose ``COPY`` reads the objects from S3 itself.
- ``redshift_data``: Redshift through the Data API (``redshift+data://``): a step's objects
  staged in a Data API session, then moved with their journal rows in one final
  ``BatchExecuteStatement``; ``_redshift_session``: that staging and final batch, for JSON,
  Parquet and CSV objects and a time series' partitions.
- ``_redshift_data``: ``RedshiftDataAPI``, a warehouse reached through the Data API (and its
  ``redshift+data://`` URL form); ``_redshift_driver``: the Data API as a DBAPI driver;
  ``_redshift_dialect``: the SQLAlchemy dialect of ``redshift+data://`` URLs.
- ``redshift_tabular``: Parquet and CSV on Redshift: a load table shaped like each object,
  ``COPY`` into it by position, then the fields inserted by name.
- ``_redshift_copy``: the ``COPY`` statement Redshift runs, its manifest, and how each driver
  sends it.
- ``_redshift_views``: reading back a ``COPY``'s rows and load errors (``STL_`` or ``SYS_``
  views), what a warehouse records them in, and the tally of a step's loads against its
  ``max_errors``.
- ``_redshift_lock``: the run locks on Redshift (a ``LOCK`` on an empty table per target, and
  on ``_arbalest_lock`` while tables are created), with a bounded wait.
- ``_redshift_tables``: the temporary tables a ``COPY`` fills before the target, and the
  statements that settle dates, number each object's rows and refuse an ambiguous merge.
- ``_redshift_iam``: IAM sign-in for Redshift: temporary credentials for psycopg2 URLs with
  ``iam=true``, and the options of ``redshift+redshift_connector://`` URLs.
- ``duplicates``: which record repeats a primary key, after a load refused for it.
- ``_registry``: the backend for a dialect: registered, built in, or an entry point.

A backend loads in the transaction the runner opened; it never commits, nor writes the
journal.
"""

from __future__ import annotations

from sqlalchemy.dialects import registry as _dialects

from arbalest.backends._registry import backend_for, register
from arbalest.backends.base import Backend, Capabilities, CopyJob, LoadResult

# redshift+data:// URLs: the Data API's dialect, imported when first used
_dialects.register("redshift.data", "arbalest.backends._redshift_dialect", "RedshiftDataDialect")

__all__ = ["Backend", "Capabilities", "CopyJob", "LoadResult", "backend_for", "register"]
