"""OpenTelemetry spans and metrics of a run, when ``opentelemetry-api`` is installed.

A run is one span (``arbalest.run``, or ``arbalest.validate``), each step a span under it
(``arbalest.step``), each object a span under its step (``arbalest.object``) and each piece
of an object read and converted together (a chunk: about 2 MB of its lines, a whole local
object of up to 8 MB, or about 4 MB of Parquet or CSV rows) a span under its object
(``arbalest.batch``). Alongside: counters of rows loaded and rejected, bytes and
objects loaded, and a histogram of step durations (a validation records no metrics: it
loads nothing). Tracer and meter are named ``arbalest``, with Arbalest's version; the
providers are the global ones unless the run is given its own.

Everything is hooked where the run already reports progress (``runner`` and the
``Progress`` events of ``copying``), per step, object and batch, never per row. Object and
batch spans are made when their step ends, from the times the events were seen: a batch
covers the time since the event before it, as the load loop sees it (reading, converting
and writing overlap across batches). Without ``opentelemetry-api`` (or with providers that
record nothing), ``run`` yields a switched-off telemetry that wraps nothing.

No credential reaches an attribute: the values are names, keys, counts and ids, and an
error's message and traceback are redacted as the run's errors are (``connection``).
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from arbalest.pipeline.connection import redact
from arbalest.pipeline.copying import Progress
from arbalest.pipeline.result import RunResult, StepResult
from arbalest.pipeline.steps import CopyStep, SQLStep, TimeSeriesStep
from arbalest.stores.base import ObjectInfo

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
except ImportError:  # the extra is not installed: telemetry is off
    AVAILABLE = False
else:
    AVAILABLE = True

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from arbalest.backends.base import LoadResult
    from arbalest.pipeline.description import RunDescription

__all__ = ["AVAILABLE", "NAME", "RunTelemetry", "StepTelemetry", "run"]

#: The tracer's and the meter's name.
NAME: Final = "arbalest"

#: ``db.system.name`` per SQLAlchemy dialect (OpenTelemetry's names where it has one).
_SYSTEMS: Final = {"postgresql": "postgresql", "redshift": "aws.redshift", "duckdb": "duckdb"}


def _version() -> str:
    # Written once, in the package's __init__, which has run before any of its modules; read
    # from there, as importing it would import every layer (the builder too) from here.
    return str(sys.modules["arbalest"].__version__)


def _kind(step: CopyStep | SQLStep | TimeSeriesStep) -> str:
    if isinstance(step, CopyStep):
        return "copy"
    return "time_series" if isinstance(step, TimeSeriesStep) else "sql"


class StepTelemetry:
    """A step's telemetry: switched off, this class itself does nothing."""

    def loaded(self, result: LoadResult) -> None:
        """What the step's backend loaded (per object: rows, rejects, the warehouse's id)."""

    def finished(self, result: StepResult) -> None:
        """The step's figures, once it succeeded."""


_OFF_STEP: Final = StepTelemetry()


class RunTelemetry:
    """A run's telemetry: switched off, this class itself does nothing and wraps nothing."""

    def listening(self, listener: Progress) -> Progress:
        """The listener the run reports progress to (``listener`` itself when off)."""
        return listener

    @contextlib.contextmanager
    def step(self, step: CopyStep | SQLStep | TimeSeriesStep) -> Iterator[StepTelemetry]:
        """The step's span, current inside; an error leaving it is recorded (redacted)."""
        yield _OFF_STEP

    def finished(self, result: RunResult) -> None:
        """The run's figures, once every step succeeded."""


_OFF: Final = RunTelemetry()


@contextlib.contextmanager
def run(
    pipeline: RunDescription,
    *,
    validate: bool,
    secrets: Sequence[str],
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Iterator[RunTelemetry]:
    """The run's span, current inside (so that spans of other instrumentation nest under
    it), and its telemetry; switched off when ``opentelemetry-api`` is not installed.

    Args:
        pipeline: The run.
        validate: A validation (``arbalest.validate`` span, no metrics).
        secrets: What ``redact`` hides in error messages (``connection.secrets_of``).
        tracer_provider: Where spans go (``None``: the global provider).
        meter_provider: Where metrics go (``None``: the global provider).
    """
    if not AVAILABLE:
        yield _OFF
        return
    tracer = otel_trace.get_tracer(NAME, _version(), tracer_provider)
    url = pipeline.engine.url
    common: dict[str, str] = {"db.system.name": _SYSTEMS.get(url.get_backend_name(), "other_sql")}
    if pipeline.name:
        common["arbalest.pipeline"] = pipeline.name
    attributes: dict[str, Any] = dict(common)
    if url.database:
        attributes["db.namespace"] = url.database
    if url.host:
        attributes["server.address"] = url.host
    if url.port:
        attributes["server.port"] = url.port
    attributes["arbalest.steps"] = len(pipeline.steps)
    name = "arbalest.validate" if validate else "arbalest.run"
    with tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        meter = None if validate else otel_metrics.get_meter(NAME, _version(), meter_provider)
        telemetry = _Recording(span, tracer, meter, common, secrets)
        try:
            yield telemetry
        except BaseException as exc:
            _failed(span, exc, secrets)
            raise


def _error_type(exc: BaseException) -> str:
    """``error.type``: the exception's fully qualified class name."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def _failed(span: Span, exc: BaseException, secrets: Sequence[str]) -> None:
    """Mark the span failed with the error, its message and traceback redacted (the
    ``exception`` event that ``record_exception`` would add, without the chain: a cause
    may quote what the run's own message hides)."""
    message = redact(str(exc), secrets)
    span.add_event(
        "exception",
        {
            "exception.type": _error_type(exc),
            "exception.message": message,
            "exception.stacktrace": redact(
                "".join(traceback.format_exception(exc, chain=False)), secrets
            ),
        },
    )
    span.set_attribute("error.type", _error_type(exc))
    span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, message))


@dataclass
class _Object:
    """An object as the events showed it: when it started and ended, and its batches
    (start, end, bytes read, rows)."""

    info: ObjectInfo
    start: int
    end: int | None = None
    batches: list[tuple[int, int, int, int]] = field(default_factory=list)


class _Step(StepTelemetry):
    def __init__(
        self,
        run: _Recording,
        step: CopyStep | SQLStep | TimeSeriesStep,
        span: Span,
        attributes: dict[str, str],
    ) -> None:
        self.run, self.step, self.span, self.attributes = run, step, span, attributes
        self.last = time.time_ns()  # when the event before the next one was seen
        self.objects: dict[str, _Object] = {}
        self.result: LoadResult | None = None

    def _object(self, info: ObjectInfo) -> _Object:
        found = self.objects.get(info.key)
        if found is None:
            found = self.objects[info.key] = _Object(info, self.last)
        return found

    def chunk_loaded(self, info: ObjectInfo, nbytes: int, rows: int) -> None:
        now = time.time_ns()
        self._object(info).batches.append((self.last, now, nbytes, rows))
        self.last = now

    def object_loaded(self, info: ObjectInfo) -> None:
        now = time.time_ns()
        self._object(info).end = now
        self.last = now

    def loaded(self, result: LoadResult) -> None:
        self.result = result

    def finished(self, result: StepResult) -> None:
        if self.result is None:  # a SQL step: it loads nothing
            return
        size = sum(e.info.size for e in self.result.entries)
        self.span.set_attributes(
            {
                "arbalest.objects.loaded": result.objects_loaded,
                "arbalest.rows.loaded": result.rows_loaded,
                "arbalest.rows.rejected": result.rows_rejected,
                "arbalest.bytes": size,
            }
        )
        instruments = self.run.instruments
        if instruments is not None:
            instruments.rows.add(result.rows_loaded, self.attributes)
            instruments.rejected.add(result.rows_rejected, self.attributes)
            instruments.objects.add(result.objects_loaded, self.attributes)
            instruments.bytes.add(size, self.attributes)
        self.run.totals(result.objects_loaded, size)

    def close(self) -> None:
        """Make the spans of the objects and their batches, under the step's span."""
        entries = {e.info.key: e for e in self.result.entries} if self.result else {}
        tracer = self.run.tracer
        parent = otel_trace.set_span_in_context(self.span)
        for seen in self.objects.values():
            info = seen.info
            attributes: dict[str, Any] = {
                "arbalest.object.key": info.key,
                "arbalest.bytes": info.size,
            }
            entry = entries.get(info.key)
            if entry is not None:
                attributes["arbalest.rows.loaded"] = entry.rows_loaded
                attributes["arbalest.rows.rejected"] = entry.rows_rejected
                if entry.query_id is not None:
                    attributes["arbalest.query.id"] = entry.query_id
            end = seen.end if seen.end is not None else self.last
            span = tracer.start_span(
                "arbalest.object", parent, attributes=attributes, start_time=seen.start
            )
            inside = otel_trace.set_span_in_context(span)
            for number, (start, stop, nbytes, rows) in enumerate(seen.batches):
                tracer.start_span(
                    "arbalest.batch",
                    inside,
                    attributes={
                        "arbalest.batch.number": number,
                        "arbalest.batch.bytes": nbytes,
                        "arbalest.rows.loaded": rows,
                    },
                    start_time=start,
                ).end(stop)
            span.end(end)


@dataclass(frozen=True)
class _Instruments:
    rows: Any
    rejected: Any
    objects: Any
    bytes: Any
    duration: Any


class _Recording(RunTelemetry):
    def __init__(
        self,
        span: Span,
        tracer: Any,
        meter: Any,
        common: dict[str, str],
        secrets: Sequence[str],
    ) -> None:
        self.span, self.tracer, self.common, self.secrets = span, tracer, common, secrets
        self.recording = span.is_recording()
        self.current: _Step | None = None
        self.objects = 0
        self.bytes = 0
        self.instruments = (
            None
            if meter is None
            else _Instruments(
                rows=meter.create_counter(
                    "arbalest.rows.loaded", unit="{row}", description="Rows loaded"
                ),
                rejected=meter.create_counter(
                    "arbalest.rows.rejected", unit="{row}", description="Records rejected"
                ),
                objects=meter.create_counter(
                    "arbalest.objects.loaded", unit="{object}", description="Objects loaded"
                ),
                bytes=meter.create_counter(
                    "arbalest.bytes", unit="By", description="Bytes of the objects loaded"
                ),
                duration=meter.create_histogram(
                    "arbalest.step.duration", unit="s", description="How long a step took"
                ),
            )
        )

    def listening(self, listener: Progress) -> Progress:
        return _Listener(self, listener) if self.recording else listener

    @contextlib.contextmanager
    def step(self, step: CopyStep | SQLStep | TimeSeriesStep) -> Iterator[StepTelemetry]:
        label = redact(step.label, self.secrets)
        attributes = {**self.common, "arbalest.step": label}
        if step.target is not None:
            attributes["db.collection.name"] = step.target
        span_attributes: dict[str, Any] = {**attributes, "arbalest.step.kind": _kind(step)}
        if isinstance(step, CopyStep):
            span_attributes["arbalest.mode"] = step.mode
            span_attributes["arbalest.source"] = step.source
        started = time.monotonic()
        with self.tracer.start_as_current_span(
            "arbalest.step",
            attributes=span_attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            current = self.current = _Step(self, step, span, attributes)
            failed: BaseException | None = None
            try:
                yield current
            except BaseException as exc:
                failed = exc
                _failed(span, exc, self.secrets)
                raise
            finally:
                self.current = None
                current.close()
                if self.instruments is not None:
                    measured = dict(attributes)
                    if failed is not None:
                        measured["error.type"] = _error_type(failed)
                    self.instruments.duration.record(time.monotonic() - started, measured)

    def totals(self, objects: int, nbytes: int) -> None:
        self.objects += objects
        self.bytes += nbytes

    def finished(self, result: RunResult) -> None:
        self.span.set_attributes(
            {
                "arbalest.objects.loaded": self.objects,
                "arbalest.rows.loaded": result.rows_loaded,
                "arbalest.rows.rejected": result.rows_rejected,
                "arbalest.bytes": self.bytes,
            }
        )


class _Listener:
    """Passes the run's progress on to its listener, and to the current step's telemetry."""

    def __init__(self, telemetry: _Recording, listener: Progress) -> None:
        self.telemetry = telemetry
        self.listener = listener
        self.chunks = getattr(listener, "chunk_loaded", None)

    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        if self.telemetry.current is not None:
            # the objects' spans start here, after the listing and the journal's look-up
            self.telemetry.current.last = time.time_ns()
        self.listener.step_started(label, objects, nbytes)

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        if self.telemetry.current is not None:
            self.telemetry.current.object_loaded(info)
        self.listener.object_loaded(label, info)

    def chunk_loaded(self, label: str, info: ObjectInfo, nbytes: int, rows: int) -> None:
        if self.telemetry.current is not None:
            self.telemetry.current.chunk_loaded(info, nbytes, rows)
        if self.chunks is not None:
            self.chunks(label, info, nbytes, rows)

    def step_finished(self, result: StepResult) -> None:
        self.listener.step_finished(result)
