"""A step's warnings in the command's plain summary, and once only: not as a log line too."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from arbalest.cli.output import configure_logging, summary_text, warning_lines
from arbalest.pipeline import RunResult, StepResult

EMPTY = "nothing under 'evnts/'; did you mean 'events/'?"
STEP = StepResult("copy events (incremental)", "events", 0, 0, 0, [], 0.01, warnings=[EMPTY])


def test_the_summary_ends_with_one_line_per_warning() -> None:
    result = RunResult([STEP, StepResult("copy b (replace)", "b", 1, 2, 0, [], 0.02)])
    assert warning_lines(result) == [f"warning: copy events (incremental): {EMPTY}"]
    assert summary_text(result).endswith(f"\nwarning: copy events (incremental): {EMPTY}")
    assert str(result).endswith(f"\ncopy events (incremental): warning: {EMPTY}")


def test_the_log_leaves_a_step_warning_to_the_summary_and_keeps_others() -> None:
    out = io.StringIO()
    arbalest = logging.getLogger("arbalest")
    saved = (arbalest.handlers[:], arbalest.level, arbalest.propagate)
    configure_logging(Console(file=out), verbose=False, quiet=False)
    runner = logging.getLogger("arbalest.pipeline.runner")
    try:
        runner.warning("step: %s", EMPTY, extra={"arbalest_step_warning": True})
        runner.warning("something else")
    finally:
        arbalest.handlers[:], arbalest.level, arbalest.propagate = saved
    assert EMPTY not in out.getvalue()
    assert "something else" in out.getvalue()
