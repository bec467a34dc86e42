"""``arbalest.sample_drift``: a sample of each step's records through the loaders' transform.

Its report is what a load of the sampled records reports: proved against a real load of the
same lines (the objects cut where the sample stops) for every layout the reader takes, and
on a time series, from S3 for a Redshift pipeline, and without ever opening the warehouse.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import (
    ConfigurationError,
    Drift,
    Integer,
    Nested,
    Pipeline,
    Schema,
    SortedSources,
    StepDrift,
    StoreError,
    String,
    Timestamp,
    UnmappedPath,
    sample_drift,
)


@pytest.fixture
def event(base: type[Schema]) -> type[Schema]:
    class Event(base):  # type: ignore[valid-type,misc]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        n = Integer()
        created_at = Timestamp(key="createdAt")

        class child(Nested):
            name = String(20)

    return Event


def record(i: int) -> dict[str, Any]:
    """Records whose keys drift as ``i`` grows: a renamed key, new keys, nested ones."""
    out: dict[str, Any] = {"id": f"r{i}", "n": i if i % 5 else "x"}  # every 5th: rejected
    out["createdAt" if i < 4 else "created_at"] = "2024-01-02 03:04:05"
    if i % 2:
        out["colour"] = "red"
    out["child"] = {"name": f"c{i}", **({"age": i} if i % 3 == 0 else {})}
    if i % 4 == 1:
        out["extra"] = {"deep": {"er": i}}
    return out


def ndjson(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r) for r in records]


def pretty(records: list[dict[str, Any]]) -> list[str]:
    return [line for r in records for line in json.dumps(r, indent=2).splitlines()]


def pairs(records: list[dict[str, Any]]) -> list[str]:
    """Two records on each line."""
    texts = [json.dumps(r) for r in records]
    return [" ".join(texts[i : i + 2]) for i in range(0, len(texts), 2)]


def ends(layout: str, records: list[dict[str, Any]]) -> list[int]:
    """The line each record ends on, in a layout."""
    if layout == "pairs":
        return [i // 2 + 1 for i in range(len(records))]
    if layout == "pretty":
        found, line = [], 0
        for r in records:
            line += len(json.dumps(r, indent=2).splitlines())
            found.append(line)
        return found
    return list(range(1, len(records) + 1))


def broken(records: list[dict[str, Any]]) -> list[str]:
    """One record a line, and a record cut off at the end of the object (rejected)."""
    return [*ndjson(records), '{"id": "cut off", "n": ']


#: How records are laid out in an object: "gzip" compresses it, "bom" starts it with a
#: byte-order mark.
LAYOUTS = {
    "ndjson": ndjson,
    "pretty": pretty,
    "pairs": pairs,
    "broken": broken,
    "gzip": ndjson,
    "bom": ndjson,
}


def write(path: Path, lines: list[str], layout: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode()
    if layout == "bom":
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(gzip.compress(data) if layout == "gzip" else data)


def loaded(folder: Path, lake: Path, schema: type[Schema]) -> Any:
    """What a real load of ``lake`` reports (into a fresh DuckDB in ``folder``)."""
    folder.mkdir(exist_ok=True)
    engine = sa.create_engine(f"duckdb:///{folder / 'twin.duckdb'}")
    try:
        return Pipeline(engine, store=lake).copy(schema, "events", max_errors=1000).run().steps[0]
    finally:
        engine.dispose()


def same(found: StepDrift, step: Any) -> None:
    """The sample reports what the load reports of the same records."""
    assert found.rows == step.rows_loaded
    assert found.rejects == step.rejects
    assert found.drift == step.drift
    assert found.warnings == step.warnings


@pytest.mark.duckdb
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("sample", [1000, 6, 3])
def test_the_sample_reports_what_a_load_of_its_lines_reports(
    tmp_path: Path, event: type[Schema], layout: str, sample: int
) -> None:
    suffix = ".json.gz" if layout == "gzip" else ".json"
    first, second = [record(i) for i in range(8)], [record(i) for i in range(8, 20)]
    lake, cut = tmp_path / "lake", tmp_path / "cut"
    read = 0  # records in the lines the sample reads
    for name, records in (("a", first), ("b", second)):
        lines = LAYOUTS[layout](records)
        write(lake / "events" / f"{name}{suffix}", lines, layout)
        # what the sample reads of it: its share of the sample, through the line where
        # the last record of that share ends
        share = sample // 2 + (name == "a" and sample % 2)
        upto = ends(layout, records)[share - 1] if share < len(records) else len(lines)
        write(cut / "events" / f"{name}{suffix}", lines[:upto], layout)
        read += share + (layout == "pairs" and share % 2)  # a pair's second comes too
    pipeline = Pipeline("duckdb:///unused.duckdb", store=lake).copy(event, "events")
    (found,) = sample_drift(pipeline, sample=sample).steps
    assert found.objects == [f"events/a{suffix}", f"events/b{suffix}"]
    assert found.objects_listed == 2
    same(found, loaded(tmp_path, cut, event))
    if sample >= 20:  # the whole lake: exactly what a load of the lake reports
        assert found.rows + len(found.rejects) == 20 + 2 * (layout == "broken")
        assert found.drift.unmapped[0] == UnmappedPath("created_at", 13, 13 / 16)
    else:
        assert found.rows + len(found.rejects) == read


@pytest.mark.duckdb
def test_a_record_open_where_the_sample_stops_is_left_out_not_rejected(
    tmp_path: Path, event: type[Schema]
) -> None:
    # the first record ends on line 1, where the second starts; the sample stops there
    text = '{"id": "a", "n": 1} {"id": "b",\n "n": 2, "new": 1}\n{"id": "c", "new": 2}\n'
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "a.json").write_text(text)
    pipeline = Pipeline("duckdb:///unused.duckdb", store=tmp_path).copy(event, "events")
    (found,) = sample_drift(pipeline, sample=1).steps
    assert (found.rows, found.rejects) == (1, [])
    assert found.drift == Drift((), ("created_at", "child_name"))
    (whole,) = sample_drift(pipeline, sample=3).steps
    assert (whole.rows, whole.rejects) == (3, [])
    assert whole.drift.unmapped == (UnmappedPath("new", 2, 2 / 3),)


@pytest.mark.duckdb
def test_objects_are_spread_over_the_listing_and_options_apply(
    tmp_path: Path, base: type[Schema]
) -> None:
    class Short(base):  # type: ignore[valid-type,misc]
        __tablename__ = "short"
        id = String(2)

    for part in range(12):
        key = f"events/p{part:02d}.json"
        write(tmp_path / key, ndjson([{"id": f"{part:03d}", "p": part}] * 3), "ndjson")
    pipeline = Pipeline("duckdb:///unused.duckdb", store=tmp_path)
    (cut,) = sample_drift(pipeline.copy(Short, "events", truncate_columns=True), sample=10).steps
    # 10 of the 12 objects, first and last included, one record each
    assert cut.objects_listed == 12
    assert len(cut.objects) == 10
    assert (cut.objects[0], cut.objects[-1]) == ("events/p00.json", "events/p11.json")
    assert (cut.rows, cut.rejects) == (10, [])
    assert cut.drift == Drift((UnmappedPath("p", 10, 1.0),), ())
    (strict,) = sample_drift(pipeline.copy(Short, "events"), sample=10).steps
    assert (strict.rows, len(strict.rejects)) == (0, 10)
    assert strict.rejects[0].reason.startswith("String length exceeds DDL length")


@pytest.mark.duckdb
def test_time_series_steps_sample_their_partitions(tmp_path: Path, event: type[Schema]) -> None:
    for day, records in (("2024-01-01", [record(1)]), ("2024-01-02", [record(6)])):
        write(tmp_path / "events" / day / "part-0.json", ndjson(records), "ndjson")
    write(tmp_path / "events" / "2023-12-31" / "part-0.json", ndjson([record(3)]), "ndjson")
    sources = SortedSources(tmp_path, "events", start="2024-01-01")
    pipeline = Pipeline("duckdb:///unused.duckdb", store=tmp_path).time_series(
        event, sources, series_column="created_at"
    )
    (found,) = sample_drift(pipeline).steps
    assert (found.label, found.source, found.objects_listed) == (
        "time series events",
        "events/",
        2,
    )
    assert found.objects == ["events/2024-01-01/part-0.json", "events/2024-01-02/part-0.json"]
    assert found.drift.unmapped == (
        UnmappedPath("child.age", 1, 0.5),
        UnmappedPath("colour", 1, 0.5),
        UnmappedPath("created_at", 1, 0.5),
        UnmappedPath("extra", 1, 0.5),
    )


@pytest.mark.s3
def test_a_redshift_pipeline_is_sampled_from_s3_without_its_warehouse(
    s3_bucket: str, event: type[Schema]
) -> None:
    import boto3

    body = "".join(json.dumps(record(i)) + "\n" for i in (1, 2, 3, 4))
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="raw/events/a.json", Body=body)
    # nothing listens on port 1: a connection would fail
    pipeline = Pipeline(
        "redshift+psycopg2://loader@127.0.0.1:1/dev", store=f"s3://{s3_bucket}/raw"
    ).copy(event, "events")
    (found,) = sample_drift(pipeline).steps
    assert (found.objects, found.rows) == (["events/a.json"], 4)
    assert found.drift.unmapped[:2] == (
        UnmappedPath("colour", 2, 0.5),
        UnmappedPath("child.age", 1, 0.25),
    )


@pytest.mark.duckdb
def test_steps_are_reported_in_order_as_they_are_done(tmp_path: Path, event: type[Schema]) -> None:
    write(tmp_path / "events" / "a.json", ndjson([record(1)]), "ndjson")
    pipeline = (
        Pipeline("duckdb:///unused.duckdb", store=tmp_path)
        .copy(event, "events")
        .sql("SELECT 1")
        .copy(event, "evnts", mode="replace")
    )
    seen: list[str] = []
    report = sample_drift(pipeline, on_step=lambda step: seen.append(step.label))
    assert seen == ["copy events (incremental)", "copy events (replace)"]
    assert [s.label for s in report.steps] == seen
    empty = report.steps[1]
    assert (empty.objects_listed, empty.objects, empty.rows, empty.drift) == (0, [], 0, Drift())
    assert empty.warnings == ["nothing under 'evnts/'; did you mean 'events/'?"]
    nothing = Pipeline("duckdb:///unused.duckdb", store=tmp_path).sql("SELECT 1")
    assert str(sample_drift(nothing)) == "(no steps that load objects)"


@pytest.mark.parametrize("sample", [0, -1, True, 2.5])
def test_a_bad_sample_size_is_a_configuration_error(
    tmp_path: Path, event: type[Schema], sample: Any
) -> None:
    pipeline = Pipeline("duckdb:///unused.duckdb", store=tmp_path).copy(event, "events")
    with pytest.raises(ConfigurationError, match=f"sample={sample!r}"):
        sample_drift(pipeline, sample=sample)


@pytest.mark.duckdb
def test_nothing_is_left_behind(
    tmp_path: Path, event: type[Schema], monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    lake = tmp_path / "lake"
    write(lake / "events" / "a.json", pretty([record(i) for i in range(5)]), "pretty")
    write(lake / "events" / "b.json.gz", ndjson([record(7)]), "gzip")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    pipeline = Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=lake).copy(event, "events")
    assert sample_drift(pipeline, sample=3).steps[0].rows == 2
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_an_object_that_cannot_be_decompressed_is_a_store_error_naming_it(
    tmp_path: Path, event: type[Schema]
) -> None:
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "a.json.gz").write_bytes(b'{"id": "not gzip"}\n')
    pipeline = Pipeline("duckdb:///unused.duckdb", store=tmp_path).copy(event, "events")
    with pytest.raises(StoreError, match=r"cannot read 'events/a.json.gz' as gzip data: "):
        sample_drift(pipeline)
