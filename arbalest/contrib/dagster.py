"""A pipeline's tables as Dagster assets, materialised by running its steps.

```python
events = Pipeline(WAREHOUSE, store=LAKE, name="events").copy(Event, "events").copy(
    Visit, "visits"
)
defs = dagster.Definitions(assets=[pipeline_assets(events)])
```

Each table a step loads (a copy or a time series) is an asset whose key is the table's name
(``["schema", "table"]`` for a table in a schema). Materialising some of them runs those
steps only; materialising all of them runs the whole pipeline, its SQL steps included.

Each materialisation carries the run's figures for its table as metadata
(``rows_loaded``, ``rows_rejected``, ``objects_loaded``, ``seconds``) and what the journal
holds (``journal_objects``, ``journal_rows_loaded``); its ``dagster/last_updated_timestamp``
is the journal's last load into the table, so Dagster's freshness checks measure the age of
the data, not of the last run (a run that found nothing new does not make a table fresher).
``observe_journal()`` reports the same from the journal alone, for loads run outside
Dagster.

A failure whose ``retryable`` is false is a ``dagster.Failure`` that allows no retries; a
retryable one is raised as it is, so the assets' ``retry_policy`` applies.
"""

# (no `from __future__ import annotations`: Dagster reads the context parameter's annotation)
import copy
import inspect
import re
from collections.abc import Iterator, Sequence
from typing import Any

try:
    import dagster
except ImportError as exc:  # pragma: no cover - exercised without the extra
    from arbalest.errors import MissingDependencyError

    raise MissingDependencyError("dagster", "dagster") from exc

from arbalest import journal
from arbalest.errors import ArbalestError, ConfigurationError
from arbalest.pipeline import Pipeline, StepResult, runner
from arbalest.pipeline.steps import CopyStep, SQLStep

__all__ = ["asset_key_of", "observe_journal", "pipeline_assets"]

_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_]")


def asset_key_of(target: str, key_prefix: Sequence[str] = ()) -> dagster.AssetKey:
    """The asset key of a table: its name (``"schema.table"`` is ``["schema", "table"]``),
    after ``key_prefix``."""
    return dagster.AssetKey([*key_prefix, *target.split(".")])


def _prefix(key_prefix: str | Sequence[str] | None) -> tuple[str, ...]:
    if key_prefix is None:
        return ()
    return (key_prefix,) if isinstance(key_prefix, str) else tuple(key_prefix)


def _targets(pipeline: Pipeline) -> list[str]:
    """The tables the pipeline's steps load, in order, each once."""
    return list(dict.fromkeys(s.target for s in pipeline.steps if s.target is not None))


def _kind(pipeline: Pipeline) -> str:
    return pipeline.engine.dialect.name.split("+")[0]


def _journal(pipeline: Pipeline, targets: Sequence[str]) -> dict[str, journal.TargetStatus]:
    """What the journal holds of each target (read only: nothing is created)."""
    with runner.connect(pipeline, create=False) as conn:
        return {s.target: s for s in journal.status(conn, targets)}


def _journal_metadata(status: journal.TargetStatus | None) -> dict[str, Any]:
    if status is None:
        return {"journal_objects": 0, "journal_rows_loaded": 0}
    found: dict[str, Any] = {
        "journal_objects": status.objects,
        "journal_rows_loaded": status.rows_loaded,
    }
    if status.last_loaded_at is not None:
        found["dagster/last_updated_timestamp"] = dagster.MetadataValue.timestamp(
            status.last_loaded_at
        )
    return found


def _run_metadata(steps: Sequence[StepResult]) -> dict[str, Any]:
    """The figures of the steps that loaded one table in this run (most often one step)."""
    found: dict[str, Any] = {
        "step": "; ".join(s.label for s in steps),
        "rows_loaded": sum(s.rows_loaded for s in steps),
        "rows_rejected": sum(s.rows_rejected for s in steps),
        "objects_loaded": sum(s.objects_loaded for s in steps),
        "seconds": dagster.MetadataValue.float(round(sum(s.seconds for s in steps), 3)),
    }
    warnings = [w for s in steps for w in s.warnings]
    if warnings:
        found["warnings"] = dagster.MetadataValue.json(warnings)
    changed = [key for s in steps for key in s.objects_changed]
    if changed:
        found["objects_changed"] = dagster.MetadataValue.json(changed)
    return found


def _only(pipeline: Pipeline, keep: Sequence[object]) -> Pipeline:
    """The pipeline with only the steps in ``keep`` (the same engine, store and options)."""
    if len(keep) == len(pipeline.steps):
        return pipeline
    part = copy.copy(pipeline)
    part._steps = tuple(s for s in pipeline.steps if s in keep)
    return part


def pipeline_assets(
    pipeline: Pipeline,
    *,
    name: str | None = None,
    group_name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
    retry_policy: dagster.RetryPolicy | None = None,
) -> dagster.AssetsDefinition:
    """The tables ``pipeline`` loads, as one Dagster multi-asset that can be subset.

    Args:
        pipeline: The pipeline; building the definition reads its steps and connects to
            nothing.
        name: The op's name (default: the pipeline's name, else ``"arbalest"``); letters,
            digits and ``_`` only, other characters become ``_``.
        group_name: The assets' group.
        key_prefix: Put before each table's name in its asset key.
        retry_policy: Dagster's retries, for failures whose ``retryable`` is true.

    Raises:
        ConfigurationError: If no step of the pipeline loads a table.
    """
    prefix = _prefix(key_prefix)
    targets = _targets(pipeline)
    if not targets:
        raise ConfigurationError(
            f"{pipeline!r} loads no table: add a copy or time series step to make assets of it"
        )
    keys = {target: asset_key_of(target, prefix) for target in targets}
    kind = _kind(pipeline)
    specs = []
    for target in targets:
        step = next(s for s in pipeline.steps if s.target == target)
        schema = step.schema if isinstance(step, CopyStep) else step.copy.schema
        own = vars(schema).get("__doc__")  # its own docstring, not Schema's
        doc = inspect.cleandoc(own) if isinstance(own, str) and own.strip() else None
        specs.append(
            dagster.AssetSpec(
                keys[target],
                description=doc,
                group_name=group_name,
                kinds={kind},
                skippable=True,
                metadata={"table": target, "steps": [s.label for s in pipeline.steps]},
            )
        )
    op_name = _NOT_A_NAME.sub("_", name or pipeline.name or "arbalest")

    @dagster.multi_asset(specs=specs, name=op_name, can_subset=True, retry_policy=retry_policy)
    def _materialise(
        context: dagster.AssetExecutionContext,
    ) -> Iterator[dagster.MaterializeResult[Any]]:
        selected = set(context.selected_asset_keys)
        every = selected >= set(keys.values())
        keep = [
            s
            for s in pipeline.steps
            if (every and isinstance(s, SQLStep))
            or (s.target is not None and keys[s.target] in selected)
        ]
        part = _only(pipeline, keep)
        context.log.info("running %s: %s", part, ", ".join(s.label for s in part.steps))
        try:
            result = part.run()
            statuses = _journal(pipeline, [t for t in targets if keys[t] in selected])
        except ArbalestError as exc:
            if exc.retryable:
                raise
            raise dagster.Failure(
                description=f"{type(exc).__name__}: {exc}", allow_retries=False
            ) from exc
        finally:
            pipeline.close()
        by_target: dict[str, list[StepResult]] = {}
        for step in result.steps:
            if step.target is not None:
                by_target.setdefault(step.target, []).append(step)
        for target, steps in by_target.items():  # one materialisation per table
            yield dagster.MaterializeResult(
                asset_key=keys[target],
                metadata=_run_metadata(steps) | _journal_metadata(statuses.get(target)),
            )

    return _materialise


def observe_journal(
    pipeline: Pipeline, *, key_prefix: str | Sequence[str] | None = None
) -> list[dagster.AssetObservation]:
    """What the journal holds of each table ``pipeline`` loads, as asset observations.

    Each has ``journal_objects``, ``journal_rows_loaded`` and, once something was loaded,
    ``dagster/last_updated_timestamp`` (the last load), which Dagster's freshness checks
    read. Report them from a sensor (``SensorResult(asset_events=...)``) or with
    ``instance.report_runless_asset_event()`` when loads also run outside Dagster (the
    command line, another scheduler). Reads only; a DuckDB file that does not exist is a
    ``WarehouseAccessError``.
    """
    prefix = _prefix(key_prefix)
    targets = _targets(pipeline)
    try:
        statuses = _journal(pipeline, targets)
    finally:
        pipeline.close()
    return [
        dagster.AssetObservation(
            asset_key=asset_key_of(target, prefix),
            metadata=_journal_metadata(statuses.get(target)),
        )
        for target in targets
    ]
