"""Finding what a command works on: a pipeline or a schema in a file or a module."""

from __future__ import annotations

import contextlib
import os
import sysconfig
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from arbalest.errors import ArbalestError, ConfigurationError, SchemaError
from arbalest.pipeline import Pipeline
from arbalest.pipeline._code import did_you_mean, find_pipeline, import_code, split_target
from arbalest.schema.base import Schema

__all__ = ["load_module", "resolve_pipeline", "resolve_schema", "split_target"]


class CodeError(Exception):
    """The pipeline's own code failed while it was loaded (or while NAME() ran).

    Its message is one line: where (``jobs.py:12``, the deepest line of the user's own code,
    or of a SyntaxError), the error's type and its message.
    """

    def __init__(self, error: BaseException) -> None:
        where = _where(error)
        text = error.msg if isinstance(error, SyntaxError) and error.msg else str(error)
        what = f"{type(error).__name__}: {text}" if text else type(error).__name__
        super().__init__(f"{where}: {what}" if where else what)
        self.where = where


def load_module(where: str) -> ModuleType:
    """Import a Python file (``jobs.py``, ``./pipelines/jobs.py``) or a module (``pkg.jobs``)."""
    return import_code(where, prefix="arbalest_cli_", guard=_its_own_errors)


@contextlib.contextmanager
def _its_own_errors(missing: str | None = None) -> Iterator[None]:
    """Whatever the user's code raises becomes a ``CodeError`` (Arbalest's own errors, and
    the module itself not being found, stay as they are)."""
    try:
        yield
    except ArbalestError as exc:
        if exc.retryable:
            raise
        raise CodeError(exc) from exc  # a SchemaError, a bad Pipeline(...): where it is
    except ModuleNotFoundError as exc:
        if missing is not None and exc.name == missing.split(".")[0]:
            raise
        raise CodeError(exc) from exc
    except Exception as exc:
        raise CodeError(exc) from exc


def _where(error: BaseException) -> str | None:
    """``file:line`` of a SyntaxError or a field's SchemaError, else of the deepest frame in
    the user's own code (not Arbalest's, not Python's, not an installed package's)."""
    if isinstance(error, SyntaxError | SchemaError) and error.filename and error.lineno:
        return f"{_shown(error.filename)}:{error.lineno}"  # a field's line, not its class's
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if _is_users(frame.filename):
            return f"{_shown(frame.filename)}:{frame.lineno}"
    return None


_NOT_USERS = tuple(
    {
        str(Path(__file__).resolve().parents[1]),  # arbalest itself
        *(sysconfig.get_path(p) for p in ("stdlib", "platstdlib", "purelib", "platlib")),
    }
)


def _is_users(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return False
    resolved = os.path.realpath(filename)
    return not any(resolved == d or resolved.startswith(d + os.sep) for d in _NOT_USERS)


def _shown(filename: str) -> str:
    """A path as short as it can be said: relative to the working directory when under it."""
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except ValueError:
        return filename


def resolve_pipeline(target: str) -> Pipeline:
    """The pipeline a target names: ``NAME`` (a ``Pipeline`` or a function returning one),
    else the variable ``pipeline``, else the module's only ``Pipeline``."""
    return find_pipeline(target, prefix="arbalest_cli_", guard=_its_own_errors)


def resolve_schema(target: str) -> type[Schema]:
    """The schema class a target ``MODULE_OR_FILE:SCHEMA`` names."""
    where, name = split_target(target)
    if name is None:
        raise ConfigurationError(f"{target!r}: write MODULE_OR_FILE:SCHEMA")
    module = load_module(where)
    value = getattr(module, name, None)
    if not _is_schema(value):
        schemas = sorted(k for k, v in vars(module).items() if _is_schema(v))
        found = ", ".join(schemas) or "none"
        raise ConfigurationError(
            f"{where}:{name} is not a schema class{did_you_mean(name, schemas)} "
            f"(schemas there: {found})"
        )
    return value  # type: ignore[return-value]  # _is_schema checked it


def _is_schema(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, Schema) and "__table__" in vars(value)
