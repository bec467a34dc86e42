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

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
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

__all__ = ["PipelineOperator", "load_pipeline"]


def _module(where: str) -> Any:
    """A Python file (``jobs.py``, ``/opt/jobs/events.py``) or a module (``jobs.events``)."""
    path = Path(where)
    if where.endswith(".py") or path.exists():
        if not path.is_file():
            raise ConfigurationError(f"no Python file {where!r}")
        name = f"arbalest_airflow_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigurationError(f"cannot import {where!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        directory = str(path.resolve().parent)
        if directory not in sys.path:
            sys.path.insert(0, directory)  # its own imports of sibling modules work
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name != where.split(".")[0]:
            raise  # the module was found; something it imports was not
        raise ConfigurationError(f"no Python file or module {where!r} ({exc})") from None


def load_pipeline(target: str) -> Pipeline:
    """The pipeline ``FILE_OR_MODULE[:NAME]`` names, as ``arbalest run`` finds it.

    Raises:
        ConfigurationError: No such file, module or name, or it is not a pipeline.
    """
    where, colon, name = target.rpartition(":")
    if not colon:
        where, name = target, ""
    if colon and (not where or not name):
        raise ConfigurationError(f"pipeline={target!r}: write FILE_OR_MODULE[:NAME]")
    module = _module(where)
    if not name:
        if isinstance(getattr(module, "pipeline", None), Pipeline):
            return module.pipeline  # type: ignore[no-any-return]
        found = {k: v for k, v in vars(module).items() if isinstance(v, Pipeline)}
        if len(found) != 1:
            names = ", ".join(sorted(found)) or "none"
            raise ConfigurationError(
                f"pipeline={target!r}: say which pipeline as {where}:NAME (found: {names})"
            )
        return next(iter(found.values()))
    value = getattr(module, name, None)
    if value is None:
        raise ConfigurationError(f"pipeline={target!r}: {where} has no {name!r}")
    if callable(value) and not isinstance(value, Pipeline):
        value = value()
    if not isinstance(value, Pipeline):
        raise ConfigurationError(
            f"pipeline={target!r} is not a Pipeline (it is {type(value).__name__})"
        )
    return value


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
