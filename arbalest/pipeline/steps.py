"""The steps of a pipeline: frozen descriptions, checked when they are built."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast, get_args, runtime_checkable

import sqlalchemy as sa

from arbalest._typing import CopyMode
from arbalest.convert import ConvertOptions
from arbalest.errors import ConfigurationError
from arbalest.loading.formats import FORMATS, CsvOptions, csv_options
from arbalest.loading.reader import COMPRESSIONS
from arbalest.loading.tabular import check_fields
from arbalest.schema.base import Schema
from arbalest.stores.base import ObjectStore, folder_prefix

__all__ = [
    "MODES",
    "CopyStep",
    "PartitionSource",
    "SQLStep",
    "Statement",
    "Step",
    "TimeSeriesStep",
    "copy_step",
    "series_start",
    "sql_step",
    "time_series_step",
]

MODES: Final[tuple[str, ...]] = get_args(CopyMode)

Statement = str | tuple[str, Any] | sa.Executable


@dataclass(frozen=True)
class CopyStep:
    """Load the objects under ``source`` into ``schema``'s table by ``mode``."""

    schema: type[Schema]
    source: str
    mode: CopyMode
    max_errors: int = 0
    truncate_columns: bool = False
    compression: str | None = None
    time_format: str = "auto"
    evolve: bool = False
    format: str | None = None  # None: by the objects' suffixes
    csv_options: CsvOptions = field(default_factory=CsvOptions)

    @property
    def table(self) -> sa.Table:
        return self.schema.__table__

    @property
    def target(self) -> str:
        """The target table's name (with its schema, if any)."""
        table = self.table
        return f"{table.schema}.{table.name}" if table.schema else table.name

    @property
    def label(self) -> str:
        return f"copy {self.target} ({self.mode})"

    @property
    def options(self) -> ConvertOptions:
        return ConvertOptions(self.truncate_columns, self.time_format)


@dataclass(frozen=True)
class SQLStep:
    """Statements run in one transaction, with bound parameters."""

    statements: tuple[tuple[sa.Executable, Mapping[str, Any]], ...]
    label: str = field(default="sql")

    @property
    def target(self) -> None:
        return None


@runtime_checkable
class PartitionSource(Protocol):
    """Partitions of a time series, in their natural order, with a cursor of progress.

    ``arbalest.SortedSources`` is one.
    """

    @property
    def store(self) -> ObjectStore: ...

    @property
    def cursor(self) -> str:
        """The name of the cursor that keeps the last partition loaded."""
        ...

    def partitions(self) -> list[str]:
        """The partitions (prefixes in the store), in order."""
        ...

    def sort_key(self, partition: str) -> Any:
        """A key that orders partitions naturally."""
        ...

    def value_of(self, partition: str) -> Any:
        """Where the partition starts in the series (a date, a datetime or a number).

        A date or a naive datetime is read as UTC (see ``series_start``).
        """
        ...


@dataclass(frozen=True)
class TimeSeriesStep:
    """Load new partitions into staging, then replace the target's rows from the first one."""

    copy: CopyStep  # the schema and COPY options; its source is unused
    sources: PartitionSource
    series_column: str
    since: Any = None

    @property
    def table(self) -> sa.Table:
        return self.copy.table

    @property
    def target(self) -> str:
        return self.copy.target

    @property
    def label(self) -> str:
        return f"time series {self.target}"

    def replaced_from(self, first_new: str) -> sa.ColumnElement[bool]:
        """The rows a run replaces: the series column from ``since``, or else from where the
        first new partition starts, as a bound parameter of the column's own kind."""
        column = self.table.c[self.series_column]
        if self.since is not None:
            start = series_start(column, self.since, f"since={self.since!r}")
        else:
            value = self.sources.value_of(first_new)
            what = f"the partition {first_new!r} (which starts at {value!r})"
            start = series_start(column, value, what)
        kind = (
            sa.DateTime(timezone=start.tzinfo is not None)
            if isinstance(start, dt.datetime)
            else sa.Date()
            if isinstance(start, dt.date)
            else column.type
        )
        return column >= sa.bindparam("series_start", start, type_=kind)


def _utc(value: object) -> dt.datetime | None:
    """The instant ``value`` names, as an aware UTC datetime; ``None`` when it is no time.

    Partitions are named in UTC, as object stores name them, so a date is its midnight in
    UTC and a naive datetime (or an ISO text without an offset) is UTC wall time. Nothing
    here reads the machine's zone or a warehouse session's.
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None


def series_start(column: sa.ColumnElement[Any], value: object, what: str) -> object:
    """Where a time series' DELETE starts, as a value that means the same rows in every
    time zone: compared with ``column`` as it is, never through a session's zone.

    For a ``TimestampTZ`` column the bound is the aware UTC instant; for a ``Timestamp``
    column (UTC wall time, as the loaders store it) the naive UTC wall time; for a ``Date``
    column a date, or the naive UTC wall time of a datetime. Dates, naive datetimes and ISO
    texts without an offset are UTC; aware datetimes and texts with an offset mean their
    instant. Other columns take ``value`` as it is.

    Raises:
        ConfigurationError: If the column holds times and ``value`` names none.
    """
    kind = column.type
    if not isinstance(kind, sa.DateTime | sa.Date):
        return value
    instant = _utc(value)
    if instant is None:
        shown = (
            "DATE"
            if not isinstance(kind, sa.DateTime)
            else "TIMESTAMPTZ"
            if kind.timezone
            else "TIMESTAMP"
        )
        raise ConfigurationError(
            f"{what} is not a date or a time, so it cannot bound the {shown} "
            f"column {column.name}; a bound of it is a datetime.date, a datetime.datetime "
            "(naive: UTC) or an ISO 8601 text"
        )
    if isinstance(kind, sa.DateTime):
        return instant if kind.timezone else instant.replace(tzinfo=None)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    return instant.replace(tzinfo=None)


def time_series_step(
    schema: object,
    sources: object,
    *,
    series_column: object,
    since: object = None,
    **options: Any,
) -> TimeSeriesStep:
    """Build a time-series step, checking every argument now (``ConfigurationError``)."""
    copy = copy_step(schema, "", mode="incremental", **options)
    if not isinstance(sources, PartitionSource):
        raise ConfigurationError(
            f"sources= is a SortedSources (partitions with a cursor), not {sources!r}"
        )
    if not isinstance(series_column, str) or series_column not in copy.table.c:
        raise ConfigurationError(
            f"series_column={series_column!r} is not a column of {copy.target}; "
            f"its columns: {', '.join(copy.table.c.keys())}"
        )
    if since is not None:  # a since that names no time fails now, not mid-run
        series_start(copy.table.c[series_column], since, f"since={since!r}")
    return TimeSeriesStep(copy, sources, series_column, since)


def copy_step(
    schema: object,
    source: object,
    *,
    mode: object = "incremental",
    max_errors: object = 0,
    truncate_columns: object = False,
    compression: object = None,
    time_format: object = "auto",
    evolve: object = False,
    format: object = None,
    csv_options: object = None,
) -> CopyStep:
    """Build a copy step, checking every argument now (``ConfigurationError``)."""
    if not (isinstance(schema, type) and issubclass(schema, Schema)):
        raise ConfigurationError(f"copy() takes a Schema class, not {schema!r}")
    if "__table__" not in schema.__dict__:
        raise ConfigurationError(f"{schema.__qualname__} is abstract: it has no table to load")
    if not isinstance(source, str):
        raise ConfigurationError(f"source= is a prefix in the store (a str), not {source!r}")
    if mode not in MODES:
        raise ConfigurationError(f"mode={mode!r} is not one of {', '.join(MODES)}")
    if isinstance(max_errors, bool) or not isinstance(max_errors, int) or max_errors < 0:
        raise ConfigurationError(
            f"max_errors= is a count of records (0 or more), not {max_errors!r}"
        )
    if not isinstance(truncate_columns, bool):
        raise ConfigurationError(f"truncate_columns= is True or False, not {truncate_columns!r}")
    if compression is not None and compression not in COMPRESSIONS:
        raise ConfigurationError(
            f"compression={compression!r} is not one of {', '.join(COMPRESSIONS)} "
            "(None: by each object's suffix)"
        )
    if not isinstance(time_format, str):
        raise ConfigurationError(f"time_format= is a string, not {time_format!r}")
    if not isinstance(evolve, bool):
        raise ConfigurationError(f"evolve= is True or False, not {evolve!r}")
    ConvertOptions(truncate_columns, time_format)  # an unsupported format fails here
    if format is not None and format not in FORMATS:
        raise ConfigurationError(
            f"format={format!r} is not one of {', '.join(FORMATS)} (None: by the objects' suffixes)"
        )
    csv = csv_options_of(format, csv_options)
    if format == "parquet" and time_format != "auto":
        raise ConfigurationError(
            "time_format= does not apply to Parquet: its dates and times are typed values "
            "(Redshift's COPY from Parquet takes no TIMEFORMAT)"
        )
    if format is not None:
        check_fields(str(format), schema.__fields__)
    if mode == "merge" and not schema.__table__.primary_key.columns:
        raise ConfigurationError(
            f"mode='merge' upserts on the primary key, and {schema.__qualname__} has none; "
            "mark its key fields primary_key=True"
        )
    return CopyStep(
        schema,
        folder_prefix(source),
        cast(CopyMode, mode),  # checked against MODES above
        max_errors,
        truncate_columns,
        compression,  # checked against COMPRESSIONS above
        time_format,
        evolve,
        None if format is None else str(format),
        csv,
    )


def csv_options_of(format: object, options: object) -> CsvOptions:
    """``csv_options=`` checked: refused beside a format other than CSV."""
    if options is not None and format not in (None, "csv"):
        raise ConfigurationError(f"csv_options= applies to format='csv', not format={format!r}")
    return csv_options(options)


_POSITIONAL: Final = re.compile(r"%s")


def _positional(text: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``("... %s ... %s", (a, b))`` -> ``("... :p0 ... :p1", {"p0": a, "p1": b})``."""
    parts = _POSITIONAL.split(text.replace("%%", "\x00"))
    if len(parts) - 1 != len(values):
        raise ConfigurationError(
            f"the statement has {len(parts) - 1} %s placeholder(s) but {len(values)} value(s) "
            f"were given: {text!r}"
        )
    out = parts[0]
    for index, part in enumerate(parts[1:]):
        out += f":p{index}" + part
    return out.replace("\x00", "%"), {f"p{i}": v for i, v in enumerate(values)}


def _statement(item: object, params: Mapping[str, Any]) -> tuple[sa.Executable, dict[str, Any]]:
    if isinstance(item, str):
        return _bound(sa.text(item), params)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        text, values = item
        if isinstance(values, Mapping):
            return _bound(sa.text(text), {**params, **values})
        sequence = values if isinstance(values, list | tuple) else (values,)
        converted, named = _positional(text, sequence)
        return _bound(sa.text(converted), {**params, **named})
    if isinstance(item, sa.TextClause):
        return _bound(item, params)
    if isinstance(item, sa.Executable):
        return item, dict(params)
    raise ConfigurationError(
        f"a SQL statement is a string, a (string, parameters) pair or a SQLAlchemy "
        f"executable, not {item!r}"
    )


def _bound(
    clause: sa.TextClause, params: Mapping[str, Any]
) -> tuple[sa.Executable, dict[str, Any]]:
    bind = clause._bindparams
    names = set(bind)
    # a parameter given its value with ``text(...).bindparams(x=1)`` is not required
    missing = {name for name in names if bind[name].required} - set(params)
    if missing:
        raise ConfigurationError(
            f"no value for parameter(s) {', '.join(sorted(missing))} of {str(clause)!r}; "
            "pass them as keyword arguments to sql() or bind them with .bindparams()"
        )
    return clause, {k: v for k, v in params.items() if k in names}


def sql_step(statements: Sequence[object], params: Mapping[str, Any]) -> SQLStep:
    """Build a SQL step, checking every statement and parameter now."""
    if not statements:
        raise ConfigurationError("sql() needs at least one statement")
    resolved = tuple(_statement(item, params) for item in statements)
    first = " ".join(str(resolved[0][0]).split())
    label = "sql: " + (first if len(first) <= 40 else first[:37] + "...")
    return SQLStep(resolved, label)


#: Any step of a pipeline.
Step = CopyStep | SQLStep | TimeSeriesStep
