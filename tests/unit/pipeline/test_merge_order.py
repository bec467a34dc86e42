"""The order a merge applies objects in: oldest first by last modification, then key. The
backends number objects in this order (Redshift: one COPY per object), so the newest record
for a key wins."""

from __future__ import annotations

import datetime as dt

from arbalest.pipeline.runner import select_objects
from arbalest.stores.base import ObjectInfo

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def info(key: str, seconds: int, etag: str = "e") -> ObjectInfo:
    return ObjectInfo(key, 1, etag, T0 + dt.timedelta(seconds=seconds))


def test_merge_applies_objects_by_last_modified_then_key() -> None:
    listing = [info("b.json", 5), info("a.json", 5), info("z.json", 1), info("c.json", 9)]
    objects, changed = select_objects(listing, {}, "merge")
    assert [o.key for o in objects] == ["z.json", "a.json", "b.json", "c.json"]
    assert changed == []


def test_a_changed_object_takes_its_place_by_its_new_modification_time() -> None:
    listing = [info("a.json", 7, "new"), info("b.json", 3), info("c.json", 1, "same")]
    objects, _ = select_objects(listing, {"a.json": "old", "c.json": "same"}, "merge")
    assert [o.key for o in objects] == ["b.json", "a.json"]
