"""The drift report: JSON keys the records have that no column reads, and columns that no
record filled.

For the lines the fast lane takes (``fastlane``), the C pass numbers each distinct set of
keys no column reads, and the transform counts rows per number. For the lines it leaves, the
query lists, per record that may hold such a key, the keys of every object the schema reads
into (one ``json_keys`` call; ``ConversionSQL._keys_sql`` says which records skip it, and
why that is exact) and counts the records of each shape per batch (``GROUP BY`` the key
lists). Only those few shapes are expanded here, so the cost in Python does not grow with
the records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from arbalest.schema._build import ColumnSpec
from arbalest.schema.jsonpath import JSONPath, display_path

__all__ = [
    "Drift",
    "KeyShape",
    "NameTree",
    "ReadObjects",
    "UnmappedPath",
    "drift_report",
    "merge_shapes",
    "percent",
    "read_objects",
    "shape_of",
]

#: The keys of each object the schema reads into, in ``ReadObjects`` order (``None``: the
#: record has no value there; ``()``: the value is not an object, or an empty one).
KeyShape: TypeAlias = tuple[tuple[str, ...] | None, ...]


@dataclass(frozen=True)
class UnmappedPath:
    """A JSON key path seen in the records that no column reads.

    Attributes:
        path: The path as people write it (``child.colour``; a key with a dot, a bracket, a
            quote or a space in brackets: ``['first name']``). A key whose value is an object
            no column reads into is one path, not one per key inside it.
        records: The records loaded that had the key (whatever its value, ``null`` too).
        share: ``records`` over the records loaded, from 0 to 1.
    """

    path: str
    records: int
    share: float


@dataclass(frozen=True)
class Drift:
    """How the records and the schema differ, for the records a step loaded.

    Attributes:
        unmapped: The key paths no column reads, most frequent first.
        unfilled: The columns NULL in every row loaded (none when no row was loaded).
    """

    unmapped: tuple[UnmappedPath, ...] = ()
    unfilled: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[dict[str, object]] | list[str]]:
        """Plain JSON values: ``{"unmapped": [{"path", "records", "share"}], "unfilled":
        [column, ...]}``."""
        return {
            "unmapped": [
                {"path": u.path, "records": u.records, "share": u.share} for u in self.unmapped
            ],
            "unfilled": list(self.unfilled),
        }

    def describe(self) -> list[str]:
        """One line per finding: ``JSON key 'colour' is read by no column (25% of
        records)``, ``column 'code' is NULL in every row``."""
        lines = [
            f"JSON key {u.path!r} is read by no column ({percent(u.share)} of records)"
            for u in self.unmapped
        ]
        lines += [f"column {name!r} is NULL in every row" for name in self.unfilled]
        return lines


def percent(share: float) -> str:
    """A share as people read it: ``50%``, ``100%``, ``0.25%`` (below 10%, two significant
    figures at most)."""
    if share >= 1:
        return "100%"
    if share >= 0.1:
        return f"{share * 100:.0f}%"
    return f"{share * 100:.2g}%"


@dataclass(frozen=True)
class ReadObjects:
    """The objects a schema reads into (the record itself first) and, for each, the keys
    its columns read there."""

    paths: tuple[JSONPath, ...]
    keys: tuple[frozenset[str], ...]


def read_objects(specs: Sequence[ColumnSpec]) -> ReadObjects:
    """The objects ``specs`` read into: for ``child.name`` and ``child.depth.level``, the
    record, ``child`` and ``child.depth``."""
    keys: dict[JSONPath, set[str]] = {(): set()}
    for spec in specs:
        for k, step in enumerate(spec.path):
            if isinstance(step, str):
                keys.setdefault(spec.path[:k], set()).add(step)
    return ReadObjects(tuple(keys), tuple(frozenset(v) for v in keys.values()))


#: A tree of names: each column or struct field of a Parquet or CSV object, with its own
#: fields (or ``None``).
NameTree = dict[str, "NameTree | None"]


def shape_of(objects: ReadObjects, tree: NameTree) -> KeyShape:
    """The key shape of every record of an object whose columns are ``tree``."""
    shape: list[tuple[str, ...] | None] = []
    for path in objects.paths:
        node: NameTree | None = tree
        for step in path:
            node = node.get(str(step)) if node is not None and isinstance(step, str) else None
        shape.append(None if node is None else tuple(node))
    return tuple(shape)


def drift_report(
    objects: ReadObjects,
    shapes: Mapping[KeyShape, int],
    filled: Mapping[str, int],
    records: int,
) -> Drift:
    """The drift of ``records`` loaded records of the given shapes (records per shape)."""
    seen: Counter[JSONPath] = Counter()
    for shape, count in shapes.items():
        for parent, read, keys in zip(objects.paths, objects.keys, shape, strict=True):
            # a key written twice in one object is one key of that record
            for key in set(keys or ()) - read:
                seen[(*parent, key)] += count
    found = sorted((-count, display_path(path)) for path, count in seen.items())
    unmapped = tuple(
        UnmappedPath(path, -minus, -minus / records if records else 0.0) for minus, path in found
    )
    unfilled = tuple(name for name, count in filled.items() if count == 0) if records else ()
    return Drift(unmapped, unfilled)


def merge_shapes(counts: Iterable[Mapping[KeyShape, int]]) -> Counter[KeyShape]:
    """The records per shape of several batches or loads together."""
    total: Counter[KeyShape] = Counter()
    for c in counts:
        total.update(c)
    return total
