"""Writing a schema class from the data (``arbalest.infer``, ``arbalest infer``), and
reporting how the data drifted from the classes (``arbalest.sample_drift``, ``arbalest
drift``).

A sample of a source's records is read as the loaders read them (``sample``), each JSON path
gets the narrowest field type whose conversion rule loads every value seen there
(``types``), and the class is written as formatted Python (``render``). For the drift
report, the same sample of each step's source goes through the loaders' transform
(``drift``). Read-only: both list and read objects, and write nothing.
"""

from __future__ import annotations

import keyword
import os

from arbalest.errors import ConfigurationError
from arbalest.inference.drift import DriftSample, StepDrift, sample_drift
from arbalest.inference.render import IMPORTED, class_name, loads_something, members, render
from arbalest.inference.sample import DEFAULT_SAMPLE, MAX_OBJECTS, read_sample
from arbalest.inference.types import Node
from arbalest.stores import ObjectStore, folder_prefix, open_store

__all__ = ["DEFAULT_SAMPLE", "MAX_OBJECTS", "DriftSample", "StepDrift", "infer", "sample_drift"]


def infer(
    store: str | os.PathLike[str] | ObjectStore,
    source: str = "",
    *,
    sample: int = DEFAULT_SAMPLE,
    name: str | None = None,
) -> str:
    """Write a ``Schema`` class for the records under ``source``, as Python source text.

    Up to ``sample`` records are read from up to 10 objects spread over the source's
    listing (first and last included). Each key becomes a field whose type loads every
    value of the sample (the loaders' own conversion rules decide), each JSON object a
    nested class, each key that is not a Python name gets ``key=``; a comment on each field
    says how many records had no value there. No primary key is chosen. Loading the sample
    with the class rejects nothing (only records that are not JSON, which any class
    rejects; the header says how many).

    Example:
        ```python
        import arbalest

        print(arbalest.infer("./lake", "events/", sample=500, name="Event"))
        ```

    Args:
        store: A folder, an ``s3://bucket/prefix`` URL, or a store object.
        source: A prefix in the store, read as a folder (``""``: the whole store).
        sample: How many records to read, at most.
        name: The class name (default: from the source's last segment, ``events/`` ->
            ``Events``); the table name is its snake_case.

    Returns:
        The text of a Python module: one import and the class.

    Raises:
        ConfigurationError: A bad argument, or no objects (or no records) under ``source``.
        StoreError: The objects cannot be listed or read.
    """
    if name is not None and (
        not name.isidentifier() or keyword.iskeyword(name) or name in IMPORTED
    ):
        raise ConfigurationError(
            f"name={name!r} is not a class name a schema can have: give a Python "
            "identifier that is not a keyword nor one of the field types"
        )
    opened = open_store(store)
    found = read_sample(opened, source, sample)
    if not found.records:
        raise ConfigurationError(
            f"no JSON records in {len(found.objects)} object(s) under "
            f"{folder_prefix(source) or opened.url!r}: nothing to infer from"
        )
    root = Node()
    for record in found.records:
        root.add(record)
    fields = members(root)
    if not loads_something(fields):
        raise ConfigurationError(
            f"the {len(found.records)} records read under "
            f"{folder_prefix(source) or opened.url!r} have no keys that a "
            "field type loads: nothing to infer from"
        )
    where = opened.url.rstrip("/") + "/" + folder_prefix(source)
    last = [s for s in where.replace("\\", "/").split("/") if s and s != "file:"]
    count = len(found.records)
    header = (
        f"Written by arbalest infer from {count:,} record{'s' * (count != 1)} of "
        f"{len(found.objects):,} object{'s' * (len(found.objects) != 1)} "
        f"(of {found.listed:,}) under {where}. The comment on each field is the share of "
        "those records with no value there (missing or null). Check the types and lengths "
        "against what the data may hold beyond the sample."
    )
    if found.malformed:
        header += (
            f" {found.malformed:,} record(s) of the sample are not JSON: every load rejects "
            "them, whatever the class."
        )
    return render(
        name or class_name(last[-1] if last else "record"),
        fields,
        records=count,
        header=header,
    )
