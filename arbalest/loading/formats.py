"""Source formats: which one a copy step reads, and the options of CSV.

A step reads one format: ``"json"`` (the default), ``"parquet"`` or ``"csv"``. Given as
``copy(..., format=None)``, it is named by the objects' suffixes (after a compression
suffix): ``.json``, ``.jsonl`` and ``.ndjson`` are JSON, ``.parquet`` and ``.pq`` Parquet,
``.csv`` and ``.tsv`` CSV (``.tsv`` with a tab as the delimiter unless one is given). An
object whose suffix names another format than the step's is an error naming it, never read
in the wrong format; objects with no known suffix are read in the step's format.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Literal, TypeAlias, cast, get_args

from arbalest.errors import ConfigurationError
from arbalest.stores.base import ObjectInfo

__all__ = [
    "CSV_ENCODINGS",
    "FORMATS",
    "CsvOptions",
    "SourceFormat",
    "csv_options",
    "delimiter_for",
    "format_of_key",
    "resolve_format",
]

SourceFormat: TypeAlias = Literal["json", "parquet", "csv"]
FORMATS: Final[tuple[str, ...]] = get_args(SourceFormat)

#: Redshift's ENCODING values for CSV, and Python's codec for each.
CSV_ENCODINGS: Final = {
    "utf8": "utf-8",
    "utf16": "utf-16",
    "utf16le": "utf-16-le",
    "utf16be": "utf-16-be",
}

_COMPRESSION_SUFFIXES: Final = (".gz", ".gzip", ".bz2", ".zst", ".zstd")
_FORMAT_SUFFIXES: Final[dict[str, SourceFormat]] = {
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
}
_NAMES: Final = {"json": "JSON", "parquet": "Parquet", "csv": "CSV"}


def _suffix(key: str) -> str:
    """The format suffix of a key, below a compression suffix (``a.csv.gz``: ``.csv``)."""
    name = key.rsplit("/", 1)[-1].lower()
    root, ext = os.path.splitext(name)
    if ext in _COMPRESSION_SUFFIXES:
        ext = os.path.splitext(root)[1]
    return ext


def format_of_key(key: str) -> SourceFormat | None:
    """The format an object's suffix names, or ``None`` when it names none."""
    return _FORMAT_SUFFIXES.get(_suffix(key))


def delimiter_for(key: str, options: CsvOptions) -> str:
    """The delimiter of a CSV object: the one given, else a tab for ``.tsv``, else a comma."""
    if options.delimiter is not None:
        return options.delimiter
    return "\t" if _suffix(key) == ".tsv" else ","


def resolve_format(declared: str | None, objects: Iterable[ObjectInfo]) -> SourceFormat:
    """The format a step reads ``objects`` in.

    Args:
        declared: The step's ``format=`` (``None``: by the objects' suffixes).
        objects: The objects under the source.

    Raises:
        ConfigurationError: If an object's suffix names another format than ``declared``, or,
            with ``declared=None``, if the suffixes name more than one format. The message
            names an object of each.
    """
    first: dict[SourceFormat, str] = {}
    for info in objects:
        named = format_of_key(info.key)
        if named is not None:
            first.setdefault(named, info.key)
    if declared is not None:
        fmt = cast(SourceFormat, declared)
        others = {f: k for f, k in first.items() if f != fmt}
        if others:
            other, key = next(iter(others.items()))
            raise ConfigurationError(
                f"{key!r} is a {_NAMES[other]} object by its suffix, but the step reads "
                f"format={fmt!r}: keep each format under a source of its own (a step "
                "never reads an object in another format than its own)"
            )
        return fmt
    if len(first) > 1:
        named_keys = ", ".join(f"{k!r} ({_NAMES[f]})" for f, k in first.items())
        raise ConfigurationError(
            f"the objects under the source are of more than one format: {named_keys}; "
            "keep each format under a source of its own, or give format="
        )
    return next(iter(first), "json")


@dataclass(frozen=True)
class CsvOptions:
    """How CSV objects are read, with Redshift's ``COPY ... CSV`` options.

    Attributes:
        header: The first line (after ``ignore_header`` lines) names the columns, and fields
            map to those names by ``key=`` (a nested field by its keys joined with ``.``:
            ``child.someBoolean``). ``False``: fields map to the values by position, in the
            schema's column order (Redshift's COPY without a column list).
        ignore_header: Lines skipped at the start of each object, before the header or the
            data (``IGNOREHEADER``).
        delimiter: The single character between fields (``DELIMITER``); default a comma, or
            a tab for ``.tsv`` objects.
        quote: The quotation mark character (``QUOTE AS``); a quote inside a quoted field is
            written twice.
        null_as: An unquoted field equal to this is NULL (``NULL AS``, default ``\\N``).
        empty_as_null: An unquoted empty field in a ``CHAR`` or ``VARCHAR`` column is NULL,
            not ``''`` (``EMPTYASNULL``). Empty fields of other types are always NULL.
        blanks_as_null: An unquoted field of blanks only in a ``CHAR`` or ``VARCHAR``
            column is NULL (``BLANKSASNULL``). Blank fields of other types are always NULL.
        encoding: ``"utf8"`` (default), ``"utf16"`` (with a byte-order mark),
            ``"utf16le"`` or ``"utf16be"`` (``ENCODING``).
    """

    header: bool = True
    ignore_header: int = 0
    delimiter: str | None = None
    quote: str = '"'
    null_as: str = "\\N"
    empty_as_null: bool = False
    blanks_as_null: bool = False
    encoding: str = "utf8"

    def __post_init__(self) -> None:
        for name in ("header", "empty_as_null", "blanks_as_null"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(
                    f"csv_options {name}= is True or False, not {getattr(self, name)!r}"
                )
        skip: object = self.ignore_header
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            raise ConfigurationError(
                f"csv_options ignore_header= is a count of lines (0 or more), not {skip!r}"
            )
        for name in ("delimiter", "quote"):
            value = getattr(self, name)
            if value is None and name == "delimiter":
                continue
            if not isinstance(value, str) or len(value) != 1 or not value.isascii():
                raise ConfigurationError(
                    f"csv_options {name}= is one ASCII character (Redshift's "
                    f"{name.upper()}), not {value!r}"
                )
            if value in "\r\n":
                raise ConfigurationError(f"csv_options {name}= cannot be a line break")
        if self.delimiter is not None and self.delimiter == self.quote:
            raise ConfigurationError(
                f"csv_options delimiter= and quote= are both {self.quote!r}: they must differ"
            )
        null: object = self.null_as
        if not isinstance(null, str):
            raise ConfigurationError(f"csv_options null_as= is a string, not {null!r}")
        if "\n" in null or "\r" in null or "'" in null:
            raise ConfigurationError(
                f"csv_options null_as={null!r} cannot hold a line break or a single quote"
            )
        if "\\" in null and null != "\\N":
            raise ConfigurationError(
                f"csv_options null_as={null!r}: Redshift reads a backslash in NULL AS as an "
                "escape; use a null string without one (the default \\N excepted)"
            )
        if self.delimiter is not None and self.delimiter in null:
            raise ConfigurationError(
                f"csv_options null_as={null!r} holds the delimiter, so no field can equal it"
            )
        encoding: object = self.encoding
        if not isinstance(encoding, str) or encoding.lower() not in CSV_ENCODINGS:
            raise ConfigurationError(
                f"csv_options encoding={self.encoding!r} is not one of "
                f"{', '.join(CSV_ENCODINGS)} (Redshift's ENCODING)"
            )
        object.__setattr__(self, "encoding", self.encoding.lower())

    @property
    def codec(self) -> str:
        """Python's name for the encoding."""
        return CSV_ENCODINGS[self.encoding]


_CSV_KEYS: Final = tuple(f.name for f in fields(CsvOptions))


def csv_options(value: object) -> CsvOptions:
    """``csv_options=`` as given to ``copy()`` (``None``, a mapping or a ``CsvOptions``),
    checked.

    Raises:
        ConfigurationError: For a key that is not an option, or a bad value.
    """
    if value is None:
        return CsvOptions()
    if isinstance(value, CsvOptions):
        return value
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"csv_options= is a mapping such as {{'delimiter': ';'}} or a CsvOptions, not {value!r}"
        )
    unknown = sorted(str(k) for k in value if k not in _CSV_KEYS)
    if unknown:
        raise ConfigurationError(
            f"csv_options has no option {', '.join(unknown)}; the options are "
            f"{', '.join(_CSV_KEYS)}"
        )
    given: dict[str, Any] = dict(value)
    return CsvOptions(**given)
