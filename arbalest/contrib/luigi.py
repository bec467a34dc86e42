"""Run pipelines as Luigi tasks: ``complete()`` comes from the journal.

```python
class LoadEvents(PipelineTask):
    def pipeline(self) -> Pipeline:
        return Pipeline(WAREHOUSE, store=LAKE).copy(Event, "events")

class DailySummary(PipelineTask):
    def requires(self):
        return LoadEvents()

    def pipeline(self) -> Pipeline:
        return Pipeline(WAREHOUSE).sql("INSERT INTO daily SELECT ...")

luigi.build([DailySummary()], local_scheduler=True)
```

A task is complete when it has run once with its current parameters (``run()`` then sets
its completion marker, ``luigi:<task id>``, in the journal's cursors) and, since then,
each step of its pipeline has nothing left to do:

- ``incremental``: no object under the source that the journal lacks;
- ``merge``: no new object, and none changed (new ETag) since it was loaded;
- ``replace``: the source holds exactly the objects its last load took (same keys and
  ETags), since a replace reloads everything: a new, changed or removed object makes the
  task incomplete, an unchanged source does not;
- a time series: no partition after its cursor;
- a SQL step: nothing once the marker is set (to rerun it when its inputs change, make
  ``complete()`` also ask the tasks it requires).

Asking connects to the warehouse and lists the store.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from typing import Any

try:
    import luigi
except ImportError as exc:  # pragma: no cover - exercised without the extra
    from arbalest.errors import MissingDependencyError

    raise MissingDependencyError("luigi", "luigi") from exc

import sqlalchemy as sa

from arbalest import journal
from arbalest.errors import ConfigurationError
from arbalest.pipeline import Pipeline
from arbalest.pipeline.runner import select_objects
from arbalest.pipeline.steps import CopyStep, SQLStep, TimeSeriesStep

__all__ = ["PipelineParameter", "PipelineTask", "pipeline_identity"]

_SIMPLE = (str, int, float, bool, type(None))


def _import_path(factory: object) -> str | None:
    """``module:qualname`` if importing it gives ``factory`` back, else ``None``."""
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    if module == "__main__":
        return None  # every script is __main__: its path would not tell two apart
    try:
        found = _resolve(f"{module}:{qualname}")
    except ConfigurationError:
        return None
    return f"{module}:{qualname}" if found is factory else None


def _resolve(path: str) -> object:
    """The object an import path ``module:qualname`` names."""
    module_name, colon, qualname = path.partition(":")
    if not colon or not module_name or not qualname:
        raise ConfigurationError(
            f"pipeline_factory={path!r} is not an import path; write module:name"
        )
    try:
        found: object = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"pipeline_factory={path!r}: cannot import it ({exc}); write module:name, "
            "the import path of a Pipeline or of a function returning one"
        ) from None
    return found


def _describe(pipeline: Pipeline) -> dict[str, Any]:
    """What makes a pipeline what it is, in plain data (no passwords, no object ids)."""
    steps: list[dict[str, Any]] = []
    for step in pipeline.steps:
        if isinstance(step, CopyStep):
            steps.append(
                {
                    "label": step.label,
                    "source": step.source,
                    "options": [
                        step.max_errors,
                        step.truncate_columns,
                        step.compression,
                        step.time_format,
                    ],
                }
            )
        elif isinstance(step, SQLStep):
            steps.append(
                {
                    "label": step.label,
                    "sql": [str(statement) for statement, _ in step.statements],
                    "params": [
                        {
                            k: repr(v) if isinstance(v, _SIMPLE) else type(v).__name__
                            for k, v in sorted(params.items())
                        }
                        for _, params in step.statements
                    ],
                }
            )
        else:
            steps.append(
                {
                    "label": step.label,
                    "cursor": step.sources.cursor,
                    "series_column": step.series_column,
                }
            )
    store = pipeline.store
    return {
        "name": pipeline.name,
        "warehouse": pipeline.engine.url.render_as_string(hide_password=True),
        "store": store.url if store is not None else None,
        "metadata": pipeline.metadata,
        "steps": steps,
    }


def pipeline_identity(factory: object) -> str:
    """A string that tells pipelines apart, the same in every process.

    An importable function is its import path, ``module:name``; a string is taken as such
    a path (of a function or of a ``Pipeline`` variable). Anything else (a ``Pipeline`` made on
    the spot, a lambda, a nested function) is the pipeline's name, if it has one, and a
    digest of what it does (warehouse, store, steps): ``name@digest``. ``None`` (a subclass
    that overrides ``pipeline()``) is the empty string.
    """
    if factory is None:
        return ""
    if isinstance(factory, str):
        return factory
    path = _import_path(factory)
    if path is not None:
        return path
    built = factory() if callable(factory) and not isinstance(factory, Pipeline) else factory
    if not isinstance(built, Pipeline):
        # pipeline() says what is wrong; an identity still has to exist
        return f"{getattr(factory, '__module__', '')}:{getattr(factory, '__qualname__', '')}"
    text = json.dumps(_describe(built), sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{built.name or ''}@{digest}"


def _step_done(
    pipeline: Pipeline, conn: sa.Connection, step: CopyStep | SQLStep | TimeSeriesStep
) -> bool:
    """Whether a step of a pipeline that has run has nothing left to do."""
    if isinstance(step, SQLStep):
        return True  # it ran with the task
    if isinstance(step, TimeSeriesStep):
        committed, _ = journal.cursor_point(conn, step.sources.cursor)
        if committed is None:
            return not step.sources.partitions()
        after = step.sources.sort_key(committed)
        return all(step.sources.sort_key(p) <= after for p in step.sources.partitions())
    store = pipeline.store
    assert store is not None  # a copy step needs one
    listing = list(store.list(step.source, exclude=pipeline.metadata))
    loaded = journal.loaded(conn, step.target, step.source)
    if step.mode == "replace":
        # a replace loads everything each time: done while the source holds exactly what
        # the last one loaded (same keys, same ETags)
        return {o.key: o.etag for o in listing} == loaded
    objects, _ = select_objects(listing, loaded, step.mode)
    return not objects


class PipelineParameter(luigi.Parameter[Any]):
    """A ``Pipeline``, a function returning one, or the import path of either
    (``"module:name"``).

    Part of the task's identity: it is serialised by ``pipeline_identity()``, so two
    tasks with different pipelines have different task ids (and completion markers), and a
    task has the same id in every process. An import path given on Luigi's command line
    (``--pipeline-factory jobs:nightly``) is imported when the pipeline is needed.
    """

    def serialize(self, x: Any) -> str:
        return pipeline_identity(x)

    def parse(self, x: str) -> Any:
        return x


class PipelineTask(luigi.Task):
    """A Luigi task that runs a pipeline.

    Override ``pipeline()``, or pass ``pipeline_factory=`` (a ``Pipeline``, or a function
    returning one) when the task is made. The original Arbalest's ``PipelineTask`` took a
    ``pipeline`` parameter; here ``pipeline`` is the method to override, so the parameter
    has another name.

    ``pipeline_factory`` is part of the task's identity (see ``pipeline_identity()``):
    tasks made from this class with different pipelines have different task ids, and so
    different completion markers, and a task's id is the same in every process.
    """

    pipeline_factory: Any = PipelineParameter(default=None)

    def pipeline(self) -> Pipeline:
        """The pipeline this task runs."""
        factory = self.pipeline_factory
        if factory is None:
            raise NotImplementedError(
                f"{type(self).__name__}: override pipeline() or pass pipeline_factory="
            )
        if isinstance(factory, str):
            factory = _resolve(factory)
        built = factory() if callable(factory) and not isinstance(factory, Pipeline) else factory
        if not isinstance(built, Pipeline):
            raise TypeError(
                f"{type(self).__name__}: pipeline_factory gave {built!r}, not a Pipeline"
            )
        return built

    def _marker(self) -> str:
        return f"luigi:{self.task_id}"

    def run(self) -> None:
        pipeline = self.pipeline()
        pipeline.run()
        with pipeline.engine.begin() as conn:
            journal.cursor_commit(conn, self._marker(), "done")

    def complete(self) -> bool:
        """Whether the task has run and its pipeline has nothing left to do.

        See the module docstring: the task's marker must be set, and then each step is
        done by its own rule (nothing new for ``incremental`` and ``merge``, the source as
        it was last loaded for ``replace``, no new partition for a time series).
        """
        pipeline = self.pipeline()
        with pipeline.engine.connect() as conn:
            done, _ = journal.cursor_point(conn, self._marker())
            return done is not None and all(
                _step_done(pipeline, conn, step) for step in pipeline.steps
            )

    def output(self) -> Any:  # Luigi asks for it; completeness comes from complete()
        return []
