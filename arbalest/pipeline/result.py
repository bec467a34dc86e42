"""What a run, a validation or a plan returns, and how it prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from arbalest.loading.rejects import Reject

__all__ = ["Plan", "PlanStep", "Reject", "RunResult", "StepResult"]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


@dataclass(frozen=True)
class StepResult:
    """The outcome of one step.

    Attributes:
        label: ``"copy <table> (<mode>)"`` for a copy, ``"sql: <first statement>"`` for SQL.
        target: The table a copy loads, or ``None``.
        objects_loaded: Objects loaded by this step.
        rows_loaded: Rows loaded.
        rows_rejected: Records rejected (at most ``max_errors`` in a successful step).
        rejects: The rejected records.
        seconds: Wall time of the step.
        objects_changed: Keys of objects loaded earlier that changed since (same key, new
            ETag); ``incremental`` reports them and does not load them again.
    """

    label: str
    target: str | None
    objects_loaded: int
    rows_loaded: int
    rows_rejected: int
    rejects: list[Reject]
    seconds: float
    objects_changed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunResult:
    """The outcome of ``run()`` or ``validate()``: one ``StepResult`` per step.

    ``str(result)`` is a table: per step the objects, rows loaded, rows rejected and seconds.
    """

    steps: list[StepResult]
    validated: bool = False

    @property
    def rows_loaded(self) -> int:
        """Rows loaded by every step."""
        return sum(s.rows_loaded for s in self.steps)

    @property
    def rows_rejected(self) -> int:
        """Records rejected by every step."""
        return sum(s.rows_rejected for s in self.steps)

    @property
    def seconds(self) -> float:
        """Wall time of every step."""
        return sum(s.seconds for s in self.steps)

    def __str__(self) -> str:
        rows = [
            [
                s.label,
                str(s.objects_loaded) if s.target else "",
                f"{s.rows_loaded:,}" if s.target else "",
                f"{s.rows_rejected:,}" if s.target else "",
                f"{s.seconds:.2f}",
            ]
            for s in self.steps
        ]
        rows.append(
            ["total", "", f"{self.rows_loaded:,}", f"{self.rows_rejected:,}", f"{self.seconds:.2f}"]
        )
        text = _table(["step", "objects", "rows", "rejected", "seconds"], rows, {1, 2, 3, 4})
        if self.validated:
            text += "\n(validated: every step was rolled back)"
        for step in self.steps:
            for key in step.objects_changed[:5]:
                text += f"\n{step.label}: {key} changed since it was loaded; not loaded again"
        return text


@dataclass(frozen=True)
class PlanStep:
    """What one step would do.

    Attributes:
        label: The step's label.
        target: The table a copy loads, or ``None``.
        ddl: Statements that would create missing tables.
        keys: The objects that would be loaded (none already in the journal).
        sql: The statements of a SQL step (parameters stay bound, shown by name).
        objects_changed: Loaded objects that changed since (see ``StepResult``).
    """

    label: str
    target: str | None
    ddl: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)
    objects_changed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """What ``run()`` would do, found without touching the warehouse's data."""

    steps: list[PlanStep]

    def __str__(self) -> str:
        out: list[str] = []
        for number, step in enumerate(self.steps, start=1):
            out.append(f"{number}. {step.label}")
            for ddl in step.ddl:
                out.append("   create: " + " ".join(ddl.split()))
            if step.target is not None:
                out.append(f"   objects to load: {len(step.keys)}")
                out += [f"     {key}" for key in step.keys[:20]]
                if len(step.keys) > 20:
                    out.append(f"     ... and {len(step.keys) - 20} more")
                for key in step.objects_changed:
                    out.append(f"   changed since loaded (not loaded again): {key}")
            for statement in step.sql:
                out.append("   sql: " + " ".join(statement.split()))
        return "\n".join(out) if out else "(no steps)"
