"""The original Arbalest's import path for functional schemas."""

from __future__ import annotations

from arbalest.errors import SchemaError as SchemaException
from arbalest.schema.functional import JsonObject, Property

__all__ = ["JsonObject", "Property", "SchemaException"]
