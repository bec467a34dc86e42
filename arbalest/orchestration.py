"""Orchestration helpers: sorted partitions of a prefix, and time-series imports.

```python
sources = SortedSources("s3://lake/raw", "events", start="2014-11-04/01", end="2014-11-06",
                        warehouse=engine)
list(sources)   # ["events/2014-11-04/01", "events/2014-11-05/00", "events/2014-11-06"]
pipeline.time_series(Event, sources, series_column="created_at").run()
```
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from typing import Any, Final

import sqlalchemy as sa

from arbalest import journal
from arbalest.errors import ConfigurationError, ObjectNotFoundError
from arbalest.pipeline.builder import Pipeline, create_engine
from arbalest.schema.base import Schema
from arbalest.stores import ObjectStore, open_store

__all__ = ["SortedSources", "TimeSeriesImport"]

_INT: Final = re.compile(r"[0-9]+")
_DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HOUR: Final = re.compile(r"[0-9]{2}")


def _natural(name: str) -> tuple[int, Any]:
    """Integers numerically, days as dates, anything else as text, in that order."""
    if _INT.fullmatch(name):
        return (0, int(name))
    if _DAY.fullmatch(name):
        try:
            return (1, dt.date.fromisoformat(name))
        except ValueError:
            pass
    return (2, name)


class SortedSources:
    """The child prefixes of ``prefix``, in natural order, between ``start`` and ``end``.

    Children are ordered naturally: integers numerically (``2`` before ``10``), days
    (``YYYY-MM-DD``) by date. Partitions are days, unless a bound names an hour
    (``"2014-11-04/01"``): then each day in range that has hour folders expands to its hours,
    as in the original Arbalest. Bounds are inclusive, and must exist.

    Partition names are UTC, as object stores name them: ``"2014-11-04/01"`` starts at
    01:00 UTC whatever the machine's zone or the warehouse session's, and a time series
    replaces rows from that instant on.

    The cursor (``committed()``, ``commit()``, ``rollback()``) lives in the journal of
    ``warehouse``; ``Pipeline.time_series`` moves it in the same transaction as the rows.

    Args:
        store: A folder, an ``s3://bucket/prefix`` URL or a store.
        prefix: The folder whose children are the partitions.
        start: The first partition (``"2014-11-04"``, ``"2014-11-04/01"``, ``"7"``).
        end: The last partition.
        warehouse: A SQLAlchemy engine or URL whose journal keeps the cursor.
        name: The cursor's name (default: derived from the store and the prefix).
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | ObjectStore,
        prefix: str,
        *,
        start: str | None = None,
        end: str | None = None,
        warehouse: sa.Engine | str | None = None,
        name: str | None = None,
    ) -> None:
        self._store = open_store(store)
        self.prefix = prefix.strip("/")
        self.start = None if start is None else str(start).strip("/")
        self.end = None if end is None else str(end).strip("/")
        self._engine = (
            None
            if warehouse is None
            else warehouse
            if isinstance(warehouse, sa.Engine)
            else create_engine(warehouse)
        )
        self._cursor = name or f"sorted-sources:{self._store.url}/{self.prefix}"

    def __repr__(self) -> str:
        return (
            f"SortedSources({self._store.url!r}, {self.prefix!r}, start={self.start!r}, "
            f"end={self.end!r})"
        )

    @property
    def store(self) -> ObjectStore:
        return self._store

    @property
    def cursor(self) -> str:
        """The name of the cursor in the journal."""
        return self._cursor

    def _path(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def sort_key(self, partition: str) -> tuple[Any, ...]:
        """Orders partitions (``events/2014-11-04/01``) naturally, level by level."""
        relative = partition.strip("/")
        if self.prefix and relative.startswith(self.prefix + "/"):
            relative = relative[len(self.prefix) + 1 :]
        return tuple(_natural(part) for part in relative.split("/"))

    def value_of(self, partition: str) -> Any:
        """Where a partition starts: a date, a datetime (day/hour), a number or the name.

        A date and a datetime are UTC (naive: the names carry no zone).
        """
        key = self.sort_key(partition)
        if len(key) >= 2 and key[0][0] == 1 and key[1][0] == 0:  # a day, then an hour
            day = key[0][1]
            return dt.datetime(day.year, day.month, day.day, key[1][1])
        return key[0][1]

    def partitions(self) -> list[str]:
        """The partitions, in order (each a prefix relative to the store)."""
        days = sorted(self._store.children(self.prefix), key=_natural)
        hourly = any(b is not None and "/" in b for b in (self.start, self.end))
        first_day = self.start.split("/")[0] if self.start else None
        last_day = self.end.split("/")[0] if self.end else None
        for bound, day in (("start", first_day), ("end", last_day)):
            if day is not None and day not in days:
                shown = ", ".join(days[:3] + (["..."] if len(days) > 3 else []))
                raise ObjectNotFoundError(
                    f"the {bound} partition {day!r} is not under {self._path()!r} in "
                    f"{self._store.url}; there are: {shown or 'none'}"
                )
        low = _natural(first_day) if first_day else None
        high = _natural(last_day) if last_day else None
        out: list[str] = []
        for day in days:
            key = _natural(day)
            if (low is not None and key < low) or (high is not None and key > high):
                continue
            hours = (
                sorted(h for h in self._store.children(self._path(day)) if _HOUR.fullmatch(h))
                if hourly
                else []
            )
            if not hours:
                out.append(self._path(day))
                continue
            first_hour = self._hour(self.start) if day == first_day else None
            last_hour = self._hour(self.end) if day == last_day else None
            for hour in hours:
                if (first_hour is None or hour >= first_hour) and (
                    last_hour is None or hour <= last_hour
                ):
                    out.append(self._path(day, hour))
        for limit in (self.start, self.end):
            if limit and self._hour(limit) is not None and self._path(limit) not in out:
                raise ObjectNotFoundError(
                    f"the partition {limit!r} is not under {self._path()!r} in {self._store.url}"
                )
        return out

    @staticmethod
    def _hour(bound: str | None) -> str | None:
        return bound.split("/")[1] if bound and "/" in bound else None

    def get(self) -> list[str]:
        """The original Arbalest's name for ``partitions()``."""
        return self.partitions()

    def __iter__(self) -> Iterator[str]:
        return iter(self.partitions())

    def _warehouse(self) -> sa.Engine:
        if self._engine is None:
            raise ConfigurationError(
                "this SortedSources has no warehouse for its cursor: pass warehouse="
            )
        return self._engine

    def committed(self) -> str | None:
        """The last committed point, or ``None``."""
        with self._warehouse().connect() as conn:
            point, _ = journal.cursor_point(conn, self._cursor)
        return point

    def commit(self, point: str) -> None:
        """Record ``point`` as committed (the previous one is kept for ``rollback``)."""
        with self._warehouse().begin() as conn:
            journal.cursor_commit(conn, self._cursor, point)

    def rollback(self) -> str | None:
        """Restore the point before the last commit; return it."""
        with self._warehouse().begin() as conn:
            return journal.cursor_rollback(conn, self._cursor)


class TimeSeriesImport:
    """The original Arbalest's ``SqlTimeSeriesImport``: a time-series step for a pipeline.

    ``TimeSeriesImport(Event, sources, series_column="created_at").add_to(pipeline)`` is
    ``pipeline.time_series(Event, sources, series_column="created_at")``.
    """

    def __init__(
        self,
        schema: type[Schema],
        sources: SortedSources,
        *,
        series_column: str,
        since: Any = None,
        **options: Any,
    ) -> None:
        self.schema = schema
        self.sources = sources
        self.series_column = series_column
        self.since = since
        self.options = options

    def add_to(self, pipeline: Pipeline) -> Pipeline:
        """A new pipeline: ``pipeline`` with this import as its last step."""
        return pipeline.time_series(
            self.schema,
            self.sources,
            series_column=self.series_column,
            since=self.since,
            **self.options,
        )

    def bulk_copy(
        self,
        pipeline: Pipeline,
        metadata: str | None = None,
        max_error: int = 0,
        order_by_column: str | None = None,
    ) -> Pipeline:
        """The original's signature: ``order_by_column`` is the series column."""
        del metadata  # the pipeline's own metadata folder is used
        options = {**self.options, "max_errors": max_error}
        return pipeline.time_series(
            self.schema,
            self.sources,
            series_column=order_by_column or self.series_column,
            since=self.since,
            **options,
        )
