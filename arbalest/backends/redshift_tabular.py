"""Amazon Redshift: Parquet and CSV objects, loaded by Redshift's own ``COPY``.

Redshift's ``COPY`` maps the fields of CSV and the columns of Parquet to the table's columns
by **position**, not by name: a CSV record's fields in order to the COPY's column list, a
Parquet object's columns in order to every column of the table (same count, types that
match the file's). Fields of a schema map by name (``key=``), so each object is loaded in
three statements, inside the step's transaction:

1. A temporary *load table* shaped like the object: for CSV with a header, one column per
   header field, in the header's order, typed as the field it feeds (a header field no field
   reads: a ``VARCHAR(65535)`` nobody reads); for CSV without a header, the schema's columns;
   for Parquet, one column per top-level column of the object, typed as Redshift reads that
   Parquet type (structs, lists and maps as ``SUPER``, with ``SERIALIZETOJSON``). Arbalest
   reads the header line, or the Parquet footer (one ranged GET), to know the shape.
2. ``COPY`` of the object (a manifest listing only it) into the load table: for CSV with the
   step's ``CSV``, ``DELIMITER``, ``QUOTE``, ``IGNOREHEADER``, ``NULL AS``, ``EMPTYASNULL``,
   ``BLANKSASNULL``, ``ENCODING``, ``IGNOREBLANKLINES``, ``TIMEFORMAT``,
   ``TRUNCATECOLUMNS`` and ``MAXERROR``; for Parquet with ``FORMAT AS PARQUET`` and nothing
   else (COPY from Parquet takes no ``MAXERROR``: an error fails it).
3. ``INSERT INTO`` the destination (the target, or the mode's staging table) ``SELECT`` the
   fields by name from the load table: a ``DATE`` field from its ``TIMESTAMPTZ`` load column
   as its date in UTC, as for JSON; a Parquet column widened to its field's type with
   ``CAST``. Then the load table is dropped.

``TabularShapes`` makes these statements for both transports: a direct connection runs
them one by one, the Data API sends them in its session's staging batches
(``_redshift_session``). CSV rejects come back from ``STL_LOAD_ERRORS``, as for JSON. A
Parquet load has no rejects on Redshift: a value the local loaders would reject (NULL for a
NOT NULL field, a string too long) fails the step, naming the object.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy_redshift.commands import Encoding, Format
from sqlalchemy_redshift.dialect import SUPER

from arbalest.backends._redshift_copy import checked_copy, copy_auth, copy_settings, put_manifest
from arbalest.backends._redshift_tables import number_rows, refuse_ambiguous
from arbalest.backends._redshift_views import CopyTally, LoadViews
from arbalest.backends.base import (
    CopyJob,
    LoadResult,
    staging_name,
    staging_table,
    upsert_from,
)
from arbalest.convert import DateRule, SuperRule
from arbalest.errors import ConfigurationError, CopyError, StoreError
from arbalest.loading.formats import delimiter_for
from arbalest.loading.reader import compression_of, open_decompressed
from arbalest.loading.tabular import (
    CsvReader,
    csv_name,
    parquet_conversion,
    parquet_schema_from_tail,
)
from arbalest.schema._build import ColumnSpec
from arbalest.stores.base import ObjectInfo

__all__ = [
    "Shaped",
    "TabularShapes",
    "build_tabular_copy",
    "check_tabular_job",
    "load_tabular",
    "misfit",
    "parquet_load_type",
]

#: The longest VARCHAR Redshift has: header fields no field reads, and Parquet strings.
MAX_VARCHAR: Final = 65535
#: The bytes first read from the end of a Parquet object for its footer.
FOOTER_BYTES: Final = 64 * 1024
_ENCODING: Final = {
    "utf8": Encoding.utf8,
    "utf16": Encoding.utf16,
    "utf16le": Encoding.utf16le,
    "utf16be": Encoding.utf16be,
}


def check_tabular_job(job: CopyJob) -> None:
    """Refuse what Redshift's ``COPY`` from Parquet cannot do: a field reading inside a
    struct or a list (Redshift loads those whole into ``SUPER`` only), ``truncate_columns``
    (no ``TRUNCATECOLUMNS``).

    Raises:
        ConfigurationError: Naming the field or the option.
    """
    if job.format != "parquet":
        return
    for spec in job.schema.__fields__:
        if len(spec.path) > 1:
            raise ConfigurationError(
                f"field {spec.qualname!r} reads {spec.jsonpath}, inside a Parquet "
                "struct or list; Redshift's COPY loads a struct or a list whole, into SUPER "
                "only: read the column with a Super() field on Redshift"
            )
    if job.options.truncate_columns:
        raise ConfigurationError(
            "Redshift's COPY from Parquet takes no TRUNCATECOLUMNS; "
            "truncate_columns=True applies to JSON and CSV there"
        )


def parquet_load_type(kind: pa.DataType, as_super: bool) -> sa.types.TypeEngine[Any] | None:
    """The column type Redshift's ``COPY`` reads a Parquet column of Arrow type ``kind``
    into (``as_super``: a Super field reads it, so ``SUPER`` with ``SERIALIZETOJSON``), or
    ``None`` when Arbalest has none for it (binary)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    nested = (
        pa.types.is_struct(kind)
        or pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or pa.types.is_map(kind)
    )
    if as_super or nested:
        return _super()
    if pa.types.is_integer(kind):
        bits = kind.bit_width * (2 if pa.types.is_unsigned_integer(kind) else 1)
        if bits <= 16:
            return sa.SmallInteger()
        if bits <= 32:
            return sa.Integer()
        if bits <= 64:
            return sa.BigInteger()
        return sa.Numeric(20, 0)
    if pa.types.is_float16(kind) or pa.types.is_float32(kind):
        return sa.REAL()
    if pa.types.is_float64(kind):
        return sa.DOUBLE_PRECISION()
    if pa.types.is_decimal(kind):
        return sa.Numeric(kind.precision, kind.scale)
    if pa.types.is_boolean(kind):
        return sa.Boolean()
    if pa.types.is_date(kind):
        return sa.Date()
    if pa.types.is_timestamp(kind):
        # Redshift reads a UTC-adjusted Parquet timestamp as its UTC time
        return sa.TIMESTAMP(timezone=False)
    if pa.types.is_time(kind):
        return sa.Time()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return sa.String(MAX_VARCHAR)
    return None


def _super() -> sa.types.TypeEngine[Any]:
    made: sa.types.TypeEngine[Any] = SUPER()  # sqlalchemy-redshift is untyped
    return made


def build_tabular_copy(
    load: sa.Table,
    job: CopyJob,
    *,
    manifest_url: str,
    compression: str | None,
    delimiter: str,
    serialize_to_json: bool = False,
    max_error: int = 0,
) -> Any:
    """The ``COPY`` of one manifest into ``load`` (every column, in order), for the job's
    format and options (see the module docstring)."""
    auth = copy_auth(job.iam_role, job.credentials)
    kw: dict[str, Any] = {"data_location": manifest_url, "manifest": True, **auth}
    if job.format == "parquet":
        # COPY from Parquet takes none of the options below (not even REGION)
        kw.update(to=load, format=Format.parquet, serialize_to_json=serialize_to_json)
    else:
        csv = job.csv
        skip = csv.ignore_header + (1 if csv.header else 0)
        kw.update(
            to=list(load.columns),
            format=Format.csv,
            quote=csv.quote,
            delimiter=delimiter,
            ignore_header=skip or None,
            # checked when the step was built: no quote, no backslash but in \N
            dangerous_null_delimiter=csv.null_as,
            empty_as_null=csv.empty_as_null,
            blanks_as_null=csv.blanks_as_null,
            encoding=_ENCODING[csv.encoding],
            ignore_blank_lines=True,
            **copy_settings(compression, job.options.time_format, job.options.truncate_columns),
            max_error=max_error,
            no_load=job.validate,
            region=job.region,
        )
    return checked_copy(**kw)


def load_tabular(
    conn: sa.Connection, job: CopyJob, objects: Sequence[ObjectInfo], views: LoadViews
) -> LoadResult:
    """Load Parquet or CSV ``objects`` by ``job.mode`` (see the module docstring); the load
    errors and counts are read back from ``views`` (``STL_`` or ``SYS_``)."""
    table = job.table
    copier = _TabularCopier(conn, job, views)
    names = [c.name for c in table.columns]
    if job.mode == "incremental":
        for info in objects:
            copier.copy(table, info)
    elif job.mode == "replace":
        staging = staging_table(table, job.run_id)
        conn.execute(CreateTable(staging))
        for info in objects:
            copier.copy(staging, info)
        conn.execute(sa.delete(table))
        conn.execute(sa.insert(table).from_select(names, sa.select(*staging.c)))
        conn.execute(DropTable(staging))
    else:  # merge: objects come oldest first; each one's rows get its number
        staging = staging_table(table, job.run_id, with_position=True)
        conn.execute(CreateTable(staging))
        for number, info in enumerate(objects, start=1):
            copier.copy(staging, info)
            conn.execute(number_rows(staging, number))
        refuse_ambiguous(conn, job, table, staging, objects)
        upsert_from(conn, table, staging)
        conn.execute(DropTable(staging))
    return copier.tally.result(objects)


class _TabularCopier:
    """Per object: a load table shaped like it, a COPY into it, an INSERT by name."""

    def __init__(self, conn: sa.Connection, job: CopyJob, views: LoadViews) -> None:
        self.conn = conn
        self.job = job
        self.shapes = TabularShapes(job)
        self.tally = CopyTally(conn, job, views)

    def copy(self, dest: sa.Table, info: ObjectInfo) -> None:
        shaped = self.shapes.layout(info)
        if shaped is None:  # an empty object: no header, no rows
            return
        self.conn.execute(CreateTable(shaped.load))
        statement = self.shapes.copy_of(shaped, max_error=self.tally.max_error())
        # COPY from Parquet has no MAXERROR: it loads every row, or fails
        self.tally.copy(statement, info.key, self.shapes.dates, rejects=self.shapes.rejects)
        try:
            self.conn.execute(self.shapes.insert(dest, shaped))
        except sa.exc.DBAPIError as exc:
            raise misfit(self.job.label, info.key, str(exc.orig)) from None
        self.conn.execute(DropTable(shaped.load))


def misfit(label: str, key: str, reason: str) -> CopyError:
    """The step's error when an object's rows do not fit the table (Parquet: no MAXERROR)."""
    return CopyError(
        label,
        f"{key!r}: its rows do not fit the table ({reason.strip()}); Redshift's COPY from "
        "Parquet has no MAXERROR, so a value that does not fit its column fails the step",
    )


@dataclass(frozen=True)
class Shaped:
    """One Parquet or CSV object's load table, and what each field reads from it.

    Attributes:
        info: The object.
        number: Its place among the step's COPYs (its manifest's and its load table's name).
        load: The temporary load table, shaped like the object.
        values: Per field of the schema, in order, its value read from ``load``.
        as_json: Some column loads into ``SUPER`` (``SERIALIZETOJSON``).
    """

    info: ObjectInfo
    number: int
    load: sa.Table
    values: list[sa.ColumnElement[Any]]
    as_json: bool


class TabularShapes:
    """The statements that load one Parquet or CSV object of a step (see the module
    docstring): its load table, its ``COPY`` and the ``INSERT`` by name, for a direct
    connection and the Data API alike."""

    def __init__(self, job: CopyJob) -> None:
        self.job = job
        self.specs: list[ColumnSpec] = list(job.schema.__fields__)
        self.number = 0
        #: The ``DATE`` fields (their load columns are ``TIMESTAMPTZ``).
        self.dates = frozenset(s.name for s in self.specs if isinstance(s.rule, DateRule))
        #: Whether the COPY reports rejects (CSV), or loads every row or fails (Parquet).
        self.rejects = job.format != "parquet"

    def layout(self, info: ObjectInfo) -> Shaped | None:
        """The next object's load table and values (``None``: an empty CSV object, with no
        header and no rows)."""
        self.number += 1
        if self.job.format == "parquet":
            load, values, as_json = self._parquet_layout(info)
            return Shaped(info, self.number, load, values, as_json)
        layout = self._csv_layout(info)
        if layout is None:
            return None
        return Shaped(info, self.number, *layout, as_json=False)

    def insert(self, dest: sa.Table, shaped: Shaped) -> sa.Insert:
        """``INSERT INTO dest`` the fields by name from the object's load table."""
        names = [spec.name for spec in self.specs]
        values = [v.label(n) for v, n in zip(shaped.values, names, strict=True)]
        return sa.insert(dest).from_select(names, sa.select(*values))

    # -- layouts ----------------------------------------------------------------------------

    def _load_name(self) -> str:
        return staging_name(self.job.table, self.job.run_id, f"_l{self.number}")

    def _column(self, spec: ColumnSpec) -> sa.Column[Any]:
        """A field's load column: its own type (``DATE`` as ``TIMESTAMPTZ``, read with the
        step's TIMEFORMAT, as for JSON), NOT NULL kept so that COPY rejects a missing
        value."""
        target = self.job.table.c[spec.name]
        kind = sa.TIMESTAMP(timezone=True) if isinstance(spec.rule, DateRule) else target.type
        return sa.Column(spec.name, kind, nullable=spec.nullable)

    def _settled(self, load: sa.Table, spec: ColumnSpec) -> sa.ColumnElement[Any]:
        column = load.c[spec.name]
        if isinstance(spec.rule, DateRule):
            return sa.cast(sa.func.timezone("UTC", column), sa.Date)
        return column

    def _csv_layout(self, info: ObjectInfo) -> tuple[sa.Table, list[sa.ColumnElement[Any]]] | None:
        csv = self.job.csv
        if not csv.header:
            columns = [self._column(spec) for spec in self.specs]
            load = sa.Table(self._load_name(), sa.MetaData(), *columns, prefixes=["TEMPORARY"])
            return load, [self._settled(load, spec) for spec in self.specs]
        header = self._header(info)
        if not header:
            return None
        by_name = {csv_name(spec): spec for spec in self.specs}
        seen: set[str] = set()
        columns = []
        for position, name in enumerate(header):
            spec = by_name.get(name or "")
            if spec is None:
                columns.append(sa.Column(f"_arbalest_skip_{position}", sa.String(MAX_VARCHAR)))
                continue
            if spec.name in seen:
                raise StoreError(
                    f"{info.key!r}: the header names {name!r} more than once, so which column "
                    f"the field {spec.qualname!r} reads cannot be told"
                )
            seen.add(spec.name)
            columns.append(self._column(spec))
        load = sa.Table(self._load_name(), sa.MetaData(), *columns, prefixes=["TEMPORARY"])
        values: list[sa.ColumnElement[Any]] = []
        for spec in self.specs:
            if spec.name in seen:
                values.append(self._settled(load, spec))
            elif not spec.nullable:
                raise StoreError(
                    f"{info.key!r}: the header has no column {csv_name(spec)!r} for the NOT "
                    f"NULL field {spec.qualname!r}: every row would be rejected"
                )
            else:
                values.append(sa.null())
        return load, values

    def _header(self, info: ObjectInfo) -> list[str | None]:
        """The header's names (after ``ignore_header`` lines); none for an empty object."""
        csv = self.job.csv
        reader = CsvReader(csv, delimiter_for(info.key, csv))
        codec = compression_of(info.key, self.job.compression)
        store = self.job.store
        with store.open(info.key) as raw, open_decompressed(raw, codec) as stream:
            for record in reader.records(stream):
                if record.error is not None:
                    raise StoreError(f"{info.key!r}: its header cannot be read: {record.error[1]}")
                return record.values
        return []

    def _parquet_layout(
        self, info: ObjectInfo
    ) -> tuple[sa.Table, list[sa.ColumnElement[Any]], bool]:
        schema = _parquet_schema(self.job, info)
        readers: dict[str, list[ColumnSpec]] = {}
        for spec in self.specs:
            readers.setdefault(str(spec.path[0]), []).append(spec)
        columns = []
        as_json = False
        for position, item in enumerate(schema):
            supers = {isinstance(s.rule, SuperRule) for s in readers.get(item.name, [])}
            if len(supers) > 1:
                raise ConfigurationError(
                    f"column {item.name!r} of {info.key!r} is read by a Super "
                    "field and another: Redshift's COPY loads a Parquet column one way only"
                )
            kind = parquet_load_type(item.type, as_super=supers == {True})
            if kind is None:
                raise StoreError(
                    f"{info.key!r}: column {item.name!r} is Parquet {item.type}, which Arbalest "
                    "has no Redshift column for (a VARBYTE column)"
                )
            as_json = as_json or isinstance(kind, SUPER)
            columns.append(sa.Column(f"_arbalest_c{position}", kind))
        load = sa.Table(self._load_name(), sa.MetaData(), *columns, prefixes=["TEMPORARY"])
        values: list[sa.ColumnElement[Any]] = []
        for spec in self.specs:
            index = schema.get_field_index(str(spec.path[0]))
            if index < 0:
                if not spec.nullable:
                    raise StoreError(
                        f"{info.key!r} has no column {spec.jsonpath} for the NOT NULL field "
                        f"{spec.qualname!r}: every row would be rejected"
                    )
                values.append(sa.null())
                continue
            kind = schema.field(index).type
            if parquet_conversion(spec.rule, kind) is None:  # the local loaders' own table
                from arbalest.loading.parquet import misfit

                raise StoreError(misfit(info.key, spec, str(kind), kind))
            column = load.c[f"_arbalest_c{index}"]
            values.append(self._parquet_value(spec, column, kind))
        return load, values, as_json

    def _parquet_value(
        self, spec: ColumnSpec, column: sa.Column[Any], kind: pa.DataType
    ) -> sa.ColumnElement[Any]:
        target = self.job.table.c[spec.name]
        rule = spec.rule
        if isinstance(rule, SuperRule) or pa.types.is_null(kind):
            return column if not pa.types.is_null(kind) else sa.null()
        if rule.type_name == "TIMESTAMPTZ":
            # the load column holds the UTC time: TIMEZONE('UTC', ...) makes it that instant
            return sa.func.timezone("UTC", column, type_=target.type)
        if isinstance(target.type, sa.Numeric | sa.Integer | sa.Float):
            return sa.cast(column, target.type)
        return column

    # -- the COPY ---------------------------------------------------------------------------

    def copy_of(self, shaped: Shaped, *, max_error: int) -> Any:
        """The ``COPY`` of one object into its load table, through its manifest (written
        now)."""
        job, info = self.job, shaped.info
        manifest_url = put_manifest(job, shaped.number, info)
        compression = compression_of(info.key, job.compression)
        if job.format == "parquet" and compression not in (None, "gzip", "bzip2"):
            raise StoreError(
                f"{info.key!r}: Redshift's COPY from Parquet reads .gz, .bz2 and .snappy "
                f"objects only, not {compression}"
            )
        return build_tabular_copy(
            shaped.load,
            job,
            manifest_url=manifest_url,
            compression=compression,
            delimiter=delimiter_for(info.key, job.csv),
            serialize_to_json=shaped.as_json,
            max_error=max_error,
        )


def _parquet_schema(job: CopyJob, info: ObjectInfo) -> pa.Schema:
    """The Arrow schema of a Parquet object, from its footer (a ranged read of its end when
    the store can; its whole body otherwise, or when it is compressed)."""
    store = job.store
    compression = compression_of(info.key, job.compression)
    tail = getattr(store, "tail", None)
    if compression is None and tail is not None:
        data = tail(info.key, FOOTER_BYTES)
        if len(data) >= 8 and data[-4:] == b"PAR1":
            (length,) = struct.unpack("<I", data[-8:-4])
            if length + 8 > len(data) and len(data) < info.size:
                data = tail(info.key, length + 8)
        return parquet_schema_from_tail(data, info.key)
    with store.open(info.key) as raw, open_decompressed(raw, compression) as stream:
        data = stream.read()
    return parquet_schema_from_tail(data, info.key)
