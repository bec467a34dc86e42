"""Property test of the drift report's pre-filter: the transform lists a record's keys
(``json_keys``) only when its ``:`` do not match the keys its columns found, and the report
must come out as if every record had been listed. The reference reads each record in Python
as the loaders do (``convert.json_loads``: of duplicate keys the first one counts)."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arbalest import Integer, Nested, Schema, String, Super, TimestampTZ, convert
from arbalest.loading.converter import Converter, batches
from arbalest.loading.drift import drift_report, merge_shapes
from arbalest.loading.reader import Feed
from arbalest.schema.jsonpath import JSONPath, display_path
from arbalest.stores.local import LocalStore
from tests.fixtures.schemas import fresh_base

CI: Final = bool(os.environ.get("CI"))


Base = fresh_base()


class Event(Base):  # type: ignore[misc, valid-type]
    __tablename__ = "drift_events"
    id = String(40)
    at = TimestampTZ()
    first = String(40, path="$.items[0].name")

    class child(Nested):
        name = String(40)

        class depth(Nested):
            level = Integer()


class Loose(Base):  # type: ignore[misc, valid-type]
    """``extra`` is a JSON column: objects inside it are not read into."""

    __tablename__ = "drift_loose"
    id = String(40)
    extra = Super()


@pytest.fixture(scope="module")
def converters() -> Iterator[dict[str, Converter]]:
    made = {
        name: Converter(schema.__fields__, convert.ConvertOptions(), workers=1)
        for name, schema in (("event", Event), ("loose", Loose))
    }
    yield made
    for conv in made.values():
        conv.close()


# keys the columns read, keys they do not, and keys that need care in JSON text
KEYS = st.sampled_from(["id", "at", "items", "child", "name", "depth", "level", "x", "a", "é"])
TEXT = st.sampled_from(["", "a", '":', '" :', "10:00", "\\u", 'x"y', "é", "\t:"])
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), TEXT)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(st.tuples(KEYS, inner), max_size=4),  # an object: pairs, duplicates kept
    ),
    max_leaves=8,
)
RECORD = st.lists(
    st.one_of(
        st.tuples(st.just("id"), st.sampled_from(["a", "b:c", '"', None])),
        st.tuples(st.just("at"), st.sampled_from(["2026-01-01T10:00:00Z", "2026-01-01", None])),
        st.tuples(KEYS, VALUE),
    ),
    max_size=6,
)
STYLE = st.sampled_from(["compact", "default", "space", "tab", "escaped"])


def write(value: Any, style: str) -> str:
    """JSON text of ``value`` (objects are lists of pairs) in one of several styles."""
    if isinstance(value, list) and all(isinstance(p, tuple) for p in value) and value:
        sep = {"compact": ":", "default": ": ", "space": " : ", "tab": "\t:", "escaped": ":"}
        parts = []
        for key, item in value:
            name = json.dumps(key)
            if style == "escaped" and key:
                name = '"' + "".join(f"\\u{ord(c):04x}" for c in key) + '"'
            parts.append(name + sep[style] + write(item, style))
        return "{" + ("," if style == "compact" else ", ").join(parts) + "}"
    if isinstance(value, list):
        return "[" + ",".join(write(v, style) for v in value) + "]"
    if style == "escaped" and isinstance(value, str):  # every character as \\u: ":" too
        return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in value) + '"'
    return json.dumps(value)


def reference(schema: type[Schema], texts: list[str]) -> Counter[JSONPath]:
    """The unmapped key paths of the records loaded, read in Python."""
    read: dict[JSONPath, set[str]] = {(): set()}
    for spec in schema.__fields__:
        for k, step in enumerate(spec.path):
            if isinstance(step, str):
                read.setdefault(spec.path[:k], set()).add(step)
    seen: Counter[JSONPath] = Counter()
    for text in texts:
        record = convert.json_loads(text)
        for parent, keys in read.items():
            value: Any = record
            for step in parent:
                if isinstance(step, int):
                    ok = isinstance(value, list) and step < len(value)
                else:
                    ok = isinstance(value, dict) and step in value
                value = value[step] if ok else None
            if isinstance(value, dict):
                for key in set(value) - keys:
                    seen[(*parent, key)] += 1
    return seen


@settings(
    max_examples=60 if CI else 100,
    deadline=None,
    derandomize=CI,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.tuples(RECORD, STYLE), min_size=1, max_size=8), st.booleans())
# two keys no column reads, hidden by the two escaped ":" of the time were escapes ignored
@example([([("at", "2026-01-01T10:00:00Z"), ("x", 1), ("a", 2)], "escaped")], False)
def test_drift_matches_a_python_reading(
    converters: dict[str, Converter], records: list[tuple[list[Any], str]], loose: bool
) -> None:
    schema: type[Schema] = Loose if loose else Event
    texts = [write(pairs or [("id", "a")], style) for pairs, style in records]
    with tempfile.TemporaryDirectory() as lake, tempfile.TemporaryDirectory() as work:
        (Path(lake) / "a.json").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        store = LocalStore(lake)
        shapes = []
        loaded: list[str] = []
        rows = 0
        with Feed(store, list(store.list("")), compression=None, workdir=Path(work)) as feed:
            for batch in converters["loose" if loose else "event"].run(
                batches(iter(feed), 1 << 20), Path(work), "arrow", with_position=True
            ):
                shapes.append(batch.shapes)
                rows += batch.total_rows
                if batch.table is not None:
                    lines = batch.table.column("line").to_pylist()
                    loaded += [texts[n - 1] for n in lines]
                batch.table = None
                for chunk in batch.chunks:
                    chunk.discard()
    objects = converters["loose" if loose else "event"]._transforms[0].objects
    got = drift_report(objects, merge_shapes(shapes), {}, rows)
    want = reference(schema, loaded)
    assert rows == len(loaded)
    assert {u.path: (u.records, u.share) for u in got.unmapped} == {
        display_path(path): (count, count / rows) for path, count in want.items()
    }
