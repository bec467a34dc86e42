"""Arbalest: JSON, Parquet and CSV objects in S3 or a folder, queryable with SQL in Redshift,
PostgreSQL or DuckDB.

The public names live here; everything else is private to the package. This module only
re-exports them: code inside the package imports from the module that defines a name.

Packages, from the edges down (docs/architecture.md has the layers and what each may import):
``cli`` (the ``arbalest`` command), ``contrib`` (Luigi, Dagster and Airflow), ``redshift``
(the original import paths), ``compat`` (the original ``S3CopyPipeline``), ``orchestration``
(``SortedSources``, ``TimeSeriesImport``), ``inference`` (a schema class from the data),
``pipeline`` (the builder, the runner, results), ``backends`` (one per warehouse),
``journal`` (what each table holds, and cursors), ``loading`` (objects to converted rows),
``schema`` (schema classes and field types), ``stores`` (folders and S3), ``convert`` (COPY's
conversion rules), ``errors``, ``configuration`` (``env``) and ``_typing`` (type aliases).
"""

from __future__ import annotations

from arbalest.backends._redshift_data import RedshiftDataAPI
from arbalest.errors import (
    ArbalestError,
    ConcurrentRunError,
    ConfigurationError,
    CopyError,
    LoadError,
    MissingDependencyError,
    ObjectNotFoundError,
    PipelineError,
    SchemaError,
    SQLStepError,
    StoreError,
    StoreUnavailableError,
    TableMismatchError,
    TooManyRejectsError,
    UnknownBackendError,
    WarehouseAccessError,
    WarehouseUnavailableError,
)
from arbalest.inference import DriftSample, StepDrift, infer, sample_drift
from arbalest.orchestration import SortedSources, TimeSeriesImport
from arbalest.pipeline import (
    CsvOptions,
    Drift,
    Pipeline,
    Plan,
    PlanStep,
    Reject,
    RunResult,
    StepResult,
    UnmappedPath,
)
from arbalest.schema import (
    BigInt,
    Boolean,
    Char,
    Date,
    Decimal,
    Double,
    Field,
    Integer,
    JsonObject,
    Nested,
    Property,
    Real,
    Schema,
    SchemaWarning,
    SmallInt,
    String,
    Super,
    Timestamp,
    TimestampTZ,
    metadata,
)
from arbalest.stores import Credentials, LocalStore

# The one place the version is written (pyproject.toml reads it from here). 2.x: the
# package index has the original Arbalest as 1.x, whose API this release keeps.
__version__ = "2.0.0"

__all__ = [
    "ArbalestError",
    "BigInt",
    "Boolean",
    "Char",
    "ConcurrentRunError",
    "ConfigurationError",
    "CopyError",
    "Credentials",
    "CsvOptions",
    "Date",
    "Decimal",
    "Double",
    "Drift",
    "DriftSample",
    "Field",
    "Integer",
    "JsonObject",
    "LoadError",
    "LocalStore",
    "MissingDependencyError",
    "Nested",
    "ObjectNotFoundError",
    "Pipeline",
    "PipelineError",
    "Plan",
    "PlanStep",
    "Property",
    "Real",
    "RedshiftDataAPI",
    "Reject",
    "RunResult",
    "SQLStepError",
    "Schema",
    "SchemaError",
    "SchemaWarning",
    "SmallInt",
    "SortedSources",
    "StepDrift",
    "StepResult",
    "StoreError",
    "StoreUnavailableError",
    "String",
    "Super",
    "TableMismatchError",
    "TimeSeriesImport",
    "Timestamp",
    "TimestampTZ",
    "TooManyRejectsError",
    "UnknownBackendError",
    "UnmappedPath",
    "WarehouseAccessError",
    "WarehouseUnavailableError",
    "__version__",
    "infer",
    "metadata",
    "sample_drift",
]
