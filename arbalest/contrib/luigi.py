"""Run pipelines as Luigi tasks: ``complete()`` comes from the journal.

::

    class LoadEvents(PipelineTask):
        def pipeline(self) -> Pipeline:
            return Pipeline(WAREHOUSE, store=LAKE).copy(Event, "events")

    class DailySummary(PipelineTask):
        def requires(self):
            return LoadEvents()

        def pipeline(self) -> Pipeline:
            return Pipeline(WAREHOUSE).sql("INSERT INTO daily SELECT ...")

    luigi.build([DailySummary()], local_scheduler=True)

A task is complete when its pipeline has nothing left to load (every copy step's plan lists
no new object, every time series no new partition) and it has run once with its current
parameters (recorded in the journal's cursors, so that SQL-only tasks are skipped too).
"""

from __future__ import annotations

from typing import Any

try:
    import luigi
except ImportError as exc:  # pragma: no cover - exercised without the extra
    from arbalest.errors import MissingDependencyError

    raise MissingDependencyError("luigi", "luigi") from exc

from arbalest import journal
from arbalest.pipeline import Pipeline

__all__ = ["PipelineParameter", "PipelineTask"]


class PipelineParameter(luigi.Parameter[Any]):
    """A ``Pipeline``, or a function returning one; not part of the task's identity."""

    def serialize(self, x: Any) -> str:
        return repr(x)


class PipelineTask(luigi.Task):
    """A Luigi task that runs a pipeline.

    Override ``pipeline()``, or pass ``pipeline_factory=`` (a ``Pipeline``, or a function
    returning one) when the task is made. The original Arbalest's ``PipelineTask`` took a
    ``pipeline`` parameter; here ``pipeline`` is the method to override, so the parameter
    has another name.
    """

    pipeline_factory: Any = PipelineParameter(default=None, significant=False)

    def pipeline(self) -> Pipeline:
        """The pipeline this task runs."""
        factory = self.pipeline_factory
        if factory is None:
            raise NotImplementedError(
                f"{type(self).__name__}: override pipeline() or pass pipeline_factory="
            )
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
        pipeline = self.pipeline()
        with pipeline.engine.connect() as conn:
            done, _ = journal.cursor_point(conn, self._marker())
        if done is None:
            return False
        return all(not step.keys for step in pipeline.plan().steps)

    def output(self) -> Any:  # Luigi asks for it; completeness comes from complete()
        return []
