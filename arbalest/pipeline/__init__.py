"""Pipelines: steps over a warehouse, and what running them returns.

- ``builder``: ``Pipeline``, the immutable builder; each step is checked as it is added.
- ``steps``: ``CopyStep``, ``SQLStep``, ``TimeSeriesStep``, and the checks that build them.
- ``runner``: ``run``, ``validate`` and ``plan``: transactions, locks, the journal, errors.
- ``description``: ``RunDescription``, what the runner needs of a pipeline (it never imports
  ``builder``).
- ``result``: ``RunResult``, ``StepResult``, ``Plan``, ``PlanStep`` and how they print.
- ``evolution``: the target table against its class; what ``evolve=True`` changes.
- ``engines``: engines from warehouse URLs (the installed driver, no pooled connections).
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
