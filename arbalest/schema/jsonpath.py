"""Redshift JSONPaths: parse, write, and translate for DuckDB's JSON functions.

A path is a tuple of steps: a ``str`` is an object key, an ``int`` an array index.
Redshift accepts bracket notation (``$['a']['b'][0]``) and dot notation (``$.a.b[0]``), not
mixed in one expression; no wildcards or filters. We always write bracket notation, which
can express any key (``$['some.dotted.key']`` is one key).
"""

from __future__ import annotations

import re
from typing import Final, TypeAlias

from arbalest.errors import SchemaError

__all__ = ["JSONPath", "Step", "display_path", "duckdb_path", "format_path", "parse_path"]

Step: TypeAlias = str | int
JSONPath: TypeAlias = tuple[Step, ...]

_BRACKET_KEY: Final = re.compile(r"\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*\"((?:[^\"\\]|\\.)*)\"\s*\]")
_INDEX: Final = re.compile(r"\[\s*([0-9]+)\s*\]")
_DOT_KEY: Final = re.compile(r"\.([^.\[\]'\"]+)")


def parse_path(text: str) -> JSONPath:
    """Parse a Redshift JSONPath into steps.

    Raises:
        SchemaError: If the path is not one Redshift accepts (with the position).
    """
    if not text.startswith("$"):
        raise SchemaError(f"JSONPath {text!r} must start with '$'")
    steps: list[Step] = []
    notations: set[str] = set()
    pos = 1
    while pos < len(text):
        if m := _BRACKET_KEY.match(text, pos):
            raw = m.group(1) if m.group(1) is not None else m.group(2)
            steps.append(re.sub(r"\\(.)", r"\1", raw))
            notations.add("bracket")
        elif m := _INDEX.match(text, pos):
            steps.append(int(m.group(1)))
        elif m := _DOT_KEY.match(text, pos):
            steps.append(m.group(1))
            notations.add("dot")
        else:
            raise SchemaError(
                f"JSONPath {text!r} is not valid at position {pos} ({text[pos:]!r}); "
                "write keys as ['key'] or .key and array indexes as [0]"
            )
        pos = m.end()
    if len(notations) > 1:
        raise SchemaError(f"JSONPath {text!r} mixes bracket and dot notation")
    if not steps:
        raise SchemaError(f"JSONPath {text!r} selects the whole record; name a key")
    if not isinstance(steps[0], str):
        raise SchemaError(f"JSONPath {text!r} must start with a key, not an index")
    for step in steps:
        if step == "":
            raise SchemaError(f"JSONPath {text!r} has an empty key, which is not supported")
    return tuple(steps)


def format_path(path: JSONPath) -> str:
    """Write steps in bracket notation: ``$['child']['someBoolean']``, ``$['tags'][0]``."""
    return "$" + "".join(
        f"[{step}]" if isinstance(step, int) else _bracketed(step) for step in path
    )


def _bracketed(key: str) -> str:
    """A key in bracket notation, its backslashes and quotes escaped: ``['it\\'s']``."""
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"['{escaped}']"


_PLAIN_KEY: Final = re.compile(r"[^.\[\]'\"\s]+")


def display_path(path: JSONPath) -> str:
    """Steps as people write them: ``child.name``, ``tags[0]``; a key that a dot would not
    keep whole (a dot, a bracket, a quote, a space, or empty) in brackets, escaped as
    ``format_path`` does: ``child['my.key']``, ``['first name']``."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _PLAIN_KEY.fullmatch(step):
            out += f".{step}" if out else step
        else:
            out += _bracketed(step)
    return out


def duckdb_path(path: JSONPath) -> str:
    """Translate steps into a path for DuckDB's ``json_extract`` (``$."a"."b"[0]``)."""
    out = ["$"]
    for step in path:
        if isinstance(step, int):
            out.append(f"[{step}]")
        else:
            escaped = step.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'."{escaped}"')
    return "".join(out)
