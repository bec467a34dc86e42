"""OpenTelemetry: the spans and metrics of a run, printed as a tree.

    pip install 'arbalest[otel]>=2' opentelemetry-sdk
    python examples/observability.py [FOLDER]

Writes three objects of clicks under FOLDER/lake (default ./arbalest-otel-demo): a large one
(about 8.8 MB of lines, so that it is read in five pieces of about 2 MB), a small one, and one
with two broken records. Loads them into FOLDER/warehouse.duckdb with OpenTelemetry's SDK recording
in memory, then prints the run's spans as a tree (with their main attributes) and the
metrics. An application would hand the SDK an exporter instead (OTLP, the console...); see
docs/observability.md.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from arbalest import BigInt, Pipeline, RunResult, Schema, String, TimestampTZ


class Click(Schema):
    """One click on a page."""

    __tablename__ = "page_clicks"

    id = String(36, primary_key=True)
    page = String(256)
    user_id = BigInt(key="userId")
    clicked_at = TimestampTZ(key="clickedAt")


#: What the tree shows of each span, besides its name and duration.
SHOWN = (
    "db.system.name",
    "db.collection.name",
    "arbalest.step",
    "arbalest.object.key",
    "arbalest.batch.number",
    "arbalest.batch.bytes",
    "arbalest.rows.loaded",
    "arbalest.rows.rejected",
    "arbalest.bytes",
)


def write_lake(lake: Path) -> None:
    """The three objects under ``lake/clicks/`` (left as they are if already there)."""
    folder = lake / "clicks"
    if folder.exists():
        return
    folder.mkdir(parents=True)

    def click(day: int, number: int) -> dict[str, Any]:
        return {
            "id": f"{day:02d}-{number:06d}",
            "page": f"/catalogue/garden/tools/{number % 997}?ref=newsletter-2026-12",
            "userId": 1_000_000 + number % 5_000,
            "clickedAt": f"2026-12-{day:02d}T{number % 24:02d}:{number % 60:02d}:00Z",
        }

    def write(name: str, records: Sequence[dict[str, Any]]) -> None:
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))

    write("2026-12-01.json", [click(1, n) for n in range(64_000)])
    write("2026-12-02.json", [click(2, n) for n in range(3)])
    broken = [click(3, 0), {**click(3, 1), "userId": "not a number"}, click(3, 2)]
    write("2026-12-03.json", [*broken, {**click(3, 3), "clickedAt": "yesterday"}])


def tree(spans: Sequence[ReadableSpan]) -> list[str]:
    """The spans as indented lines, children under their parent, in the order they began."""
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)
    lines: list[str] = []

    def show(parent: int | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
            attributes = span.attributes or {}
            shown = " ".join(f"{k}={attributes[k]!r}" for k in SHOWN if k in attributes)
            took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
            lines.append(f"{'  ' * depth}{span.name} ({took:.0f} ms) {shown}".rstrip())
            assert span.context is not None
            show(span.context.span_id, depth + 1)

    show(None, 0)
    return lines


def main(folder: str = "arbalest-otel-demo") -> tuple[RunResult, list[str], dict[str, int]]:
    """Load the lake with telemetry recorded in memory; the run's result, its span tree and
    its counters' totals."""
    root = Path(folder)
    write_lake(root / "lake")
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    metrics = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[metrics])
    warehouse = f"duckdb:///{root / 'warehouse.duckdb'}"
    with Pipeline(warehouse, store=str(root / "lake"), name="clicks") as pipeline:
        result = pipeline.copy(Click, "clicks", max_errors=5).run(
            tracer_provider=tracer_provider, meter_provider=meter_provider
        )
    totals: dict[str, int] = {}
    data = metrics.get_metrics_data()
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    # counters have a value; the step-time histogram, a count of steps
                    value = getattr(point, "value", None)
                    counted = value if value is not None else getattr(point, "count", 0)
                    totals[metric.name] = totals.get(metric.name, 0) + int(counted)
    return result, tree(spans.get_finished_spans()), totals


if __name__ == "__main__":
    run, lines, counted = main(*sys.argv[1:2])
    print("\n".join(lines))
    print()
    for name, total in counted.items():
        print(f"{name}: {total}")
