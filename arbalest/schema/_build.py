"""Pure functions that turn a schema class into column specs, a Table and JSONPaths.

No class magic lives here: the metaclass (``base.SchemaMeta``) calls these once, while the
``class`` statement runs, and they are easy to test on their own.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa

from arbalest import convert
from arbalest.errors import SchemaError
from arbalest.schema.fields import Field
from arbalest.schema.jsonpath import JSONPath, format_path

__all__ = [
    "MAX_IDENTIFIER_BYTES",
    "RESERVED_NAMES",
    "ColumnSpec",
    "SchemaWarning",
    "build_table",
    "check_fields",
    "check_specs",
    "column_name",
    "jsonpaths",
    "members",
    "snake_case",
    "walk",
]

#: Redshift's limit on identifiers, in bytes of UTF-8.
MAX_IDENTIFIER_BYTES: Final = 127

#: Plain attribute names that schemas claim for themselves (a field cannot take them).
RESERVED_NAMES: Final = frozenset({"metadata", "from_json", "to_json", "row"})


class SchemaWarning(UserWarning):
    """A schema was accepted with a change, such as a column name cut to 127 bytes."""


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a schema: where its value comes from and how it converts.

    Attributes:
        attrs: Attribute names from the schema down to the field (``("child", "level")``).
        path: The JSONPath steps that pick the value.
        name: The column name (lowercase, at most 127 bytes).
        field: The field descriptor.
    """

    attrs: tuple[str, ...]
    path: JSONPath
    name: str
    field: Field[Any]

    @property
    def rule(self) -> convert.Rule:
        """The conversion rule of the column's type."""
        return self.field.rule

    @property
    def nullable(self) -> bool:
        """Whether NULL is allowed (a NULL otherwise rejects the record)."""
        return self.field.nullable

    @property
    def jsonpath(self) -> str:
        """The JSONPath in bracket notation."""
        return format_path(self.path)

    @property
    def qualname(self) -> str:
        """The dotted attribute path, for messages: ``child.depth.level``."""
        return ".".join(self.attrs)


def snake_case(name: str) -> str:
    """``UserEvent`` -> ``user_event``; ``HTTPLog`` -> ``http_log``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


def _is_nested(value: object) -> bool:
    return isinstance(value, type) and getattr(value, "__is_nested__", False) is True


def members(cls: type) -> dict[str, Any]:
    """Fields and nested classes of ``cls`` and its bases, in definition order.

    A name redefined in a subclass keeps the position it had in the base.
    """
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if attr.startswith("__"):
                continue
            if isinstance(value, Field) or _is_nested(value):
                found[attr] = value
            elif attr in found:
                del found[attr]  # a subclass replaced the field with something else
    return found


def walk(
    cls: type, attrs: tuple[str, ...] = (), keys: JSONPath = ()
) -> Iterator[tuple[tuple[str, ...], JSONPath, Field[Any]]]:
    """Yield ``(attribute path, JSON path, field)`` for every field, depth first."""
    for attr, value in members(cls).items():
        if isinstance(value, Field):
            key = value.key if value.key is not None else attr
            path = value.path if value.path is not None else (*keys, key)
            yield (*attrs, attr), path, value
        else:
            yield from walk(value, (*attrs, attr), (*keys, value.__key__ or attr))


def column_name(attrs: tuple[str, ...], field: Field[Any], owner: str) -> str:
    """The column name of a field: ``name=`` or the attribute names joined by ``_``.

    Lowercased, as Redshift stores names; cut to 127 bytes with a ``SchemaWarning``.
    """
    name = (field.name if field.name is not None else "_".join(attrs)).lower()
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_IDENTIFIER_BYTES:
        short = encoded[:MAX_IDENTIFIER_BYTES].decode("utf-8", errors="ignore")
        warnings.warn(
            f"{owner}.{'.'.join(attrs)}: column name {name!r} is longer than "
            f"{MAX_IDENTIFIER_BYTES} bytes (Redshift's limit); using {short!r}",
            SchemaWarning,
            stacklevel=5,
        )
        name = short
    return name


def check_fields(owner: str, found: list[tuple[tuple[str, ...], JSONPath, Field[Any]]]) -> None:
    """Raise ``SchemaError`` for the first field given a wrong argument, naming the class,
    the field and the argument: ``Event.count: String() argument length='forty': ...``."""
    for attrs, _, field in found:
        field.check(f"{owner}.{'.'.join(attrs)}")


def check_specs(owner: str, specs: list[ColumnSpec]) -> None:
    """Raise ``SchemaError`` for reserved attribute names or duplicate columns."""
    for spec in specs:
        if spec.attrs[0] in RESERVED_NAMES and len(spec.attrs) == 1:
            raise SchemaError(
                f"{owner}.{spec.attrs[0]}: the attribute name {spec.attrs[0]!r} is taken "
                f"by schemas; rename the attribute and pass key={spec.attrs[0]!r}"
            )
    if not specs:
        raise SchemaError(f"{owner} has no fields; declare at least one column")
    seen: dict[str, ColumnSpec] = {}
    for spec in specs:
        other = seen.get(spec.name)
        if other is not None:
            raise SchemaError(
                f"{owner}: fields {other.qualname!r} and {spec.qualname!r} both make the "
                f"column {spec.name!r} (names are compared lowercase); give one of them "
                "name=..."
            )
        seen[spec.name] = spec


def build_table(
    tablename: str,
    metadata: sa.MetaData,
    specs: list[ColumnSpec],
    table_args: Any,
    owner: str,
) -> sa.Table:
    """Create the ``sa.Table`` of a schema in ``metadata``."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if isinstance(table_args, Mapping):
        kwargs = dict(table_args)
    elif isinstance(table_args, tuple):
        if table_args and isinstance(table_args[-1], Mapping):
            args, kwargs = table_args[:-1], dict(table_args[-1])
        else:
            args = table_args
    elif table_args is not None:
        raise SchemaError(f"{owner}.__table_args__ must be a dict or a tuple")
    schema = kwargs.get("schema")
    key = f"{schema}.{tablename}" if schema else tablename
    if key in metadata.tables:
        if not kwargs.pop("extend_existing", False):
            raise SchemaError(
                f"{owner}: the table {key!r} is already defined by another schema in the "
                "same MetaData; choose another __tablename__, give the schema its own "
                "MetaData, or set __table_args__ = {'extend_existing': True} to redefine it"
            )
        metadata.remove(metadata.tables[key])
    kwargs.pop("extend_existing", None)
    columns = [
        sa.Column(
            spec.name,
            spec.field.sa_type(),
            nullable=spec.nullable,
            primary_key=spec.field.primary_key,
            autoincrement=False,
            doc=spec.field.doc,
            **spec.field.column_kwargs(),
        )
        for spec in specs
    ]
    try:
        return sa.Table(tablename, metadata, *columns, *args, **kwargs)
    except (TypeError, sa.exc.ArgumentError) as exc:
        raise SchemaError(f"{owner}.__table_args__: {exc}") from exc


def jsonpaths(specs: list[ColumnSpec]) -> dict[str, list[str]]:
    """The JSONPaths document: ``{"jsonpaths": [...]}``, one path per column, in order."""
    return {"jsonpaths": [spec.jsonpath for spec in specs]}
