"""LocalStore: a folder as an object store; and open_store choosing the store for a location."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbalest.errors import ConfigurationError, ObjectNotFoundError, StoreError
from arbalest.stores import LocalStore, ObjectInfo, ObjectStore, folder_prefix, join_key, open_store


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture
def store(root: Path) -> LocalStore:
    return LocalStore(root)


def write(root: Path, *keys: str) -> None:
    for key in keys:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.encode())


def keys(store: LocalStore, prefix: str = "", exclude: str | None = None) -> list[str]:
    return [info.key for info in store.list(prefix, exclude=exclude)]


LAYOUT = (
    "events/2024/01/b.json",
    "events/2024/01/a.json",
    "events/top.json",
    "events_old/x.json",
    "events.json",
    "eventsfile",
    "other/y.json",
    "z.json",
)


# --- listing -----------------------------------------------------------------------------


def test_listing_everything_gives_every_file_by_key_order(store: LocalStore, root: Path) -> None:
    write(root, *LAYOUT)
    assert keys(store) == [
        "events.json",
        "events/2024/01/a.json",
        "events/2024/01/b.json",
        "events/top.json",
        "events_old/x.json",
        "eventsfile",
        "other/y.json",
        "z.json",
    ]


@pytest.mark.parametrize("prefix", ["events", "events/", "/events/", "events//"])
def test_a_prefix_is_read_as_a_folder(store: LocalStore, root: Path, prefix: str) -> None:
    write(root, *LAYOUT)
    assert keys(store, prefix) == [
        "events/2024/01/a.json",
        "events/2024/01/b.json",
        "events/top.json",
    ]


@pytest.mark.parametrize("prefix", ["", "/"])
def test_an_empty_prefix_is_the_whole_store(store: LocalStore, root: Path, prefix: str) -> None:
    write(root, *LAYOUT)
    assert len(keys(store, prefix)) == len(LAYOUT)


def test_a_nested_prefix_lists_only_that_folder(store: LocalStore, root: Path) -> None:
    write(root, *LAYOUT)
    assert keys(store, "events/2024") == ["events/2024/01/a.json", "events/2024/01/b.json"]


@pytest.mark.parametrize("prefix", ["missing", "events.json", "eventsfile", "even"])
def test_a_prefix_that_is_not_a_folder_lists_nothing(
    store: LocalStore, root: Path, prefix: str
) -> None:
    write(root, *LAYOUT)
    assert keys(store, prefix) == []


def test_exclude_leaves_out_a_folder_and_only_that_folder(store: LocalStore, root: Path) -> None:
    write(root, "events/a.json", "events/_rejects/r.json", "events/_rejects_old/s.json")
    assert keys(store, "events", exclude="events/_rejects") == [
        "events/_rejects_old/s.json",
        "events/a.json",
    ]
    assert keys(store, "events", exclude="events/_rejects/") == keys(
        store, "events", exclude="events/_rejects"
    )
    assert keys(store, exclude="events") == []


def test_exclude_is_a_key_prefix_from_the_root_not_from_the_listed_folder(
    store: LocalStore, root: Path
) -> None:
    write(root, "events/_rejects/r.json", "_rejects/q.json")
    assert keys(store, "events", exclude="_rejects") == ["events/_rejects/r.json"]


def test_object_info_gives_size_etag_and_utc_modification_time(
    store: LocalStore, root: Path
) -> None:
    store.put("a.json", b"12345")
    os.utime(root / "a.json", ns=(1_000_000_000_123_456_789, 1_000_000_000_123_456_789))
    (info,) = store.list()
    assert info == ObjectInfo(
        key="a.json",
        size=5,
        etag="5-1000000000123456789",
        last_modified=dt.datetime(2001, 9, 9, 1, 46, 40, 123457, tzinfo=dt.UTC),
    )


def test_a_rewritten_file_gets_a_new_etag(store: LocalStore, root: Path) -> None:
    store.put("a.json", b"12345")
    os.utime(root / "a.json", ns=(10**18, 10**18))
    before = next(store.list()).etag
    store.put("a.json", b"54321")  # same size
    os.utime(root / "a.json", ns=(10**18 + 1, 10**18 + 1))
    assert next(store.list()).etag != before


def test_listing_is_lazy_and_a_symlinked_file_is_listed_and_read(
    store: LocalStore, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.json"
    outside.write_bytes(b'{"linked": true}\n')
    (root / "events").mkdir()
    (root / "events" / "linked.json").symlink_to(outside)
    listing = store.list("events")
    assert iter(listing) is listing  # a generator, page by page like S3
    (info,) = listing
    assert (info.key, info.size) == ("events/linked.json", 17)
    assert store.get("events/linked.json") == b'{"linked": true}\n'


# --- reading, writing, deleting ----------------------------------------------------------


def test_put_then_get_gives_the_bytes_back_and_creates_folders(
    store: LocalStore, root: Path
) -> None:
    store.put("a/b/c.json", b"\x00\xffdata")
    assert store.get("a/b/c.json") == b"\x00\xffdata"
    assert (root / "a" / "b" / "c.json").read_bytes() == b"\x00\xffdata"
    assert sorted(p.name for p in (root / "a" / "b").iterdir()) == ["c.json"]  # no temp file


def test_put_replaces_an_existing_object(store: LocalStore) -> None:
    store.put("a.json", b"first, longer")
    store.put("a.json", b"second")
    assert store.get("a.json") == b"second"


def test_open_streams_the_stored_bytes(store: LocalStore) -> None:
    store.put("a.json.gz", b"\x1f\x8b not decompressed")
    with store.open("a.json.gz") as fh:
        assert fh.read(2) == b"\x1f\x8b"
        assert fh.read() == b" not decompressed"


def test_a_missing_object_is_not_found(store: LocalStore) -> None:
    with pytest.raises(ObjectNotFoundError, match=r"no object 'nope\.json' in file://"):
        store.get("nope.json")
    with pytest.raises(ObjectNotFoundError):
        store.open("dir/nope.json")


def test_reading_a_folder_is_a_store_error_not_a_missing_object(
    store: LocalStore, root: Path
) -> None:
    (root / "events").mkdir()
    with pytest.raises(StoreError, match="cannot read 'events'") as exc:
        store.get("events")
    assert type(exc.value) is StoreError


def test_writing_under_a_file_is_a_store_error(store: LocalStore) -> None:
    store.put("a.json", b"x")
    with pytest.raises(StoreError, match=r"cannot write 'a\.json/b\.json'"):
        store.put("a.json/b.json", b"y")


def test_delete_removes_the_object_and_a_missing_one_is_fine(store: LocalStore) -> None:
    store.put("a.json", b"x")
    store.delete("a.json")
    assert keys(store) == []
    store.delete("a.json")
    store.delete("never/was.json")


def test_deleting_a_folder_is_a_store_error(store: LocalStore, root: Path) -> None:
    (root / "events").mkdir()
    with pytest.raises(StoreError, match="cannot delete 'events'"):
        store.delete("events")


@pytest.mark.parametrize("key", ["../x.json", "a/../../x.json", "/etc/passwd", ".."])
def test_a_key_outside_the_folder_is_refused(store: LocalStore, key: str) -> None:
    for action in (store.get, store.delete, store.uri, lambda k: store.put(k, b"x")):
        with pytest.raises(StoreError, match="is outside the store folder"):
            action(key)


# A file or folder name: anything POSIX allows (no "/", no NUL; not "." or "..").
NAME = st.text(
    st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=8
).filter(lambda name: name not in (".", "..") and len(name.encode()) < 200)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(paths=st.sets(st.lists(NAME, min_size=1, max_size=3).map(tuple), min_size=1, max_size=5))
def test_every_listed_key_reads_back_and_has_its_own_url(
    tmp_path: Path, paths: set[tuple[str, ...]]
) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    written: dict[str, bytes] = {}
    for parts in sorted(paths, key=len):
        path = root.joinpath(*parts)
        if any(p.is_file() for p in path.parents) or path.is_dir():
            continue  # a file where a folder would be, or the reverse
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(repr(parts).encode())
        written["/".join(parts)] = repr(parts).encode()
    store = LocalStore(root)
    listed = [info.key for info in store.list()]
    assert sorted(listed) == sorted(written)
    for key in listed:
        assert store.get(key) == written[key]
        assert store.uri(key) == root.resolve().joinpath(*key.split("/")).as_uri()


@pytest.mark.parametrize("prefix", ["..", "../outside", "events/../../outside"])
def test_listing_never_leaves_the_folder(store: LocalStore, root: Path, prefix: str) -> None:
    (root.parent / "outside").mkdir()
    (root.parent / "outside" / "secret.json").write_bytes(b"{}")
    (root / "events").mkdir()
    with pytest.raises(StoreError, match="is outside the store folder"):
        list(store.list(prefix))
    with pytest.raises(StoreError, match="is outside the store folder"):
        store.children(prefix)


def test_a_key_with_dot_segments_inside_the_folder_is_fine(store: LocalStore) -> None:
    store.put("a/./b/../c.json", b"x")
    assert keys(store) == ["a/c.json"]


def test_urls_are_file_uris(store: LocalStore, root: Path) -> None:
    assert store.url == root.resolve().as_uri()
    assert store.uri("events/a b.json") == (root.resolve() / "events" / "a b.json").as_uri()
    assert store.uri("events/a b.json").endswith("/events/a%20b.json")
    assert repr(store) == f"LocalStore({str(root.resolve())!r})"


# --- the folder itself -------------------------------------------------------------------


def test_a_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        LocalStore(tmp_path / "missing")


def test_create_makes_the_folder(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "new" / "lake", create=True)
    assert (tmp_path / "new" / "lake").is_dir()
    assert store.root == (tmp_path / "new" / "lake").resolve()


def test_a_relative_folder_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lake").mkdir()
    monkeypatch.chdir(tmp_path)
    assert LocalStore("lake").root == (tmp_path / "lake").resolve()


def test_local_store_satisfies_the_store_protocol(store: LocalStore) -> None:
    assert isinstance(store, ObjectStore)


# --- helpers and open_store ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "folder"),
    [("", ""), ("/", ""), ("events", "events/"), ("/events//", "events/"), ("a/b", "a/b/")],
)
def test_folder_prefix(prefix: str, folder: str) -> None:
    assert folder_prefix(prefix) == folder


def test_join_key_uses_single_slashes_and_skips_empty_parts() -> None:
    assert join_key("raw/", "/events/", "a.json") == "raw/events/a.json"
    assert join_key("", "a.json") == "a.json"
    assert join_key("", "/", "") == ""


def test_open_store_gives_a_local_store_for_a_folder(root: Path) -> None:
    for location in (root, str(root), f"file://{root}"):
        store = open_store(location)
        assert isinstance(store, LocalStore)
        assert store.root == root.resolve()


def test_open_store_returns_a_store_as_it_is(store: LocalStore) -> None:
    assert open_store(store) is store


def test_open_store_refuses_a_missing_folder_and_other_schemes(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        open_store(tmp_path / "missing")
    with pytest.raises(ConfigurationError, match=r"unsupported store location 'gs://b/p'"):
        open_store("gs://b/p")
