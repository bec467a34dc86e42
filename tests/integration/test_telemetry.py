"""OpenTelemetry: a run's spans (run, step, object, batch) and metrics, on DuckDB, PostgreSQL
and Redshift's stand-in, recorded by the SDK in memory; and a run without OpenTelemetry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.trace import StatusCode

from arbalest import Pipeline, PipelineError, Schema, SortedSources, String, Timestamp
from arbalest.loading import reader
from arbalest.pipeline import telemetry
from tests.fixtures.telemetry import Recorder

ROOT = Path(__file__).resolve().parents[2]


def lines(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """Two objects under ``events/``: ``a.json`` (40 records, 2 rejected: ``n`` is not a
    number) and ``b.json`` (3 records)."""
    folder = tmp_path / "lake" / "events"
    folder.mkdir(parents=True)
    records = [{"id": f"a{i}", "n": "x" if i in (7, 30) else i} for i in range(40)]
    (folder / "a.json").write_text(lines(records))
    (folder / "b.json").write_text(lines([{"id": f"b{i}", "n": i} for i in range(3)]))
    return tmp_path / "lake"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_a_run_is_a_tree_of_spans_with_the_run_results_figures(
    warehouse: sa.Engine,
    lake: Path,
    event: Any,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reader, "CHUNK_BYTES", 256)  # a.json is read in several batches
    monkeypatch.setattr(reader, "IN_PLACE_BYTES", 256)
    pipeline = (
        Pipeline(warehouse, store=str(lake), name="nightly")
        .copy(event, "events", max_errors=5)
        .sql("CREATE TABLE totals AS SELECT count(*) AS c FROM events")
    )
    result = pipeline.run(**recorder.providers)
    assert (result.rows_loaded, result.rows_rejected) == (41, 2)

    (run,) = recorder.spans("arbalest.run")
    assert run.parent is None
    system = {"duckdb": "duckdb", "postgresql": "postgresql"}[warehouse.dialect.name]
    assert run.attributes is not None
    assert run.attributes["db.system.name"] == system
    assert run.attributes["db.namespace"] == warehouse.url.database
    assert run.attributes["arbalest.pipeline"] == "nightly"
    assert run.attributes["arbalest.rows.loaded"] == result.rows_loaded
    assert run.attributes["arbalest.rows.rejected"] == result.rows_rejected
    size = sum(p.stat().st_size for p in (lake / "events").iterdir())
    assert run.attributes["arbalest.bytes"] == size
    assert run.status.status_code == StatusCode.UNSET

    copy, sql = recorder.children(run, "arbalest.step")
    assert copy.attributes is not None
    assert sql.attributes is not None
    assert copy.attributes["arbalest.step"] == result.steps[0].label
    assert copy.attributes["db.collection.name"] == "events"
    assert copy.attributes["arbalest.mode"] == "incremental"
    assert copy.attributes["arbalest.rows.loaded"] == 41
    assert copy.attributes["arbalest.rows.rejected"] == 2
    assert copy.attributes["arbalest.objects.loaded"] == 2
    assert sql.attributes["arbalest.step.kind"] == "sql"

    objects = recorder.children(copy, "arbalest.object")
    assert len(recorder.spans("arbalest.object")) == len(objects) == 2
    figures = {
        o.attributes["arbalest.object.key"]: (
            o.attributes["arbalest.rows.loaded"],
            o.attributes["arbalest.rows.rejected"],
            o.attributes["arbalest.bytes"],
        )
        for o in objects
        if o.attributes is not None
    }
    assert figures == {
        "events/a.json": (38, 2, (lake / "events" / "a.json").stat().st_size),
        "events/b.json": (3, 0, (lake / "events" / "b.json").stat().st_size),
    }
    for span in objects:
        # no query id where the warehouse has none for a load (PostgreSQL's COPY, DuckDB)
        assert span.attributes is not None
        assert "arbalest.query.id" not in span.attributes
        assert copy.start_time is not None
        assert copy.end_time is not None
        assert span.start_time is not None
        assert span.end_time is not None
        assert copy.start_time <= span.start_time <= span.end_time <= copy.end_time
    a = next(
        o
        for o in objects
        if o.attributes and o.attributes["arbalest.object.key"] == "events/a.json"
    )
    batches = recorder.children(a, "arbalest.batch")
    assert len(batches) > 1
    assert [b.attributes["arbalest.batch.number"] for b in batches if b.attributes] == list(
        range(len(batches))
    )
    # each batch's rows are those converted of it, rejects left out
    assert (
        sum(int(str(b.attributes["arbalest.rows.loaded"])) for b in batches if b.attributes) == 38
    )
    assert len(recorder.spans()) == 1 + 2 + 2 + len(recorder.spans("arbalest.batch"))

    assert recorder.total("arbalest.rows.loaded") == result.rows_loaded
    assert recorder.total("arbalest.rows.rejected") == result.rows_rejected
    assert recorder.total("arbalest.objects.loaded") == result.steps[0].objects_loaded
    assert recorder.total("arbalest.bytes") == size
    durations = [p for name, _, p in recorder.points() if name == "arbalest.step.duration"]
    assert sorted(p.count for p in durations) == [1, 1]
    assert sum(p.sum for p in durations) <= result.seconds + 0.5  # the steps' own time


@pytest.mark.duckdb
def test_an_incremental_rerun_counts_nothing_more(
    warehouse_duckdb: sa.Engine, lake: Path, event: Any, recorder: Recorder
) -> None:
    pipeline = Pipeline(warehouse_duckdb, store=str(lake)).copy(event, "events", max_errors=5)
    pipeline.run(**recorder.providers)
    again = pipeline.run(**recorder.providers)
    assert again.rows_loaded == 0
    assert len(recorder.spans("arbalest.run")) == 2
    assert len(recorder.spans("arbalest.object")) == 2  # the first run's only
    assert recorder.total("arbalest.rows.loaded") == 41
    assert recorder.total("arbalest.rows.rejected") == 2


@pytest.mark.postgres
def test_a_failing_step_is_an_error_span_and_its_duration_is_measured(
    warehouse_postgresql: sa.Engine, lake: Path, event: Any, recorder: Recorder
) -> None:
    pipeline = (
        Pipeline(warehouse_postgresql, store=str(lake))
        .copy(event, "events", max_errors=5)
        .sql("SELECT * FROM no_such_table")
    )
    with pytest.raises(PipelineError) as caught:
        pipeline.run(**recorder.providers)
    (run,) = recorder.spans("arbalest.run")
    copy, failed = recorder.children(run, "arbalest.step")
    assert copy.status.status_code == StatusCode.UNSET
    for span in (failed, run):
        assert span.status.status_code == StatusCode.ERROR
        assert span.status.description == str(caught.value)
        (exception,) = span.events
        assert exception.name == "exception"
        assert exception.attributes is not None
        assert exception.attributes["exception.type"] == "arbalest.errors.SQLStepError"
        assert exception.attributes["exception.message"] == str(caught.value)
        assert "no_such_table" in str(exception.attributes["exception.stacktrace"])
    assert failed.attributes is not None
    assert run.attributes is not None
    assert failed.attributes["error.type"] == "arbalest.errors.SQLStepError"
    assert "arbalest.rows.loaded" not in failed.attributes
    assert "arbalest.rows.loaded" not in run.attributes
    # the copy committed before the SQL step failed: its figures are counted
    assert recorder.total("arbalest.rows.loaded") == 41
    durations = {
        attributes.get("error.type"): point.count
        for name, attributes, point in recorder.points()
        if name == "arbalest.step.duration"
    }
    assert durations == {None: 1, "arbalest.errors.SQLStepError": 1}


@pytest.mark.duckdb
def test_too_many_rejects_leave_the_object_spans_without_figures(
    warehouse_duckdb: sa.Engine, lake: Path, event: Any, recorder: Recorder
) -> None:
    pipeline = Pipeline(warehouse_duckdb, store=str(lake)).copy(event, "events", max_errors=1)
    with pytest.raises(PipelineError, match="rejected"):
        pipeline.run(**recorder.providers)
    (step,) = recorder.spans("arbalest.step")
    assert step.status.status_code == StatusCode.ERROR
    assert step.attributes is not None
    assert step.attributes["error.type"] == "arbalest.errors.TooManyRejectsError"
    for span in recorder.children(step, "arbalest.object"):
        # rolled back: nothing was loaded, whatever was read
        assert span.attributes is not None
        assert "arbalest.rows.loaded" not in span.attributes
    assert recorder.total("arbalest.rows.loaded") == 0
    assert recorder.total("arbalest.rows.rejected") == 0


@pytest.mark.duckdb
def test_a_validation_is_traced_and_records_no_metrics(
    warehouse_duckdb: sa.Engine, lake: Path, event: Any, recorder: Recorder
) -> None:
    pipeline = Pipeline(warehouse_duckdb, store=str(lake)).copy(event, "events", max_errors=5)
    result = pipeline.validate(**recorder.providers)
    (validation,) = recorder.spans("arbalest.validate")
    assert validation.attributes is not None
    assert validation.attributes["arbalest.rows.loaded"] == result.rows_loaded == 41
    assert recorder.spans("arbalest.run") == []
    assert len(recorder.spans("arbalest.object")) == 2
    assert list(recorder.points()) == []


@pytest.mark.duckdb
def test_a_time_series_step_has_a_span_per_object_of_every_partition(
    warehouse_duckdb: sa.Engine, tmp_path: Path, base: type[Schema], recorder: Recorder
) -> None:
    class Visit(base):  # type: ignore[misc, valid-type]
        __tablename__ = "visits"
        id = String(36, primary_key=True)
        t = Timestamp()

    lake = tmp_path / "visits"
    for day, count in (("2026-12-01", 2), ("2026-12-02", 3)):
        (lake / "visits" / day).mkdir(parents=True)
        records = [{"id": f"{day}-{i}", "t": f"{day}T0{i}:00:00"} for i in range(count)]
        (lake / "visits" / day / "part.json").write_text(lines(records))
    sources = SortedSources(lake, "visits", warehouse=warehouse_duckdb)
    pipeline = Pipeline(warehouse_duckdb).time_series(Visit, sources, series_column="t")
    result = pipeline.run(**recorder.providers)
    assert result.rows_loaded == 5
    (step,) = recorder.spans("arbalest.step")
    assert step.attributes is not None
    assert step.attributes["arbalest.step.kind"] == "time_series"
    assert step.attributes["db.collection.name"] == "visits"
    objects = recorder.children(step, "arbalest.object")
    assert {
        o.attributes["arbalest.object.key"]: o.attributes["arbalest.rows.loaded"]
        for o in objects
        if o.attributes
    } == {"visits/2026-12-01/part.json": 2, "visits/2026-12-02/part.json": 3}
    assert recorder.total("arbalest.rows.loaded") == 5
    assert recorder.total("arbalest.objects.loaded") == 2


@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.parametrize("transport", ["psycopg2", "data-api"])
def test_redshift_objects_carry_their_copy_query_id(
    redshift_standin: Any, s3_bucket: str, event: Any, recorder: Recorder, transport: str
) -> None:
    import boto3

    from arbalest import RedshiftDataAPI
    from tests.fixtures.redshift_data import FakeDataAPI

    s3 = boto3.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="lake/events/a.json", Body=lines([{"id": "a", "n": 1}]))
    s3.put_object(Bucket=s3_bucket, Key="lake/events/b.json", Body=lines([{"id": "b", "n": 2}]))
    warehouse: Any = redshift_standin.engine
    if transport == "data-api":
        warehouse = RedshiftDataAPI(
            workgroup="analytics", database="test", client=FakeDataAPI(redshift_standin)
        )
    pipeline = Pipeline(
        warehouse,
        store=f"s3://{s3_bucket}/lake",
        iam_role="arn:aws:iam::123456789012:role/Loader",
    ).copy(event, "events")
    result = pipeline.run(**recorder.providers)
    assert result.rows_loaded == 2
    (run,) = recorder.spans("arbalest.run")
    assert run.attributes is not None
    assert run.attributes["db.system.name"] == "aws.redshift"
    objects = recorder.spans("arbalest.object")
    ids = {
        o.attributes["arbalest.object.key"]: o.attributes["arbalest.query.id"]
        for o in objects
        if o.attributes
    }
    with redshift_standin.engine.connect() as conn:
        # the ids the stand-in gave its COPYs (pg_last_copy_id() reads them), in order
        copies = conn.execute(sa.text("SELECT query FROM standin_copies ORDER BY query"))
        recorded = [str(q) for q in copies.scalars()]
    assert len(recorded) == 2
    assert ids == dict(zip(["events/a.json", "events/b.json"], recorded, strict=True))
    assert recorder.spans("arbalest.batch") == []  # Redshift reads the objects itself


@pytest.mark.duckdb
def test_switched_off_the_run_makes_no_span_and_wraps_no_listener(
    warehouse_duckdb: sa.Engine,
    lake: Path,
    event: Any,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(telemetry, "AVAILABLE", False)
    seen: list[object] = []

    class Listener:
        def step_started(self, label: str, objects: int, nbytes: int) -> None:
            pass

        def object_loaded(self, label: str, info: Any) -> None:
            seen.append(info.key)

        def step_finished(self, result: Any) -> None:
            pass

    listener = Listener()
    with telemetry.run(Pipeline(warehouse_duckdb), validate=False, secrets=[]) as off:
        assert off.listening(listener) is listener
    result = (
        Pipeline(warehouse_duckdb, store=str(lake))
        .copy(event, "events", max_errors=5)
        .run(progress=listener, **recorder.providers)
    )
    assert result.rows_loaded == 41
    assert seen == ["events/a.json", "events/b.json"]
    assert recorder.spans() == []
    assert list(recorder.points()) == []


SCRIPT = """
import json
import sys
if {blocked!r}:
    sys.modules["opentelemetry"] = None  # as if the extra were not installed
else:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the global provider, as an SDK's setup sets it

from arbalest import Integer, Pipeline, Schema, String
from arbalest.pipeline import telemetry

class Event(Schema):
    __tablename__ = "events"
    id = String(36, primary_key=True)
    n = Integer()

result = Pipeline({warehouse!r}, store={lake!r}).copy(Event, "events", max_errors=5).run()
print(telemetry.AVAILABLE, result.rows_loaded)
print(sorted(n for n, m in sys.modules.items() if n.startswith("opentelemetry") and m))
if not {blocked!r}:
    print(json.dumps(sorted(s.name for s in exporter.get_finished_spans())))
"""


@pytest.mark.duckdb
@pytest.mark.parametrize("blocked", [True, False], ids=["without-opentelemetry", "global"])
def test_runs_with_opentelemetry_absent_or_through_the_global_provider(
    tmp_path: Path, lake: Path, blocked: bool
) -> None:
    script = SCRIPT.format(
        blocked=blocked, warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}", lake=str(lake)
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    if blocked:
        assert printed == ["False 41", "[]"]
    else:
        assert printed[0] == "True 41"
        assert json.loads(printed[2]) == sorted(
            ["arbalest.run", "arbalest.step", "arbalest.object", "arbalest.object"]
            + ["arbalest.batch"] * 2
        )
