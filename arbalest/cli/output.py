"""What the command line shows: a progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import logging
from typing import Any, Final

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
from arbalest.pipeline.result import FORMAT
from arbalest.stores.base import ObjectInfo

__all__ = [
    "BarProgress",
    "LineProgress",
    "configure_logging",
    "result_table",
    "status_dict",
    "status_lines",
    "status_table",
    "summary_text",
]

WIDTH: Final = 80  # the summary and the status fit a terminal of 80 columns


def _said_by_the_command(record: logging.LogRecord) -> bool:
    """False for the runner's own INFO lines (a run starts, a step is done, a run is done):
    the command's progress lines and summary say the same, so -v says it once."""
    return not (record.name == "arbalest.pipeline.runner" and record.levelno == logging.INFO)


def configure_logging(console: Console, *, verbose: bool, quiet: bool) -> None:
    """Arbalest's log lines on stderr: DEBUG with --verbose, errors only with --quiet."""
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    handler = logging.StreamHandler(console.file)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_said_by_the_command)
    logger = logging.getLogger("arbalest")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


class LineProgress:
    """Plain lines, for logs: one when a step starts and one when it ends (and, with
    ``each_object``, one per object loaded)."""

    def __init__(self, console: Console, *, each_object: bool = False) -> None:
        self.console = console
        self.each_object = each_object

    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        self.console.print(
            f"{label}: {objects:,} object(s) to load, {nbytes:,} bytes",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        if self.each_object:
            self.console.print(
                f"{label}: loaded {info.key} ({info.size:,} bytes)",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    def step_finished(self, result: StepResult) -> None:
        detail = (
            f"{result.objects_loaded:,} object(s), {result.rows_loaded:,} row(s), "
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


def _summary_rows(result: RunResult) -> list[list[str]]:
    """The cells of a run's summary: one row per step, then the totals (``1,234``)."""
    rows = [
        [
            s.label,
            f"{s.objects_loaded:,}" if s.target else "",
            f"{s.rows_loaded:,}" if s.target else "",
            f"{s.rows_rejected:,}" if s.target else "",
            f"{s.seconds:.2f}",
        ]
        for s in result.steps
    ]
    rows.append(
        [
            "total",
            "",
            f"{result.rows_loaded:,}",
            f"{result.rows_rejected:,}",
            f"{result.seconds:.2f}",
        ]
    )
    return rows


_SUMMARY: Final = ["step", "objects", "rows", "rejected", "seconds"]


def result_table(result: RunResult, *, name: str | None = None) -> Table:
    """The summary of a run: one row per step, then the totals; titled with the
    pipeline's ``name``, if it has one. It fits WIDTH columns: a long step label is cut in
    the middle, the numbers never."""
    title = "validated (rolled back)" if result.validated else "run"
    table = Table(title=f"{name}: {title}" if name else title)
    rows = _summary_rows(result)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(_SUMMARY)]
    # each cell has a space either side; one border before each column and one at the end
    room = WIDTH - sum(w + 2 for w in widths[1:]) - 2 - (len(widths) + 1)
    step_width = max(len(_SUMMARY[0]), min(widths[0], room))
    table.add_column(_SUMMARY[0], justify="left", no_wrap=True, max_width=step_width)
    for header, width in zip(_SUMMARY[1:], widths[1:], strict=True):
        table.add_column(header, justify="right", no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(_cut(row[0], step_width), *row[1:])
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
                    f"{status.objects:,}",
                    f"{status.rows_loaded:,}",
                    f"{status.rows_rejected:,}",
                    when,
                ]
            )
    return rows


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: a copy's label keeps its start and its
    ``(mode)``, with ``...`` between; any other loses its end."""
    if len(text) <= width:
        return text
    mode = text.rfind(" (")
    tail = text[mode:] if text.endswith(")") and mode > 0 else ""
    if len(tail) > (width - 3) // 2:
        tail = ""
    return text[: width - 3 - len(tail)] + "..." + tail


def _columns(headers: list[str], rows: list[list[str]], left: set[int], *, fit: bool) -> list[str]:
    """Aligned columns two spaces apart; with ``fit``, column 0 is cut to keep every line
    within WIDTH."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    if fit:
        room = WIDTH - sum(widths[1:]) - 2 * (len(widths) - 1)
        widths[0] = max(len(headers[0]), min(widths[0], room))
    lines = []
    for row in [headers, ["-" * w for w in widths], *rows]:
        cells = [_cut(row[0], widths[0]) if fit else row[0], *row[1:]]
        lines.append(
            "  ".join(
                c.ljust(w) if i in left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )
    return lines


def summary_text(result: RunResult) -> str:
    """The plain summary of a run, for logs: one row per step, then the totals, within 80
    columns; numbers as in the progress lines and the status (``1,234``)."""
    lines = _columns(_SUMMARY, _summary_rows(result), {0}, fit=True)
    if result.validated:
        lines.append("(validated: every step was rolled back)")
    for step in result.steps:
        for key in step.objects_changed[:5]:
            lines.append(f"{step.label}: {key} changed since it was loaded; not loaded again")
    return "\n".join(lines)


def status_dict(statuses: list[TargetStatus], targets: list[str]) -> dict[str, Any]:
    """The status as plain JSON values, as ``arbalest status --json`` prints it (documented in
    docs/cli.md): one entry per target, in the pipeline's order, a target never loaded too."""
    found = {s.target: s for s in statuses}
    entries = []
    for target in targets:
        status = found.get(target)
        when = status.last_loaded_at if status is not None else None
        entries.append(
            {
                "target": target,
                "objects": status.objects if status is not None else 0,
                "rows_loaded": status.rows_loaded if status is not None else 0,
                "rows_rejected": status.rows_rejected if status is not None else 0,
                "last_loaded_at": when.isoformat() if when is not None else None,
            }
        )
    return {"format": FORMAT, "command": "status", "targets": entries}


def status_lines(statuses: list[TargetStatus], targets: list[str]) -> list[str]:
    """The status, as printed: a header, then one line per target (names never cut: scripts
    read them)."""
    headers = ["target", "objects", "rows", "rejected", "last loaded"]
    lines = _columns(headers, status_table(statuses, targets), {0, 4}, fit=False)
    return [lines[0], *lines[2:]]  # no rule under the header: the status is read by scripts
