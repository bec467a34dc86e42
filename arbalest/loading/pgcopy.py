"""Arrow batches in PostgreSQL's binary ``COPY`` format, encoded by the C extension.

The PostgreSQL loader (``backends.postgres``) sends each batch as binary ``COPY`` rows:
``HEADER``, then ``rows(batch, plan)`` for each batch, then ``TRAILER``. ``plan`` says, per
column, how the C module (``_fastlane_copy.c``) writes its values; it is ``None`` where a
column's Arrow type is not one the module knows (the loader then encodes with pgpq, which
gives the same bytes). Each value goes as its Arrow type's PostgreSQL type reads it, with no
type named: the loader first widens each array to its column's width.
"""

from __future__ import annotations

from collections.abc import Collection
from types import ModuleType
from typing import TYPE_CHECKING, Final

from arbalest.loading import fastlane

_fastlane: ModuleType | None
try:
    from arbalest.loading import _fastlane
except ImportError:  # built without a C compiler: pgpq encodes every batch
    _fastlane = None

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["HEADER", "TRAILER", "Plan", "plan_for", "rows"]

#: The start of a binary COPY stream: its signature, no flags, no header extension.
HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
#: The end of one: a row of -1 fields.
TRAILER: Final = b"\xff\xff"

#: Per column: the C module's kind (``P_*`` in ``_fastlane_copy.c``) and a decimal's scale.
Plan = list[tuple[int, int]]

_INT16, _INT32, _INT64, _FLOAT32, _FLOAT64, _BOOL = 1, 2, 3, 4, 5, 6
_TEXT, _LARGE_TEXT, _JSONB, _LARGE_JSONB, _NUMERIC, _TIMESTAMP, _DATE = 7, 8, 9, 10, 11, 12, 13


def plan_for(schema: pa.Schema, jsonb: Collection[str] = ()) -> Plan | None:
    """How the C module writes each of ``schema``'s fields (``jsonb``: text fields whose
    column is JSONB), or ``None`` where it cannot: the extension is not built, it is turned
    off (``ARBALEST_FAST_LANE=0``), or a field's type is not one it knows."""
    import pyarrow as pa

    if _fastlane is None or fastlane.turned_off():
        return None
    fixed = {
        pa.int16(): _INT16,
        pa.int32(): _INT32,
        pa.int64(): _INT64,
        pa.float32(): _FLOAT32,
        pa.float64(): _FLOAT64,
        pa.bool_(): _BOOL,
        pa.date32(): _DATE,
    }
    plan: Plan = []
    for field in schema:
        kind = field.type
        if kind in fixed:
            plan.append((fixed[kind], 0))
        elif kind == pa.string():
            plan.append((_JSONB if field.name in jsonb else _TEXT, 0))
        elif kind == pa.large_string():
            plan.append((_LARGE_JSONB if field.name in jsonb else _LARGE_TEXT, 0))
        elif pa.types.is_decimal128(kind) and 0 <= kind.scale <= 38:
            plan.append((_NUMERIC, kind.scale))
        elif pa.types.is_timestamp(kind) and kind.unit == "us":
            plan.append((_TIMESTAMP, 0))
        else:
            return None
    return plan


def rows(batch: pa.RecordBatch, plan: Plan) -> bytes:
    """``batch``'s rows in binary COPY format (no header, no trailer), written as ``plan``
    says (``plan_for`` its schema)."""
    assert _fastlane is not None
    columns = []
    for (kind, scale), array in zip(plan, batch.columns, strict=True):
        # (an empty array may have no data buffer at all)
        buffers = [b"" if buffer is None else buffer for buffer in array.buffers()]
        validity = buffers[0] if array.null_count else None
        if kind in (_TEXT, _LARGE_TEXT, _JSONB, _LARGE_JSONB):
            columns.append((kind, scale, array.offset, validity, buffers[2], buffers[1]))
        else:
            columns.append((kind, scale, array.offset, validity, buffers[1], None))
    encoded: bytes = _fastlane.copy_rows(batch.num_rows, columns)
    return encoded
