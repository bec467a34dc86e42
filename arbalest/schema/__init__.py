"""The schema DSL: typed classes that describe a table and the JSON that fills it.

- ``base``: ``Schema``, ``Nested``, the shared ``metadata``, and the metaclass that builds
  each class's table, JSONPaths and column specs once, when the class is defined.
- ``fields``: the field types (``String``, ``Integer``, ...), each with its SQLAlchemy type
  and its conversion rule.
- ``_build``: the pure functions the metaclass calls (column names, checks, the ``Table``).
- ``jsonpath``: Redshift JSONPaths parsed, written, and translated for DuckDB.
- ``functional``: the original's ``JsonObject`` and ``Property``.
- ``quoting``: every name a warehouse reserves is quoted on all three (installed on import).

Nothing here knows of stores, warehouses or pipelines.
"""

from __future__ import annotations

from arbalest.schema._build import ColumnSpec, SchemaWarning
from arbalest.schema.base import Nested, Schema, metadata
from arbalest.schema.fields import (
    BigInt,
    Boolean,
    Char,
    Date,
    Decimal,
    Double,
    Field,
    Integer,
    Real,
    SmallInt,
    String,
    Super,
    Timestamp,
    TimestampTZ,
)
from arbalest.schema.functional import JsonObject, Property
from arbalest.schema.quoting import install as _quote_keywords

# Every engine and dialect quotes the names any warehouse reserves (see schema.quoting).
_quote_keywords()

__all__ = [
    "BigInt",
    "Boolean",
    "Char",
    "ColumnSpec",
    "Date",
    "Decimal",
    "Double",
    "Field",
    "Integer",
    "JsonObject",
    "Nested",
    "Property",
    "Real",
    "Schema",
    "SchemaWarning",
    "SmallInt",
    "String",
    "Super",
    "Timestamp",
    "TimestampTZ",
    "metadata",
]
