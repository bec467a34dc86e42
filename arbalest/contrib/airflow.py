"""Run a pipeline as an Airflow task: ``PipelineOperator``.

```python
with DAG("loads", schedule="@hourly", start_date=datetime(2026, 1, 1), catchup=False):
    PipelineOperator(task_id="events", pipeline="/opt/jobs/events.py:nightly", retries=3)
```

``pipeline`` names the pipeline as the command line's ``FILE[:NAME]`` does: a Python file or
a module, then optionally ``:NAME``, a ``Pipeline`` or a function returning one (default:
the variable ``pipeline``, else the module's only ``Pipeline``). It is imported when the task
runs, on the worker. ``pipeline``, ``warehouse`` and ``store`` are templated.

- The run's result, ``RunResult.to_dict()`` (the document ``arbalest run --json`` prints),
  is the task's return value, so Airflow pushes it to XCom.
- A failure whose ``retryable`` is true (a refused connection, a timeout, a lock held) is
  raised as it is, and Airflow retries the task as its ``retries`` say; any other failure
  (bad data, a bad pipeline, a failed sign-in) is an ``AirflowFailException``, which fails
  the task at once, whatever ``retries`` says.
- Before the task runs, its plan (``Pipeline.plan()``: tables to create, objects to load,
  SQL) is its ``plan`` field, shown with the rendered template fields; set
  ``show_plan=False`` not to connect to the warehouse and list the store for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

try:
    from airflow.sdk import BaseOperator, Context

    try:
        from airflow.sdk.exceptions import AirflowFailException
    except ImportError:  # pragma: no cover - Airflow before the SDK had its exceptions
        from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]
except ImportError as exc:  # pragma: no cover - exercised without the extra
    from arbalest.errors import MissingDependencyError

    raise MissingDependencyError("apache-airflow", "airflow") from exc

from typing_extensions import override

from arbalest.errors import ArbalestError, ConfigurationError
from arbalest.pipeline import Pipeline
from arbalest.pipeline._code import find_pipeline

__all__ = ["PipelineOperator", "load_pipeline"]


def load_pipeline(target: str) -> Pipeline:
    """The pipeline ``FILE_OR_MODULE[:NAME]`` names, as ``arbalest run`` finds it.

    Raises:
        ConfigurationError: No such file, module or name, or it is not a pipeline.
    """
    try:
        return find_pipeline(target, prefix="arbalest_airflow_")
    except ConfigurationError as exc:
        if type(exc) is not ConfigurationError:  # the pipeline's own code raised it
            raise
        raise ConfigurationError(f"pipeline={target!r}: {exc}") from None


class PipelineOperator(BaseOperator):
    """Run the pipeline ``pipeline`` (``FILE_OR_MODULE[:NAME]``) as an Airflow task.

    Args:
        pipeline: Where the pipeline is, as the command line takes it; templated.
        warehouse: Another warehouse URL for it (as ``--warehouse``); templated.
        store: Another store (as ``--store``); templated.
        show_plan: Put the plan in the ``plan`` field when the task's fields are rendered.
        **kwargs: ``BaseOperator``'s (``task_id``, ``retries``, ``retry_delay``...).
    """

    template_fields: Sequence[str] = ("pipeline", "warehouse", "store", "plan")
    ui_color = "#e8f0e0"

    def __init__(
        self,
        *,
        pipeline: str,
        warehouse: str | None = None,
        store: str | None = None,
        show_plan: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.warehouse = warehouse
        self.store = store
        self.show_plan = show_plan
        #: The pipeline's plan, as text, once the task's fields are rendered.
        self.plan = ""

    def load(self) -> Pipeline:
        """The pipeline, with the ``warehouse`` and ``store`` given to the operator."""
        found = load_pipeline(self.pipeline)
        if self.warehouse or self.store:
            found = found.using(warehouse=self.warehouse or None, store=self.store or None)
        return found

    @override
    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        if not self.show_plan:
            return
        try:
            with self.load() as found:
                self.plan = str(found.plan())
        except (ArbalestError, ImportError) as exc:
            # the run says what is wrong (and retries if it may); the plan only shows it
            self.plan = f"(no plan: {type(exc).__name__}: {exc})"

    @override
    def execute(self, context: Context) -> dict[str, Any]:
        try:
            with self.load() as found:
                result = found.run()
        except ArbalestError as exc:
            if exc.retryable:
                raise
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
        self.log.info("%s", result)
        return result.to_dict()
