"""Finding a pipeline in the user's code, as the command line and the Airflow operator take
it: ``FILE_OR_MODULE[:NAME]``, a Python file or a module, then a ``Pipeline`` or a function
returning one (by default the variable ``pipeline``, else the module's only ``Pipeline``)."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType

from arbalest.errors import ConfigurationError
from arbalest.pipeline.builder import Pipeline

__all__ = ["did_you_mean", "find_pipeline", "import_code", "split_target"]

#: Runs the user's code: given the module name being imported (``None`` for a file).
Guard = Callable[[str | None], AbstractContextManager[object]]


def import_code(where: str, *, prefix: str, guard: Guard | None = None) -> ModuleType:
    """Import a Python file (``jobs.py``, ``./pipelines/jobs.py``) or a module (``pkg.jobs``).

    A file is imported as ``<prefix><stem>``, with its folder on ``sys.path`` so that its
    own imports of sibling modules work.

    Args:
        where: The file or the module.
        prefix: What a file's module name starts with.
        guard: Wraps running the user's code (to turn its errors into the caller's own).

    Raises:
        ConfigurationError: No such file or module.
    """
    running = guard if guard is not None else (lambda _: contextlib.nullcontext())
    path = Path(where)
    if where.endswith(".py") or path.exists():
        if not path.is_file():
            raise ConfigurationError(f"no Python file {where!r}")
        name = f"{prefix}{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigurationError(f"cannot import {where!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        directory = str(path.resolve().parent)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        with running(None):
            spec.loader.exec_module(module)
        return module
    try:
        with running(where):
            return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name != where.split(".")[0]:
            raise  # the module was found; something it imports was not
        raise ConfigurationError(f"no Python file or module {where!r} ({exc})") from None


def split_target(target: str) -> tuple[str, str | None]:
    """``"jobs.py:daily"`` -> ``("jobs.py", "daily")``; ``"jobs.py"`` -> ``("jobs.py", None)``."""
    where, colon, name = target.rpartition(":")
    if not colon:
        return target, None
    if not name or not where:
        raise ConfigurationError(f"{target!r}: write FILE_OR_MODULE or FILE_OR_MODULE:NAME")
    return where, name


def find_pipeline(target: str, *, prefix: str, guard: Guard | None = None) -> Pipeline:
    """The pipeline ``FILE_OR_MODULE[:NAME]`` names: ``NAME`` (a ``Pipeline`` or a function
    returning one), else the variable ``pipeline``, else the module's only ``Pipeline``.

    Args:
        target: ``FILE_OR_MODULE[:NAME]``.
        prefix: What a file's module name starts with (see ``import_code``).
        guard: Wraps running the user's code (importing it, calling ``NAME()``).

    Raises:
        ConfigurationError: No such file, module or name, or it is not a pipeline.
    """
    where, name = split_target(target)
    module = import_code(where, prefix=prefix, guard=guard)
    if name is None:
        if isinstance(getattr(module, "pipeline", None), Pipeline):
            return module.pipeline  # type: ignore[no-any-return]
        found = {k: v for k, v in vars(module).items() if isinstance(v, Pipeline)}
        if len(found) != 1:
            names = ", ".join(sorted(found)) or "none"
            raise ConfigurationError(
                f"{where}: say which pipeline to use as {where}:NAME (pipelines found: {names})"
            )
        return next(iter(found.values()))
    value = getattr(module, name, None)
    if value is None:
        raise ConfigurationError(f"{where} has no {name!r}{_names_there(module, name)}")
    if callable(value) and not isinstance(value, Pipeline):
        with guard(None) if guard is not None else contextlib.nullcontext():
            value = value()
    if not isinstance(value, Pipeline):
        raise ConfigurationError(f"{where}:{name} is not a Pipeline (it is {type(value).__name__})")
    return value


def did_you_mean(name: str, names: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the name in ``names`` closest to ``name``, else ``""``."""
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _names_there(module: ModuleType, name: str) -> str:
    """What a NAME could have been: the module's pipelines, and its own functions that take
    no arguments (they may return one)."""
    pipelines = sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline))
    functions = sorted(
        k
        for k, v in vars(module).items()
        if inspect.isfunction(v)
        and v.__module__ == module.__name__
        and not k.startswith("_")
        and _takes_no_arguments(v)
    )
    hint = did_you_mean(name, pipelines + functions)
    if not pipelines and not functions:
        return f"{hint} (it has no pipelines, nor functions that could return one)"
    found = [f"pipelines: {', '.join(pipelines)}"] if pipelines else []
    found += [f"functions: {', '.join(f + '()' for f in functions)}"] if functions else []
    return f"{hint} ({'; '.join(found)})"


def _takes_no_arguments(function: object) -> bool:
    try:
        signature = inspect.signature(function)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in signature.parameters.values()
    )
