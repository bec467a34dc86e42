"""Pipelines: steps over a warehouse, and what running them returns.

- ``builder``: ``Pipeline``, the immutable builder; each step is checked as it is added.
- ``steps``: ``CopyStep``, ``SQLStep``, ``TimeSeriesStep``, and the checks that build them.
- ``runner``: ``run``, ``validate`` and ``plan``: the step loop, its transactions, and
  what a step raises turned into a ``PipelineError`` naming the step.
- ``copying``: copy and time-series steps, one transaction each: the journal, the target,
  its lock, the objects to load; and ``Progress``, what a run reports as it loads.
- ``telemetry``: OpenTelemetry spans and metrics of a run (``opentelemetry-api``, the
  ``otel`` extra; nothing without it).
- ``connection``: the run's warehouse connection (the driver's errors mapped to Arbalest's),
  and credentials kept out of messages.
- ``description``: ``RunDescription``, what the runner needs of a pipeline (it never imports
  ``builder``).
- ``result``: ``RunResult``, ``StepResult``, ``Plan``, ``PlanStep`` and how they print.
- ``evolution``: the target table against its class; what ``evolve=True`` changes.
- ``engines``: engines from warehouse URLs (the installed driver, no pooled connections).
- ``_code``: finding a pipeline in the user's file or module by ``FILE_OR_MODULE[:NAME]``
  (for the command line and the Airflow operator).
- ``_failures``: what a driver's error means (retryable, or what to fix).
- ``_warnings``: warnings for a source with no objects and a column no record filled.
"""

from __future__ import annotations

from arbalest.loading.formats import CsvOptions
from arbalest.pipeline.builder import Pipeline
from arbalest.pipeline.result import (
    Drift,
    Plan,
    PlanStep,
    Reject,
    RunResult,
    StepResult,
    UnmappedPath,
)
from arbalest.pipeline.runner import Progress

__all__ = [
    "CsvOptions",
    "Drift",
    "Pipeline",
    "Plan",
    "PlanStep",
    "Progress",
    "Reject",
    "RunResult",
    "StepResult",
    "UnmappedPath",
]
