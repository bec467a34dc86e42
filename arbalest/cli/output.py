"""What the command line shows: a progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from arbalest.journal import TargetStatus
from arbalest.pipeline import RunResult, StepResult
from arbalest.stores.base import ObjectInfo

__all__ = ["BarProgress", "LineProgress", "configure_logging", "result_table", "status_table"]


def configure_logging(console: Console, *, verbose: bool, quiet: bool) -> None:
    """Arbalest's log lines on stderr: INFO with --verbose, errors only with --quiet."""
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    handler = logging.StreamHandler(console.file)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("arbalest")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


class LineProgress:
    """Plain lines, for logs: one when a step starts and one when it ends."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        self.console.print(
            f"{label}: {objects} object(s) to load, {nbytes:,} bytes",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        detail = (
            f"{result.objects_loaded} object(s), {result.rows_loaded:,} row(s), "
            f"{result.rows_rejected:,} rejected, "
            if result.target
            else ""
        )
        self.console.print(
            f"{result.label}: done, {detail}{result.seconds:.2f} s",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


class BarProgress:
    """A progress bar per copy step, on a terminal."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    @staticmethod
    def create(console: Console) -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )

    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        self.tasks[label] = self.progress.add_task(label, total=objects)

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        if label in self.tasks:
            self.progress.advance(self.tasks[label])

    def step_finished(self, result: StepResult) -> None:
        if result.label in self.tasks:
            self.progress.remove_task(self.tasks.pop(result.label))


def result_table(result: RunResult, *, name: str | None = None) -> Table:
    """The summary of a run: one row per step, then the totals; titled with the
    pipeline's ``name``, if it has one."""
    title = "validated (rolled back)" if result.validated else "run"
    table = Table(title=f"{name}: {title}" if name else title)
    for name in ("step", "objects", "rows", "rejected", "seconds"):
        table.add_column(name, justify="left" if name == "step" else "right")
    for step in result.steps:
        copy = step.target is not None
        table.add_row(
            step.label,
            str(step.objects_loaded) if copy else "",
            f"{step.rows_loaded:,}" if copy else "",
            f"{step.rows_rejected:,}" if copy else "",
            f"{step.seconds:.2f}",
        )
    table.add_row(
        "total", "", f"{result.rows_loaded:,}", f"{result.rows_rejected:,}", f"{result.seconds:.2f}"
    )
    return table


def status_table(statuses: list[TargetStatus], targets: list[str]) -> list[list[str]]:
    """Rows of the status: one per target, in the pipeline's order."""
    found = {s.target: s for s in statuses}
    rows = []
    for target in targets:
        status = found.get(target)
        if status is None:
            rows.append([target, "0", "0", "0", "never"])
        else:
            when = (
                status.last_loaded_at.isoformat(timespec="seconds")
                if status.last_loaded_at
                else "never"
            )
            rows.append(
                [
                    target,
                    str(status.objects),
                    str(status.rows_loaded),
                    str(status.rows_rejected),
                    when,
                ]
            )
    return rows
