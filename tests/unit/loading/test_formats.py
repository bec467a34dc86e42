"""Which format a step reads, and the CSV options: checked at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from arbalest import ConfigurationError, Pipeline, Schema, String
from arbalest.loading.formats import (
    CsvOptions,
    csv_options,
    delimiter_for,
    format_of_key,
    resolve_format,
)
from arbalest.pipeline.steps import CopyStep
from arbalest.stores.base import ObjectInfo


def info(key: str) -> ObjectInfo:
    return ObjectInfo(key, 1, "etag", dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    ("key", "fmt"),
    [
        ("a.json", "json"),
        ("a.JSONL", "json"),
        ("x/a.ndjson.gz", "json"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.parquet.zst", "parquet"),
        ("a.csv", "csv"),
        ("a.csv.gz", "csv"),
        ("a.tsv.bz2", "csv"),
        ("a.txt", None),
        ("a", None),
        ("a.gz", None),
        ("dir.csv/a", None),
    ],
)
def test_suffixes_name_formats_below_a_compression_suffix(key: str, fmt: str | None) -> None:
    assert format_of_key(key) == fmt


def test_without_format_the_suffixes_decide_and_json_is_the_default() -> None:
    assert resolve_format(None, [info("a.csv"), info("b"), info("c.csv.gz")]) == "csv"
    assert resolve_format(None, [info("a"), info("b.log")]) == "json"
    assert resolve_format(None, []) == "json"


def test_two_formats_under_a_source_are_refused_naming_an_object_of_each() -> None:
    with pytest.raises(ConfigurationError) as raised:
        resolve_format(None, [info("a.csv"), info("b.parquet"), info("c.csv")])
    assert "'a.csv' (CSV)" in str(raised.value)
    assert "'b.parquet' (Parquet)" in str(raised.value)


def test_an_object_of_another_format_than_the_declared_one_is_refused() -> None:
    assert resolve_format("csv", [info("a.csv"), info("b.dat")]) == "csv"
    with pytest.raises(ConfigurationError, match=r"'b.json' is a JSON object"):
        resolve_format("csv", [info("a.csv"), info("b.json")])


def test_tsv_objects_default_to_a_tab() -> None:
    assert delimiter_for("a.tsv", CsvOptions()) == "\t"
    assert delimiter_for("a.tsv.gz", CsvOptions()) == "\t"
    assert delimiter_for("a.csv", CsvOptions()) == ","
    assert delimiter_for("a.tsv", CsvOptions(delimiter="|")) == "|"


def test_csv_options_from_a_mapping() -> None:
    options = csv_options({"delimiter": ";", "encoding": "UTF16LE", "ignore_header": 2})
    assert options == CsvOptions(delimiter=";", encoding="utf16le", ignore_header=2)
    assert options.codec == "utf-16-le"
    assert csv_options(None) == CsvOptions()
    assert csv_options(options) is options


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"delim": ","}, "no option delim"),
        ({"header": "yes"}, "header= is True or False"),
        ({"empty_as_null": 1}, "empty_as_null= is True or False"),
        ({"blanks_as_null": None}, "blanks_as_null= is True or False"),
        ({"ignore_header": -1}, "count of lines"),
        ({"ignore_header": True}, "count of lines"),
        ({"delimiter": ",,"}, "one ASCII character"),
        ({"delimiter": "é"}, "one ASCII character"),
        ({"delimiter": "\n"}, "cannot be a line break"),
        ({"quote": ""}, "one ASCII character"),
        ({"quote": "\r"}, "cannot be a line break"),
        ({"delimiter": '"'}, "must differ"),
        ({"null_as": 0}, "null_as= is a string"),
        ({"null_as": "a'b"}, "single quote"),
        ({"null_as": "x\ny"}, "line break"),
        ({"null_as": "\\0"}, "backslash"),
        ({"null_as": "a;b", "delimiter": ";"}, "holds the delimiter"),
        ({"encoding": "latin1"}, "not one of utf8, utf16, utf16le, utf16be"),
        ({"encoding": 8}, "not one of"),
    ],
)
def test_bad_csv_options_are_refused_at_once(given: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        csv_options(given)


def test_csv_options_is_a_mapping_or_csv_options() -> None:
    with pytest.raises(ConfigurationError, match="csv_options= is a mapping"):
        csv_options([("delimiter", ";")])


class Event(Schema):
    __tablename__ = "format_events"
    id = String(10)
    first = String(10, path="$['tags'][0]")


class Flat(Schema):
    __tablename__ = "format_flat"
    id = String(10)


def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline("duckdb:///:memory:", store=tmp_path)


def test_copy_takes_format_and_csv_options(tmp_path: Path) -> None:
    step = pipeline(tmp_path).copy(Flat, "in", format="csv", csv_options={"header": False})
    copy = step.steps[0]
    assert isinstance(copy, CopyStep)
    assert copy.format == "csv"
    assert copy.csv_options == CsvOptions(header=False)
    again = step.using(store=tmp_path).steps[0]
    assert isinstance(again, CopyStep)
    assert (again.format, again.csv_options) == ("csv", CsvOptions(header=False))
    default = pipeline(tmp_path).copy(Flat, "in").steps[0]
    assert isinstance(default, CopyStep)
    assert default.format is None


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"format": "xml"}, "format='xml' is not one of json, parquet, csv"),
        ({"format": "json", "csv_options": {}}, "csv_options= applies to format='csv'"),
        ({"format": "parquet", "csv_options": {"header": False}}, "applies to format='csv'"),
        ({"format": "parquet", "time_format": "epochsecs"}, "does not apply to Parquet"),
        ({"format": "csv", "csv_options": {"quote": "''"}}, "one ASCII character"),
    ],
)
def test_copy_refuses_bad_format_arguments_at_once(
    tmp_path: Path, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        pipeline(tmp_path).copy(Flat, "in", **kw)  # type: ignore[arg-type]


def test_a_csv_step_refuses_a_field_that_reads_an_array_element(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"CSV has no arrays"):
        pipeline(tmp_path).copy(Event, "in", format="csv")
    pipeline(tmp_path).copy(Event, "in", format="parquet")  # Parquet has lists
