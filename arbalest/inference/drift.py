"""The drift of a pipeline's sources, from a sample: ``arbalest.sample_drift`` and
``arbalest drift``.

For each step that loads objects (copy and time series steps), a sample of its source's
records goes through the transform the loaders use (``loading.transform``), so the report is
what a load of those records would put in ``StepResult.drift``. The sample is chosen as
``arbalest infer`` chooses one: up to ``sample`` records from up to 10 objects spread over
the listing, first and last included, about as many from each. Of each object, the lines up
to the one where its share of the sample ends are cut into chunks by the loaders' reader; the
last chunk of an object read only in part is marked as not the object's last, so a record
still open where the lines stop is left out, as a load would leave it for the next chunk.

Read-only: the warehouse is never connected to (the transform runs in a private in-memory
DuckDB), and nothing is written but chunk files in a scratch folder that is removed at the
end.
"""

from __future__ import annotations

import io
import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import zstandard

from arbalest.backends.base import BATCH_BYTES
from arbalest.errors import ConfigurationError, StoreError
from arbalest.inference.sample import DEFAULT_SAMPLE, Readable, choose, records_of
from arbalest.loading import scratch
from arbalest.loading.converter import batches
from arbalest.loading.drift import Drift, KeyShape, ReadObjects, drift_report, percent
from arbalest.loading.reader import Chunk, compression_of, open_decompressed, spool_stream
from arbalest.loading.records import Carry
from arbalest.loading.rejects import Reject
from arbalest.loading.transform import Transform, connect_private
from arbalest.pipeline import Pipeline
from arbalest.pipeline._warnings import empty_source, unfilled_columns
from arbalest.pipeline.result import FORMAT, reject_dict
from arbalest.pipeline.steps import CopyStep, TimeSeriesStep
from arbalest.schema._build import ColumnSpec
from arbalest.stores.base import ObjectInfo, ObjectStore, folder_prefix

__all__ = ["DriftSample", "StepDrift", "sample_drift"]

logger = logging.getLogger(__name__)

#: Rejected records the text lists per step (``to_dict()`` has them all).
SHOWN_REJECTS = 5


@dataclass(frozen=True)
class StepDrift:
    """The drift of one step, from a sample of its source's records.

    Attributes:
        label: The step's label, as in ``StepResult.label``.
        target: The table the step loads.
        source: The prefix the step reads (a time series: its sources' prefix, if they
            have one).
        objects_listed: The objects under the source (for a time series: in its
            partitions).
        objects: The keys of the objects the sample was read from.
        rows: The records of the sample that convert: a load would load them. Each
            ``UnmappedPath.share`` of ``drift`` is over these.
        rejects: The records of the sample that a load would reject.
        drift: The JSON key paths of the sample that no column reads, and the columns no
            record of the sample filled: what ``StepResult.drift`` would say of a load of
            these records.
        warnings: As ``StepResult.warnings``: a source with no objects under it, and each
            column no record of the sample filled, with near-miss keys.
        seconds: Wall time of the step's sample.
    """

    label: str
    target: str
    source: str
    objects_listed: int
    objects: list[str]
    rows: int
    rejects: list[Reject]
    drift: Drift
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The step as plain JSON values (see ``DriftSample.to_dict``)."""
        return {
            "label": self.label,
            "target": self.target,
            "source": self.source,
            "objects_listed": self.objects_listed,
            "objects_sampled": list(self.objects),
            "rows_sampled": self.rows,
            "rows_rejected": len(self.rejects),
            "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings),
            "drift": self.drift.to_dict(),
            "rejects": [reject_dict(r) for r in self.rejects],
        }

    def lines(self) -> list[str]:
        """The step as ``str(DriftSample)`` prints it: a heading, then one line per
        finding."""
        where = f"under {self.source!r}" if self.source else "in the store"
        out = [
            f"{self.label}: {self.rows:,} record(s) from {len(self.objects)} of "
            f"{self.objects_listed} object(s) {where}, {len(self.rejects):,} rejected"
        ]
        width = max((len(u.path) for u in self.drift.unmapped), default=0)
        counts = max((len(f"{u.records:,}") for u in self.drift.unmapped), default=0)
        out += [
            f"  unmapped  {u.path.ljust(width)}  {u.records:>{counts},} record(s)  "
            f"{percent(u.share)}"
            for u in self.drift.unmapped
        ]
        out += [f"  unfilled  {name}" for name in self.drift.unfilled]
        if self.rows and not self.drift.unmapped and not self.drift.unfilled:
            out.append("  no drift: every key is read by a column, every column was filled")
        out += [f"  warning: {warning}" for warning in self.warnings]
        out += [f"  rejected: {reject}" for reject in self.rejects[:SHOWN_REJECTS]]
        if len(self.rejects) > SHOWN_REJECTS:
            out.append(f"  ... and {len(self.rejects) - SHOWN_REJECTS:,} more rejected")
        return out


@dataclass(frozen=True)
class DriftSample:
    """The drift of each step of a pipeline that loads objects, from a sample of its
    source (what ``sample_drift`` returns).

    ``str(sample)`` is the report ``arbalest drift`` prints; ``to_dict()`` the document of
    ``arbalest drift --json``.

    Attributes:
        steps: One ``StepDrift`` per copy or time series step, in order (SQL steps read no
            objects and are left out).
        sample: The records asked for per step, at most.
    """

    steps: list[StepDrift]
    sample: int

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON values, as ``arbalest drift --json`` prints it (the
        layout is documented in docs/cli.md)::

            {"format": 1, "command": "drift", "sample": 1000, "steps": [{"label": ...,
             "target": "events", "source": "events/", "objects_listed": 2,
             "objects_sampled": ["events/a.json", "events/b.json"], "rows_sampled": 4,
             "rows_rejected": 0, "seconds": 0.02, "warnings": [], "drift": {"unmapped":
             [{"path": "colour", "records": 2, "share": 0.5}], "unfilled": []},
             "rejects": []}]}
        """
        return {
            "format": FORMAT,
            "command": "drift",
            "sample": self.sample,
            "steps": [s.to_dict() for s in self.steps],
        }

    def __str__(self) -> str:
        if not self.steps:
            return "(no steps that load objects)"
        return "\n".join(line for step in self.steps for line in step.lines())


def sample_drift(
    pipeline: Pipeline,
    *,
    sample: int = DEFAULT_SAMPLE,
    on_step: Callable[[StepDrift], None] | None = None,
) -> DriftSample:
    """Report how a sample of each step's records differs from its class, without loading.

    For each copy and time series step, up to ``sample`` records of its source are read
    from up to 10 objects spread over the listing (first and last included, so keys that
    only newer objects have are seen) and converted by the loaders' own transform: the
    report is what ``StepResult.drift`` would say of a load of those records. The whole
    source is sampled, whatever the journal says was loaded; the warehouse is never
    connected to, so this works before the first run, on any warehouse (Redshift too,
    whose loads report no drift), and writes nothing.

    Example:
        ```python
        import arbalest
        from jobs import pipeline  # a module of yours that builds the pipeline

        report = arbalest.sample_drift(pipeline, sample=500)
        for step in report.steps:
            print(step.label, [u.path for u in step.drift.unmapped])
        ```

    Args:
        pipeline: The pipeline whose steps are sampled.
        sample: How many records to read per step, at most.
        on_step: Called with each step's report as soon as it is done (the command prints
            a progress line with it).

    Returns:
        One ``StepDrift`` per step that loads objects, in order.

    Raises:
        ConfigurationError: ``sample`` is not a positive number.
        StoreError: The objects cannot be listed or read.
    """
    given: object = sample  # from code that is not type-checked, anything
    if isinstance(given, bool) or not isinstance(given, int) or given < 1:
        raise ConfigurationError(f"sample={sample!r}: give a number of records, 1 or more")
    steps: list[StepDrift] = []
    for step in pipeline.steps:
        started = time.monotonic()
        if isinstance(step, CopyStep):
            store = pipeline.store
            assert store is not None  # checked when the step was added
            copy, source = step, folder_prefix(step.source)
            listing = list(store.list(step.source, exclude=pipeline.metadata))
            missing = empty_source(store, step.source)
        elif isinstance(step, TimeSeriesStep):
            store, copy = step.sources.store, step.copy
            prefix = getattr(step.sources, "prefix", None)
            source = folder_prefix(prefix) if isinstance(prefix, str) else ""
            partitions = step.sources.partitions()
            listing = [
                info for p in partitions for info in store.list(p, exclude=pipeline.metadata)
            ]
            missing = (
                f"no objects in the sources' {len(partitions)} partition(s)"
                if partitions
                else empty_source(store, source)
            )
        else:
            continue
        found = _sample_step(step.label, store, listing, copy, sample)
        warnings = [] if listing else [missing]
        if found.rows:
            specs = copy.schema.__fields__
            warnings += unfilled_columns(specs, found.filled, store, found.infos, copy.compression)
        result = StepDrift(
            step.label,
            step.target,
            source,
            len(listing),
            [info.key for info in found.infos],
            found.rows,
            found.rejects,
            drift_report(found.objects, found.shapes, found.filled, found.rows),
            warnings,
            time.monotonic() - started,
        )
        logger.info(
            "%s: %d record(s) sampled from %d object(s), %d rejected",
            step.label,
            result.rows,
            len(result.objects),
            len(result.rejects),
        )
        steps.append(result)
        if on_step is not None:
            on_step(result)
    return DriftSample(steps, sample)


@dataclass
class _Found:
    """What the transform made of one step's sample."""

    objects: ReadObjects
    infos: list[ObjectInfo] = field(default_factory=list)
    rows: int = 0
    rejects: list[Reject] = field(default_factory=list)
    filled: dict[str, int] = field(default_factory=dict)
    shapes: Counter[KeyShape] = field(default_factory=Counter)


def _sample_step(
    label: str, store: ObjectStore, listing: Sequence[ObjectInfo], copy: CopyStep, sample: int
) -> _Found:
    specs: Sequence[ColumnSpec] = copy.schema.__fields__
    chosen = choose([info for info in listing if info.size > 0])
    workdir = scratch.make("drift")
    # a private in-memory DuckDB, as in a load; one thread is plenty for a sample
    transform = Transform(specs, copy.options, connect_private(threads=1))
    found = _Found(transform.objects, filled={spec.name: 0 for spec in specs})
    try:
        chunks: list[Chunk] = []
        taken = 0
        for number, info in enumerate(chosen):
            left = sample - taken
            if left <= 0:
                break
            quota = math.ceil(left / (len(chosen) - number))
            kind = compression_of(info.key, copy.compression)
            data, whole, records = _first_records(store, info, quota, kind)
            taken += records
            found.infos.append(info)
            for chunk in spool_stream(io.BytesIO(data), info, number, workdir):
                # lines cut short of the object's end: a record open there is not the
                # object's last, so it is left out, not rejected as cut off
                chunk.last = chunk.last and whole
                chunk.seq = len(chunks)  # its place in the sample, as a load numbers them
                chunks.append(chunk)
        carries: dict[int, Carry] = {}
        for group in batches(iter(chunks), BATCH_BYTES):
            batch = transform.convert(group)
            transform.finish(batch, carries)  # in order: records may span chunks
            found.rows += batch.total_rows
            found.rejects += batch.rejects
            for spec, count in zip(specs, batch.filled, strict=True):
                found.filled[spec.name] += count
            found.shapes.update(batch.shapes)
            for chunk in group:
                chunk.discard()
    finally:
        try:
            transform.close()
            transform.con.close()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    logger.debug("%s: sampled %s", label, ", ".join(info.key for info in found.infos))
    return found


class _Tee:
    """A byte stream that keeps what was read from it."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.data = bytearray()
        self.ended = False

    def read(self, size: int = -1, /) -> bytes:
        block = self._stream.read(size)
        if not block and size != 0:
            self.ended = True
        self.data += block
        return block


def _first_records(
    store: ObjectStore, info: ObjectInfo, quota: int, compression: str | None
) -> tuple[bytes, bool, int]:
    """An object's first lines (decompressed, as they are), through the line where its
    ``quota``-th record ends; whether that is all of the object; and how many records
    (and stretches that are not JSON) those lines hold, at most ``quota``."""
    try:
        with store.open(info.key) as raw, open_decompressed(raw, compression) as stream:
            tee = _Tee(stream)
            count = 0
            for line, _ in records_of(tee):
                count += 1
                if count >= quota:
                    data, whole = _through_line(tee, line)
                    return data, whole, count
            return bytes(tee.data), True, count
    except (OSError, EOFError, zstandard.ZstdError) as exc:
        raise StoreError(
            f"cannot read {info.key!r} as {compression or 'uncompressed'} data: {exc}"
        ) from exc


def _through_line(tee: _Tee, line: int) -> tuple[bytes, bool]:
    """The bytes read so far through the end of line ``line`` (1-based), and whether they
    are the whole object."""
    data = tee.data
    end = -1
    for _ in range(line):
        end = data.find(b"\n", end + 1)
        if end < 0:  # the object's last line, with no line end: it was read to its end
            return bytes(data), tee.ended
    return bytes(data[: end + 1]), tee.ended and end + 1 == len(data)
