"""What a run, a validation or a plan returns, and how it prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from arbalest.loading.drift import Drift, UnmappedPath
from arbalest.loading.rejects import Reject

if TYPE_CHECKING:
    from arbalest.pipeline.evolution import ColumnChange

__all__ = [
    "FORMAT",
    "Drift",
    "Plan",
    "PlanStep",
    "Reject",
    "RunResult",
    "StepResult",
    "UnmappedPath",
    "reject_dict",
]

#: The version of the documented JSON layout of ``to_dict()`` (and of ``--json``): it goes up
#: only when a key is renamed or removed, or its meaning changes; new keys may come at any time.
FORMAT: Final = 1


def reject_dict(reject: Reject) -> dict[str, Any]:
    """A reject as plain JSON values, as every ``--json`` document writes it."""
    return {
        "key": reject.key,
        "line": reject.line,
        "column": reject.column,
        "value": reject.value,
        "reason": reject.reason,
        "code": reject.code,
    }


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
        label: ``"copy <table> (<mode>)"`` for a copy, ``"time series <table>"`` for a time
            series, ``"sql: <first statement>"`` for SQL.
        target: The table a copy loads, or ``None``.
        objects_loaded: Objects loaded by this step.
        rows_loaded: Rows loaded.
        rows_rejected: Records rejected (at most ``max_errors`` in a successful step).
        rejects: The rejected records.
        seconds: Wall time of the step.
        objects_changed: Keys of objects loaded earlier that changed since (same key, new
            ETag); ``incremental`` reports them and does not load them again.
        warnings: Mistakes that load nothing, in words (also logged, and shown by the
            command): a source with no objects under it (naming the nearest existing
            prefixes); a column NULL in every row of a step that loaded rows (naming the
            near-miss JSON keys seen in the records).
        drift: The JSON keys of the records loaded that no column reads, and the columns no
            record filled (see ``Drift``); ``None`` for SQL steps and where the warehouse
            reads the objects itself (Redshift's ``COPY``), so no record passes through
            Arbalest.
    """

    label: str
    target: str | None
    objects_loaded: int
    rows_loaded: int
    rows_rejected: int
    rejects: list[Reject]
    seconds: float
    objects_changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    drift: Drift | None = None

    def to_dict(self) -> dict[str, Any]:
        """The step as plain JSON values (see ``RunResult.to_dict``)."""
        return {
            "label": self.label,
            "target": self.target,
            "objects_loaded": self.objects_loaded,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "seconds": round(self.seconds, 3),
            "objects_changed": list(self.objects_changed),
            "warnings": list(self.warnings),
            "drift": None if self.drift is None else self.drift.to_dict(),
            "rejects": [reject_dict(r) for r in self.rejects],
        }


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

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values, as ``arbalest run --json`` prints it (the
        layout is documented in docs/cli.md; ``format`` is its version):

        ```text
        {"format": 1, "command": "run", "validated": false, "rows_loaded": 3,
         "rows_rejected": 0, "seconds": 0.05, "steps": [{"label": ..., "target": ...,
         "objects_loaded": 1, "rows_loaded": 3, "rows_rejected": 0, "seconds": 0.05,
         "objects_changed": [], "warnings": [], "drift": {"unmapped": [],
         "unfilled": []}, "rejects": []}]}
        ```

        ``json.dumps(result.to_dict())`` always works: every value is a string, a number,
        a boolean, ``None``, a list or a dict.
        """
        return {
            "format": FORMAT,
            "command": "validate" if self.validated else "run",
            "validated": self.validated,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "seconds": round(self.seconds, 3),
            "steps": [s.to_dict() for s in self.steps],
        }

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
            for warning in step.warnings:
                text += f"\n{step.label}: warning: {warning}"
            if step.drift is not None:
                # (its unfilled columns are already among the warnings)
                for line in Drift(step.drift.unmapped).describe():
                    text += f"\n{step.label}: drift: {line}"
        return text


@dataclass(frozen=True)
class PlanStep:
    """What one step would do.

    Attributes:
        label: The step's label.
        target: The table a copy loads, or ``None``.
        ddl: Statements that would create missing tables.
        keys: The objects that would be loaded: every one under the source for
            ``replace``; those not in the journal for ``incremental``; new and changed ones
            for ``merge``; those of the new partitions for a time series.
        sql: The statements of a SQL step (parameters stay bound, shown by name).
        objects_changed: Loaded objects that changed since (see ``StepResult``).
        changes: How the existing table differs from the class (see ``ColumnChange``).
        alter: The ``ALTER TABLE`` statements ``run()`` would run, in the step's
            transaction: with ``evolve=True``, and only when every difference is one it
            makes (else ``refused`` says why the step would fail).
        alter_before: ``ALTER`` statements that would run before the step's transaction,
            where the warehouse cannot run them in one (Redshift's ``ALTER COLUMN ...
            TYPE``).
        refused: Why ``run()`` would refuse the step (the ``TableMismatchError``'s fix), or
            ``None``.
    """

    label: str
    target: str | None
    ddl: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)
    objects_changed: list[str] = field(default_factory=list)
    changes: list[ColumnChange] = field(default_factory=list)
    alter: list[str] = field(default_factory=list)
    alter_before: list[str] = field(default_factory=list)
    refused: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The step as plain JSON values (see ``Plan.to_dict``)."""
        return {
            "label": self.label,
            "target": self.target,
            # no trailing spaces: SQLAlchemy ends each column's line with ", "
            "ddl": ["\n".join(line.rstrip() for line in d.splitlines()) for d in self.ddl],
            "objects_to_load": len(self.keys),
            "keys": list(self.keys),
            "sql": list(self.sql),
            "objects_changed": list(self.objects_changed),
            "changes": [c.to_dict() for c in self.changes],
            "alter": list(self.alter_before) + list(self.alter),
            "alter_outside_transaction": list(self.alter_before),
            "refused": self.refused,
        }


@dataclass(frozen=True)
class Plan:
    """What ``run()`` would do, found without touching the warehouse's data."""

    steps: list[PlanStep]

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON values, as ``arbalest plan --json`` prints it (documented
        in docs/cli.md)."""
        return {
            "format": FORMAT,
            "command": "plan",
            "objects_to_load": sum(len(s.keys) for s in self.steps),
            "steps": [s.to_dict() for s in self.steps],
        }

    def __str__(self) -> str:
        out: list[str] = []
        for number, step in enumerate(self.steps, start=1):
            out.append(f"{number}. {step.label}")
            for ddl in step.ddl:
                out.append("   create: " + " ".join(ddl.split()))
            if step.changes:
                out.append("   the table differs from the class:")
                out += [f"     {change.describe()}" for change in step.changes]
            for statement in step.alter_before:
                out.append(f"   alter (before the step's transaction): {statement}")
            for statement in step.alter:
                out.append(f"   alter: {statement}")
            if step.refused is not None:
                out.append(f"   run() refuses this step (TableMismatchError): {step.refused}")
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
