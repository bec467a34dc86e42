"""The schema DSL: typed classes that describe a table and the JSON that fills it."""

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
