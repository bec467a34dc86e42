"""The ``arbalest`` command.

```text
arbalest run jobs.py[:NAME]         run a pipeline (NAME: a Pipeline, or a function
arbalest plan jobs.py[:NAME]        returning one; default: `pipeline`, else the only one)
arbalest validate jobs.py[:NAME]
arbalest status jobs.py[:NAME]
arbalest drift jobs.py[:NAME] [--sample N]
arbalest ddl jobs.py:Event --dialect redshift|postgresql|duckdb
arbalest jsonpaths jobs.py:Event
arbalest infer SOURCE [--store LOCATION] [--sample N] [--name NAME]
```

Progress and summaries go to stderr (a bar on a terminal, plain lines otherwise), headed
``pipeline NAME: COMMAND`` when the pipeline has a name (``Pipeline(..., name=...)``);
results (the DDL, the JSON, the plan, the status, the drift report) to stdout. Exit codes:
0 done, 1 a step failed or a warehouse or store could not be reached, 2 bad usage or
configuration. Options can also come from ``ARBALEST_*`` environment variables
(``ARBALEST_WAREHOUSE``, ``ARBALEST_STORE``, ``ARBALEST_VERBOSE``, ``ARBALEST_QUIET``,
``ARBALEST_DIALECT``, ``ARBALEST_PROGRESS_SECONDS``). ``-v`` and ``-q`` go before or after
the command. ``--help`` says all of this.

The commands and their options are defined here; ``commands`` finds the pipeline or schema a
command names (a file or a module), and ``output`` draws progress, summaries and status.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, TypeVar

import click
import sqlalchemy as sa
from rich.console import Console
from sqlalchemy.schema import CreateTable

from arbalest import __version__, inference, journal
from arbalest.cli.commands import CodeError, resolve_pipeline, resolve_schema
from arbalest.cli.output import (
    BarProgress,
    LineProgress,
    configure_logging,
    result_table,
    status_dict,
    status_lines,
    summary_text,
    warning_lines,
)
from arbalest.errors import ArbalestError, ConfigurationError, TooManyRejectsError
from arbalest.pipeline import Pipeline, RunResult, runner
from arbalest.pipeline._failures import one_line
from arbalest.pipeline.result import FORMAT

__all__ = ["cli", "main"]

DONE: Final = 0
FAILED: Final = 1
USAGE: Final = 2
DIALECTS: Final = ("redshift", "postgresql", "duckdb")


class _State:
    verbose = False
    quiet = False
    json: str | None = None  # the command whose JSON document goes to stdout (--json)
    err = Console(stderr=True, emoji=False)
    out = Console(soft_wrap=True, highlight=False, emoji=False)


_state = _State()


def _pipeline(target: str, warehouse: str | None, store: str | None) -> Pipeline:
    pipeline = resolve_pipeline(target)
    if warehouse or store:
        pipeline = pipeline.using(warehouse=warehouse, store=store)
    return pipeline


_TARGET = click.argument("target", metavar="FILE[:NAME]")

_F = TypeVar("_F", bound=Callable[..., object])


def _overriding(name: str, metavar: str, help: str) -> Callable[[_F], _F]:
    """``--<name>``, also read from ``ARBALEST_<NAME>``: a location in place of the
    pipeline's own."""
    envvar = f"ARBALEST_{name.upper()}"
    return click.option(f"--{name}", envvar=envvar, show_envvar=True, metavar=metavar, help=help)


_WAREHOUSE = _overriding("warehouse", "URL", "Use this warehouse URL instead of the pipeline's.")
_STORE = _overriding(
    "store", "LOCATION", "Use this folder or s3:// URL instead of the pipeline's store."
)


def _sample(help: str) -> Callable[[_F], _F]:
    """``--sample N``: how many records a sample reads (``arbalest drift``, ``infer``)."""
    return click.option(
        "--sample",
        type=click.IntRange(min=1),
        default=inference.DEFAULT_SAMPLE,
        show_default=True,
        metavar="N",
        help=help,
    )


_JSON = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document on stdout (its layout: docs/cli.md); stderr is unchanged.",
)
_VERBOSE_HELP = "Also log each object and debug lines; show the traceback of an error."
_QUIET_HELP = "Only errors on stderr."


def _set_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    _state.verbose = _state.verbose or value


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    _state.quiet = _state.quiet or value


def _verbosity(command: _F) -> _F:
    """``-v`` and ``-q`` after the command too: ``arbalest run jobs.py -q``."""
    command = click.option(
        "-q",
        "--quiet",
        "quiet_",
        is_flag=True,
        expose_value=False,
        callback=_set_quiet,
        help=_QUIET_HELP,
    )(command)
    return click.option(
        "-v",
        "--verbose",
        "verbose_",
        is_flag=True,
        expose_value=False,
        callback=_set_verbose,
        help=_VERBOSE_HELP,
    )(command)


def _pipeline_options(command: _F) -> _F:
    """What the commands over a whole pipeline take: ``FILE[:NAME]``, ``--warehouse``,
    ``--store``, ``--json``, ``-v`` and ``-q``."""
    for option in (_verbosity, _JSON, _STORE, _WAREHOUSE, _TARGET):
        command = option(command)
    return command


def _settle() -> None:
    """Once every option is read (before and after the command): check and apply -v/-q."""
    if _state.verbose and _state.quiet:
        _state.verbose = False  # bad usage: the message says it all, no traceback
        raise ConfigurationError("--verbose and --quiet cannot be used together")
    configure_logging(_state.err, verbose=_state.verbose, quiet=_state.quiet)


_HELP = """Load JSON objects from S3 or a folder into Redshift, PostgreSQL or DuckDB.

\b
FILE[:NAME] picks the pipeline of run, plan, validate, status and drift:
  FILE  a Python file (jobs.py) or an importable module (myproject.jobs)
  NAME  a Pipeline in it, or a function that returns one; without :NAME,
        the variable `pipeline`, else the file's only Pipeline
ddl and jsonpaths take MODULE_OR_FILE:SCHEMA, a Schema class; infer takes
SOURCE, a folder or s3:// URL (or, with --store, a prefix in that store).

\b
Environment variables (an option given on the command line wins):
  ARBALEST_WAREHOUSE  --warehouse        ARBALEST_VERBOSE  -v
  ARBALEST_STORE      --store            ARBALEST_QUIET    -q
  ARBALEST_DIALECT    ddl --dialect
  ARBALEST_PROGRESS_SECONDS  seconds between plain progress lines (5)

\b
Exit codes:
  0  done
  1  a step failed, or the warehouse or the store could not be reached;
     the error ends with "(retryable: try again)" when that can help
  2  bad usage or configuration (a wrong name, URL, database or password),
     or a file that cannot be loaded (its error is shown at FILE:LINE):
     fix it before trying again
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, help=_HELP)
# the running code's own version, not an installed distribution's metadata (which an
# editable install keeps from the day it was installed)
@click.version_option(version=__version__, prog_name="arbalest")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    envvar="ARBALEST_VERBOSE",
    help=_VERBOSE_HELP,
)
@click.option("-q", "--quiet", is_flag=True, envvar="ARBALEST_QUIET", help=_QUIET_HELP)
def cli(verbose: bool, quiet: bool) -> None:
    _state.verbose, _state.quiet = verbose, quiet


def _announce(pipeline: Pipeline, command: str) -> None:
    """The header of a named pipeline's output, on stderr: ``pipeline NAME: COMMAND``."""
    if pipeline.name and not _state.quiet:
        _state.err.print(
            f"pipeline {pipeline.name}: {command}", highlight=False, markup=False, soft_wrap=True
        )


def _execute(pipeline: Pipeline, command: str) -> RunResult:
    run: Callable[..., RunResult] = pipeline.validate if command == "validate" else pipeline.run
    _announce(pipeline, command)
    if _state.quiet:
        return run()
    if _state.err.is_terminal:
        with BarProgress.create(_state.err) as bar:
            result = run(progress=BarProgress(bar))
        _state.err.print(result_table(result, name=pipeline.name), width=min(80, _state.err.width))
        for line in warning_lines(result):
            _state.err.print(line, highlight=False, markup=False, soft_wrap=True)
        return result
    with LineProgress(_state.err, each_object=_state.verbose) as lines:
        result = run(progress=lines)
    _state.err.print(summary_text(result), highlight=False, markup=False, soft_wrap=True)
    return result


def _print_json(document: dict[str, Any]) -> None:
    """One JSON document, on one line of stdout (whatever the terminal's width)."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _show_rejects(result: RunResult) -> None:
    if _state.quiet:
        return
    for step in result.steps:
        for reject in step.rejects[:20]:
            _state.err.print(f"rejected: {reject}", highlight=False, soft_wrap=True)
        if len(step.rejects) > 20:
            _state.err.print(f"... and {len(step.rejects) - 20} more rejected", highlight=False)


@cli.command()
@_pipeline_options
def run(target: str, warehouse: str | None, store: str | None, as_json: bool) -> None:
    """Run a pipeline: every step, each committed on its own."""
    _run_or_validate("run", target, warehouse, store, as_json)


@cli.command()
@_pipeline_options
def validate(target: str, warehouse: str | None, store: str | None, as_json: bool) -> None:
    """Dry run: every step in a transaction that is rolled back."""
    _run_or_validate("validate", target, warehouse, store, as_json)


def _opened(
    verb: str, target: str, warehouse: str | None, store: str | None, as_json: bool
) -> Pipeline:
    """The command's pipeline, loaded and announced (``--json``: errors as a document)."""
    _settle()
    _state.json = verb if as_json else None
    pipeline = _pipeline(target, warehouse, store)
    _announce(pipeline, verb)
    return pipeline


def _run_or_validate(
    verb: Literal["run", "validate"],
    target: str,
    warehouse: str | None,
    store: str | None,
    as_json: bool,
) -> None:
    _settle()
    _state.json = verb if as_json else None
    result = _execute(_pipeline(target, warehouse, store), verb)
    _show_rejects(result)
    if as_json:
        _print_json(result.to_dict())


@cli.command()
@_pipeline_options
def plan(target: str, warehouse: str | None, store: str | None, as_json: bool) -> None:
    """Print what a run would do: DDL, objects to load, SQL."""
    pipeline = _opened("plan", target, warehouse, store, as_json)
    found = pipeline.plan()
    if as_json:
        _print_json(found.to_dict())
    else:
        _state.out.print(str(found), markup=False)


@cli.command()
@_pipeline_options
def status(target: str, warehouse: str | None, store: str | None, as_json: bool) -> None:
    """Print the journal of each target: objects and rows loaded, last load."""
    pipeline = _opened("status", target, warehouse, store, as_json)
    targets = list(dict.fromkeys(s.target for s in pipeline.steps if s.target is not None))
    with runner.connect(pipeline, create=False) as conn:  # reads only: creates nothing
        statuses = journal.status(conn, targets)
    if as_json:
        _print_json(status_dict(statuses, targets))
        return
    for line in status_lines(statuses, targets):
        _state.out.print(line, markup=False)


@cli.command(short_help="Print how a sample of the sources drifted from the classes.")
@_TARGET
@_STORE
@_sample(
    f"Read up to N records per step, from up to {inference.MAX_OBJECTS} objects spread "
    "over its source's listing."
)
@_JSON
@_verbosity
def drift(target: str, store: str | None, sample: int, as_json: bool) -> None:
    """Print how a sample of each copy step's records differs from its class: the JSON keys
    no column reads (with the share of records that had them) and the columns no record
    filled, as a load of those records would report them.

    Reads only: lists and reads objects, and never connects to the warehouse.
    """
    _settle()
    _state.json = "drift" if as_json else None
    pipeline = _pipeline(target, None, store)
    _announce(pipeline, "drift")

    def done(step: inference.StepDrift) -> None:
        if not _state.quiet:
            _state.err.print(
                f"{step.label}: sampled {len(step.objects)} object(s), {step.rows:,} "
                f"record(s), {len(step.rejects):,} rejected, {step.seconds:.2f} s",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    found = inference.sample_drift(pipeline, sample=sample, on_step=done)
    if as_json:
        _print_json(found.to_dict())
    else:
        _state.out.print(str(found), markup=False)


@cli.command()
@click.argument("target", metavar="MODULE_OR_FILE:SCHEMA")
@click.option(
    "--dialect",
    type=click.Choice(DIALECTS),
    default="redshift",
    show_default=True,
    envvar="ARBALEST_DIALECT",
    show_envvar=True,
    help="The warehouse to write the DDL for.",
)
@_verbosity
def ddl(target: str, dialect: str) -> None:
    """Print a schema's CREATE TABLE statement."""
    _settle()
    schema = resolve_schema(target)
    engine = sa.create_mock_engine(f"{dialect}://", executor=lambda *a, **k: None)
    text = str(CreateTable(schema.__table__).compile(dialect=engine.dialect)).strip()
    # SQLAlchemy ends each column's line with ", ": no trailing spaces in a file people diff
    text = "\n".join(line.rstrip() for line in text.splitlines())
    _state.out.print(text + ";", markup=False)


@cli.command()
@click.argument("target", metavar="MODULE_OR_FILE:SCHEMA")
@_verbosity
def jsonpaths(target: str) -> None:
    """Print a schema's JSONPaths file."""
    _settle()
    _state.out.print(json.dumps(resolve_schema(target).__jsonpaths__, indent=2), markup=False)


@cli.command()
@click.argument("source", metavar="SOURCE")
@click.option(
    "--store",
    metavar="LOCATION",
    help="The folder or s3:// URL that SOURCE is a prefix in. Without it, SOURCE is "
    "itself a folder or s3:// URL.",
)
@_sample(
    f"Read up to N records, from up to {inference.MAX_OBJECTS} objects spread over the listing."
)
@click.option(
    "--name",
    metavar="NAME",
    help="The class name (default: from SOURCE's last segment, events/ -> Events).",
)
@_verbosity
def infer(source: str, store: str | None, sample: int, name: str | None) -> None:
    """Print a Schema class for a sample of SOURCE's records (reads only)."""
    _settle()
    if store is None:
        store, source = source, ""
    text = inference.infer(store, source, sample=sample, name=name)
    sys.stdout.write(text)
    sys.stdout.flush()


def _fail(message: str, *, code: int, exc: BaseException | None = None) -> int:
    if _state.verbose and exc is not None:
        # the traceback, then the error line: its own last line (the same message) is left out
        lines = traceback.format_exception(exc)
        last = traceback.format_exception_only(exc)
        if lines[-len(last) :] == last:
            lines = lines[: -len(last)]
        _state.err.print("".join(lines).rstrip("\n"), highlight=False, markup=False, soft_wrap=True)
    # one line per error, whatever the driver wrote
    _state.err.print(f"error: {one_line(message)}", highlight=False, markup=False, soft_wrap=True)
    if _state.json is not None:
        # a scheduler reading stdout gets a document even when the command failed
        retryable = bool(getattr(exc, "retryable", False))
        step = getattr(exc, "step", None)
        _print_json(
            {
                "format": FORMAT,
                "command": _state.json,
                "error": {
                    "message": one_line(message),
                    "step": step if isinstance(step, str) else None,
                    "retryable": retryable,
                    "exit_code": code,
                },
            }
        )
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 done, 1 a step failed, 2 bad usage)."""
    _state.verbose = _state.quiet = False
    _state.json = None
    # no :emoji: codes: names, keys and values are printed as they are
    _state.err = Console(stderr=True, emoji=False)
    _state.out = Console(soft_wrap=True, highlight=False, emoji=False)
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show(file=sys.stderr)
        return USAGE
    except click.Abort:
        return _fail("aborted", code=FAILED)
    except TooManyRejectsError as exc:
        for reject in exc.rejects[:20]:
            _state.err.print(f"rejected: {reject}", highlight=False, soft_wrap=True)
        return _fail(str(exc), code=FAILED, exc=exc)
    except ConfigurationError as exc:
        return _fail(str(exc), code=USAGE, exc=exc)
    except ArbalestError as exc:
        # a step's failure or not (a store outage while planning): say when trying again helps
        hint = " (retryable: try again)" if exc.retryable else ""
        return _fail(f"{exc}{hint}", code=FAILED, exc=exc)
    except CodeError as exc:
        return _fail(str(exc), code=USAGE, exc=exc)
    return DONE
