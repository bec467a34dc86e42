"""Writing the inferred class as Python source, already formatted.

The text is what ``ruff format`` (88 columns, double quotes) makes of it, so that it can be
pasted into a project and stay untouched by its formatter: a line too long for a trailing
comment gets the comment on the line above, and a call too long for one line is split as
the formatter splits it (the arguments on one line, else one a line with a trailing comma).
"""

from __future__ import annotations

import keyword
import re
import textwrap
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from arbalest.inference.types import Choice, Node, choose
from arbalest.schema._build import MAX_IDENTIFIER_BYTES, RESERVED_NAMES, snake_case

__all__ = [
    "IMPORTED",
    "LINE_LENGTH",
    "Member",
    "class_name",
    "loads_something",
    "members",
    "python_name",
    "render",
    "string",
]

LINE_LENGTH: Final = 88
#: Objects nested deeper than this are kept whole (``Super``), not as nested classes.
MAX_DEPTH: Final = 8
#: Attribute names are cut to this many characters (column names join them).
MAX_NAME: Final = 60
_INDENT: Final = "    "
#: Names the module imports; a class of that name would hide one of them.
IMPORTED: Final = frozenset(
    {"Schema", "Nested", "String", "Integer", "BigInt", "Decimal", "Double", "Boolean"}
    | {"Date", "Timestamp", "TimestampTZ", "Super"}
)


@dataclass
class Member:
    """One member of a class body: a field, a nested class, or a key left out.

    Attributes:
        key: The JSON key.
        attr: The attribute name.
        node: What the sample holds there.
        choice: The field type (``None`` for a nested class).
        members: A nested class's members.
        name: An explicit column name (only when the default would be too long).
    """

    key: str
    attr: str
    node: Node
    choice: Choice | None = None
    members: list[Member] = field(default_factory=list)
    name: str | None = None


def python_name(key: str, *, top: bool) -> str:
    """A snake_case attribute name for a JSON key: ``createdAt`` -> ``created_at``,
    ``user.name`` -> ``user_name``, ``2fa`` -> ``f_2fa``, ``class`` -> ``class_``."""
    text = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")
    text = snake_case(re.sub(r"[^0-9A-Za-z]+", "_", text))
    text = re.sub(r"_+", "_", text).strip("_")[:MAX_NAME].rstrip("_") or "field"
    if text[0].isdigit():
        text = "f_" + text
    if keyword.iskeyword(text) or (top and text in RESERVED_NAMES):
        text += "_"
    return text


def class_name(text: str) -> str:
    """A class name from a source's last segment: ``github-events/`` -> ``GithubEvents``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[A-Za-z0-9]+", ascii_text)
    name = "".join(w[:1].upper() + w[1:] for w in words)[:MAX_NAME]
    if not name or name[0].isdigit() or keyword.iskeyword(name) or name in IMPORTED:
        name = "Record" + name
    return name


def _unique(wanted: str, taken: set[str]) -> str:
    if wanted not in taken:
        return wanted
    number = 2
    while f"{wanted}_{number}" in taken:
        number += 1
    return f"{wanted}_{number}"


def members(node: Node) -> list[Member]:
    """The members of the class for ``node``'s keys, with names unique in each class and
    column names unique in the table."""
    return _members(node, (), set(), 1)


def _members(node: Node, prefix: tuple[str, ...], columns: set[str], depth: int) -> list[Member]:
    out: list[Member] = []
    taken: set[str] = set()
    for key, child in node.children.items():
        attr = _unique(python_name(key, top=not prefix), taken)
        member = Member(key, attr, child)
        if not key:  # a JSONPath cannot name the empty key
            member.choice = Choice(None, note="the empty key, which no JSONPath can name")
            out.append(member)
            continue
        nested = child.kinds == {"object"} and depth < MAX_DEPTH and bool(child.children)
        if nested:
            taken.add(attr)
            member.members = _members(child, (*prefix, attr), columns, depth + 1)
            if loads_something(member.members):
                out.append(member)
                continue
            taken.discard(attr)
        member.choice = choose(child)
        if member.choice.type is None:
            out.append(member)  # left out, with a comment
            continue
        # the column joins the attribute names: rename the attribute until it is unique
        base, number = member.attr, 2
        while "_".join((*prefix, member.attr)) in columns:
            while f"{base}_{number}" in taken:
                number += 1
            member.attr = f"{base}_{number}"
            number += 1
        taken.add(member.attr)
        column = "_".join((*prefix, member.attr))
        columns.add(column)
        if len(column) > MAX_IDENTIFIER_BYTES:
            member.name = _unique(column[: MAX_IDENTIFIER_BYTES - 8], columns)
            columns.add(member.name)
        out.append(member)
    return out


# -- text --------------------------------------------------------------------------------


def width(text: str) -> int:
    """Columns ``text`` takes (it is ASCII: see ``string()``)."""
    return len(text)


def string(text: str) -> str:
    """A Python string literal for ``text``, in ASCII, quoted as the formatter quotes it
    (double quotes unless the text has more of them than single quotes)."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out = []
    for ch in text:
        code = ord(ch)
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif 32 <= code < 127:
            out.append(ch)
        elif code < 256:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return quote + "".join(out) + quote


def _comment(text: str) -> str:
    """Text safe for a comment: one line, ASCII."""
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)


def share(node: Node, records: int) -> str:
    """The share of records with no value at ``node``: ``null 0%``, ``null <1%``, ``null 12%``."""
    missing = records - node.present
    if missing == 0:
        return "null 0%"
    if missing == records:
        return "null 100%"
    percent = 100 * missing / records
    if percent < 1:
        return "null <1%"
    if percent > 99:
        return "null >99%"
    return f"null {round(percent)}%"


def _statement(pad: str, head: str, args: list[str], comment: str) -> list[str]:
    """``head(args)``, with a trailing comment, as the formatter lays it out."""
    one = f"{pad}{head}({', '.join(args)})"
    if width(f"{one}  # {comment}") <= LINE_LENGTH:
        return [f"{one}  # {comment}"]
    lines = [f"{pad}# {comment}"]
    if width(one) <= LINE_LENGTH or not args:
        return [*lines, one]
    inner = pad + _INDENT
    if width(inner + ", ".join(args)) <= LINE_LENGTH:
        return [*lines, f"{pad}{head}(", inner + ", ".join(args), f"{pad})"]
    return [*lines, f"{pad}{head}(", *(f"{inner}{a}," for a in args), f"{pad})"]


def _body(members: list[Member], records: int, pad: str, lead: list[str]) -> list[str]:
    lines = list(lead)
    for index, member in enumerate(members):
        if member.choice is None:  # a nested class: an empty line before and after
            if lines and lines[-1] != "":
                lines.append("")
            lines.append(f"{pad}class {member.attr}(Nested):  # {share(member.node, records)}")
            key = [f"{pad}{_INDENT}__key__ = {string(member.key)}"]
            lines.extend(
                _body(
                    member.members, records, pad + _INDENT, key if member.attr != member.key else []
                )
            )
            if index < len(members) - 1:
                lines.append("")
            continue
        note = share(member.node, records)
        if member.choice.note:
            note += f": {member.choice.note}"
        if member.choice.type is None:
            lines.append(f"{pad}# left out {string(member.key)}, {note}")
            continue
        args = [str(a) for a in member.choice.args]
        if member.attr != member.key:
            args.append(f"key={string(member.key)}")
        if member.name is not None:
            args.append(f"name={string(member.name)}")
        lines.extend(_statement(pad, f"{member.attr} = {member.choice.type}", args, note))
    return lines


def loads_something(members: Iterable[Member]) -> bool:
    """Whether the members have a field at all (not only keys left out)."""
    return any(m.choice is None or m.choice.type is not None for m in members)


def _types(members: Iterable[Member]) -> set[str]:
    found: set[str] = set()
    for member in members:
        if member.choice is None:
            found |= {"Nested"} | _types(member.members)
        elif member.choice.type is not None:
            found.add(member.choice.type)
    return found


def _import(names: list[str]) -> list[str]:
    one = f"from arbalest import {', '.join(names)}"
    if width(one) <= LINE_LENGTH:
        return [one]
    return ["from arbalest import (", *(f"{_INDENT}{n}," for n in names), ")"]


def _wrap(text: str, pad: str = "") -> list[str]:
    return [
        f"{pad}# {line}"
        for line in textwrap.wrap(
            _comment(text),
            LINE_LENGTH - len(pad) - 2,
            break_long_words=False,
            break_on_hyphens=False,
        )
    ]


def render(
    name: str,
    members: list[Member],
    *,
    records: int,
    header: str,
) -> str:
    """The module text: a comment saying where the class comes from, the import, the class."""
    body = _body(members, records, _INDENT, [])
    names = sorted(_types(members) | {"Schema"})
    lines = [
        *_wrap(header),
        "",
        *_import(names),
        "",
        "",
        f"class {name}(Schema):",
        *_wrap(
            "No primary key was chosen: mark the field(s) that identify a record with "
            "primary_key=True (merge mode needs one).",
            _INDENT,
        ),
        f"{_INDENT}__tablename__ = {string(snake_case(name))}",
        "",
        *body,
    ]
    return "\n".join(lines) + "\n"
