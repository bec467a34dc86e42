"""What the command line shows: a progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from arbalest.errors import ConfigurationError
from arbalest.journal import TargetStatus
from arbalest.pipeline import RunResult, StepResult
from arbalest.pipeline.result import FORMAT
from arbalest.stores.base import ObjectInfo

__all__ = [
    "BarProgress",
    "LineProgress",
    "Tally",
    "configure_logging",
    "result_table",
    "status_dict",
    "status_lines",
    "status_table",
    "summary_text",
    "warning_lines",
]

WIDTH: Final = 80  # the summary and the status fit a terminal of 80 columns


#: Loggers whose INFO lines the command's own progress lines say already.
_SAID: Final = ("arbalest.pipeline.runner", "arbalest.inference.drift")


def _said_by_the_command(record: logging.LogRecord) -> bool:
    """False for the runner's own INFO lines (a run starts, a step is done, a run is done)
    and the drift sample's (a step is sampled): the command's progress lines and summary say
    the same, so -v says it once."""
    if getattr(record, "arbalest_step_warning", False):
        return False  # a step's warning: the summary shows it
    return not (record.name in _SAID and record.levelno == logging.INFO)


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


#: Without a terminal, a progress line this often (seconds) while a step loads, so that a
#: long load in cron or CI shows it is alive; ``ARBALEST_PROGRESS_SECONDS`` changes it.
PROGRESS_SECONDS: Final = 5.0


def progress_seconds() -> float:
    """The interval of the progress lines: ``ARBALEST_PROGRESS_SECONDS``, else
    ``PROGRESS_SECONDS``."""
    text = os.environ.get("ARBALEST_PROGRESS_SECONDS", "").strip()
    if not text:
        return PROGRESS_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        raise ConfigurationError(
            f"ARBALEST_PROGRESS_SECONDS={text!r}: write a number of seconds, such as 5"
        ) from None
    if not seconds > 0:
        raise ConfigurationError(f"ARBALEST_PROGRESS_SECONDS={text!r}: must be more than 0")
    return seconds


def size_text(nbytes: float) -> str:
    """``1.2 GB``: bytes in decimal units, as people read them."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:,.0f} {unit}" if unit == "bytes" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1000
    raise AssertionError("unreachable")


def duration_text(seconds: float) -> str:
    """``0:42``, ``12:05``, ``1:02:03``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


class Tally:
    """How far one copy step is: objects, bytes and rows, with a rate and the time left.

    Bytes count within an object as its pieces are read (at most the object's size until it
    is done: a compressed object's pieces are larger than the object), and the whole size
    once the object is loaded.
    """

    def __init__(self, label: str, objects: int, nbytes: int, clock: Callable[[], float]) -> None:
        self.label = label
        self.objects = objects
        self.nbytes = nbytes
        self.clock = clock
        self.started = clock()
        self.objects_done = 0
        self.bytes_done = 0  # of the objects loaded
        self.rows = 0
        self.counts_rows = False  # rows are counted as pieces are read (not on Redshift)
        self.partial: dict[str, int] = {}  # bytes read of objects under way

    def chunk(self, info: ObjectInfo, nbytes: int, rows: int) -> None:
        self.partial[info.key] = min(self.partial.get(info.key, 0) + nbytes, info.size)
        self.rows += rows
        self.counts_rows = True

    def loaded(self, info: ObjectInfo) -> None:
        self.partial.pop(info.key, None)
        self.objects_done += 1
        self.bytes_done += info.size

    @property
    def done(self) -> int:
        """Bytes done, within objects under way too."""
        return min(self.bytes_done + sum(self.partial.values()), self.nbytes)

    def line(self) -> str:
        """``copy events (incremental): 3/10 object(s), 1.2 GB of 4.0 GB (30%), 1,234,567
        row(s), 25.0 MB/s, 0:48 left``."""
        elapsed = self.clock() - self.started
        done = self.done
        percent = f" ({100 * done // self.nbytes}%)" if self.nbytes else ""
        text = (
            f"{self.label}: {self.objects_done:,}/{self.objects:,} object(s), "
            f"{size_text(done)} of {size_text(self.nbytes)}{percent}"
        )
        if self.counts_rows:
            text += f", {self.rows:,} row(s)"
        if elapsed > 0 and done > 0:
            rate = done / elapsed
            left = (self.nbytes - done) / rate
            text += f", {size_text(rate)}/s, {duration_text(left)} left"
        else:
            text += f", {duration_text(elapsed)} elapsed"
        return text


class LineProgress:
    """Plain lines, for logs: one when a step starts and one when it ends; while a copy step
    loads, every ``seconds`` a line with the objects, bytes and rows done, the rate and the
    time left (and, with ``each_object``, one per object loaded). Use it in a ``with``
    block: the lines stop when it ends, even when a step failed."""

    def __init__(
        self,
        console: Console,
        *,
        each_object: bool = False,
        seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.each_object = each_object
        self.seconds = progress_seconds() if seconds is None else seconds
        self.clock = clock
        self.tally: Tally | None = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """No more progress lines."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None

    def _say(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.seconds):
            with self.lock:
                if self.tally is not None:
                    self._say(self.tally.line())

    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        self._say(f"{label}: {objects:,} object(s) to load, {nbytes:,} bytes")
        with self.lock:
            self.tally = Tally(label, objects, nbytes, self.clock) if objects else None
        if self.tally is not None and self.thread is None and not self.stop.is_set():
            self.thread = threading.Thread(target=self._beat, name="arbalest-progress", daemon=True)
            self.thread.start()

    def chunk_loaded(self, label: str, info: ObjectInfo, nbytes: int, rows: int) -> None:
        with self.lock:
            if self.tally is not None:
                self.tally.chunk(info, nbytes, rows)

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        with self.lock:
            if self.tally is not None:
                self.tally.loaded(info)
        if self.each_object:
            self._say(f"{label}: loaded {info.key} ({info.size:,} bytes)")

    def step_finished(self, result: StepResult) -> None:
        with self.lock:
            self.tally = None
        detail = (
            f"{result.objects_loaded:,} object(s), {result.rows_loaded:,} row(s), "
            f"{result.rows_rejected:,} rejected, "
            if result.target
            else ""
        )
        self._say(f"{result.label}: done, {detail}{result.seconds:.2f} s")


class BarProgress:
    """A progress bar per copy step, on a terminal: bytes done of the total (within a large
    object too), objects, rows, the rate and the time left."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.tallies: dict[str, Tally] = {}

    @staticmethod
    def create(console: Console) -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            DownloadColumn(),
            TextColumn("{task.fields[objects]} obj {task.fields[rows]} rows"),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )

    def _show(self, label: str) -> None:
        tally = self.tallies[label]
        self.progress.update(
            self.tasks[label],
            completed=tally.done,
            objects=f"{tally.objects_done:,}/{tally.objects:,}",
            rows=f"{tally.rows:,}",
        )

    def step_started(self, label: str, objects: int, nbytes: int) -> None:
        self.tallies[label] = Tally(label, objects, nbytes, time.monotonic)
        self.tasks[label] = self.progress.add_task(
            label, total=nbytes, objects=f"0/{objects:,}", rows="0"
        )

    def chunk_loaded(self, label: str, info: ObjectInfo, nbytes: int, rows: int) -> None:
        if label in self.tasks:
            self.tallies[label].chunk(info, nbytes, rows)
            self._show(label)

    def object_loaded(self, label: str, info: ObjectInfo) -> None:
        if label in self.tasks:
            self.tallies[label].loaded(info)
            self._show(label)

    def step_finished(self, result: StepResult) -> None:
        if result.label in self.tasks:
            self.progress.remove_task(self.tasks.pop(result.label))
            self.tallies.pop(result.label, None)


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
    lines += warning_lines(result)
    return "\n".join(lines)


def warning_lines(result: RunResult) -> list[str]:
    """The steps' warnings, one line each: ``warning: LABEL: TEXT``."""
    return [f"warning: {step.label}: {text}" for step in result.steps for text in step.warnings]


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
