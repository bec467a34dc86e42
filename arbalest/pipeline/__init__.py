"""Pipelines: steps over a warehouse, and what running them returns."""

from __future__ import annotations

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
