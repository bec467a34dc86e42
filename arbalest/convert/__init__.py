"""Redshift COPY's conversion rules, in one place and in two forms that agree.

Every value Arbalest converts follows exactly one ``Rule`` (one per column type):

* ``Rule.python(text, options)`` converts one value in Python. ``Schema.from_json`` uses it,
  and the tests use it as the reference for the SQL form.
* ``Rule.sql_value(s, options)`` and ``Rule.sql_error(s, v, options)`` are DuckDB SQL
  expressions that convert a whole column of values at once; the transform
  (``arbalest.loading.transform``) runs them in a private in-memory DuckDB for DuckDB and
  PostgreSQL alike (Redshift's ``COPY`` applies its own rules, which these reproduce), so
  per-value work is vectorised.

The fast lanes (``loading.fastlane`` in C, ``loading.csv_lane``, ``loading.parquet_lane``)
convert a subset of values without either form, only where their answer is this module's.

Both forms take a value's *text*: what Redshift's JSONPath extraction yields, and what
DuckDB's ``json_extract_string`` gives: a JSON string's characters, a number or ``true`` /
``false`` as written by the JSON writer, an object or array as compact JSON text, and
``None`` / NULL for a JSON null or a missing key. ``json_text()`` turns a decoded Python
value into that text. ``Super`` columns take the JSON value itself instead.

The grammar each rule accepts is written as regular expressions shared by both forms (RE2 in
DuckDB, ``re`` with ``re.ASCII`` in Python), so that the two cannot drift: a value either
matches the grammar, and both forms convert it the same way, or it is rejected with the same
code. The choices made where Redshift's guide is loose are listed in ``docs/loading.md``.

The package, the shared grammar first, then one module per rule family, each rule with its
Python and SQL forms side by side:

* ``_base``: error codes and reasons, ``ConvertOptions``, ``sql_literal``, the ``Rule``
  base class, the number grammar shared by several rules, and ``convert_value``.
* ``_json``: JSON as the loaders read and write it (``json_loads``, ``json_dumps``,
  ``json_text``, ``JSONNumber``, ``DuplicateKeys``, ``format_double``).
* ``numbers``: SMALLINT, INTEGER, BIGINT, DECIMAL, REAL, DOUBLE and BOOLEAN.
* ``text``: VARCHAR and CHAR, with truncation that never splits a UTF-8 character.
* ``time``: the TIMEFORMAT grammar, then DATE, TIMESTAMP and TIMESTAMPTZ.
* ``super``: SUPER, a JSON value kept as JSON.

Every name is imported from ``arbalest.convert`` itself, not from these modules.
"""

from __future__ import annotations

from arbalest.convert._base import (
    BAD_BOOLEAN,
    BAD_CHARACTER,
    BAD_DATE,
    BAD_DIGIT,
    BAD_FLOAT,
    BAD_RECORD,
    BAD_SUPER,
    BAD_TIMESTAMP,
    DEFAULT_OPTIONS,
    INT_OVERFLOW,
    MAX_RECORD_BYTES,
    NOT_NULL,
    OUT_OF_RANGE,
    ConvertOptions,
    Rejected,
    Rule,
    convert_value,
    reason_for,
    sql_literal,
)
from arbalest.convert._json import (
    DuplicateKeys,
    JSONNumber,
    format_double,
    json_dumps,
    json_loads,
    json_text,
)
from arbalest.convert.numbers import (
    BOOLEAN_FALSE,
    BOOLEAN_TRUE,
    BooleanRule,
    DecimalRule,
    FloatRule,
    IntegerRule,
)
from arbalest.convert.super import SuperRule
from arbalest.convert.text import CharRule, VarcharRule
from arbalest.convert.time import DateRule, TimestampRule

__all__ = [
    "BAD_BOOLEAN",
    "BAD_CHARACTER",
    "BAD_DATE",
    "BAD_DIGIT",
    "BAD_FLOAT",
    "BAD_RECORD",
    "BAD_SUPER",
    "BAD_TIMESTAMP",
    "BOOLEAN_FALSE",
    "BOOLEAN_TRUE",
    "DEFAULT_OPTIONS",
    "INT_OVERFLOW",
    "MAX_RECORD_BYTES",
    "NOT_NULL",
    "OUT_OF_RANGE",
    "BooleanRule",
    "CharRule",
    "ConvertOptions",
    "DateRule",
    "DecimalRule",
    "DuplicateKeys",
    "FloatRule",
    "IntegerRule",
    "JSONNumber",
    "Rejected",
    "Rule",
    "SuperRule",
    "TimestampRule",
    "VarcharRule",
    "convert_value",
    "format_double",
    "json_dumps",
    "json_loads",
    "json_text",
    "reason_for",
    "sql_literal",
]
