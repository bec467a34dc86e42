"""The reader: compression, chunk files cut at line ends, overlong lines, read-ahead."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import io
import tempfile
import tracemalloc
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard
from hypothesis import example, given, settings
from hypothesis import strategies as st

from arbalest.convert import MAX_RECORD_BYTES
from arbalest.errors import ConfigurationError, ObjectNotFoundError, StoreError
from arbalest.loading import reader
from arbalest.loading.reader import (
    CHUNK_BYTES,
    COMPRESSIONS,
    IN_PLACE_BYTES,
    Chunk,
    Feed,
    compression_of,
    open_decompressed,
    spool,
)
from arbalest.stores import LocalStore, ObjectInfo
from tests.fixtures.stores import (
    GatedLocal,
    GatedMemory,
    MemoryStore,
    reader_threads,
    readers_at_the_gate,
)

LIMIT = 100  # the record limit in tests that lower it


def compress(data: bytes, compression: str | None) -> bytes:
    if compression == "gzip":
        return gzip.compress(data)
    if compression == "bzip2":
        return bz2.compress(data)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


_SUFFIX = {"gzip": ".gz", "bzip2": ".bz2", "zstd": ".zst", None: ""}


@pytest.fixture
def lake(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "lake", create=True)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where chunk files go."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Read objects 16 bytes at a time, so lines and chunks straddle many reads."""
    monkeypatch.setattr(reader, "_BLOCK", 16)
    return 16


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """The record limit lowered to 100 bytes (the reader imports the name, so patch it there)."""
    monkeypatch.setattr(reader, "MAX_RECORD_BYTES", LIMIT)
    return LIMIT


def put(store: LocalStore, key: str, data: bytes) -> ObjectInfo:
    store.put(key, data)
    (info,) = (i for i in store.list() if i.key == key)
    return info


def chunk_lines(chunk: Chunk) -> list[bytes]:
    return chunk.path.read_bytes().split(b"\n")[:-1]


def joined(chunks: list[Chunk]) -> bytes:
    return b"".join(c.path.read_bytes() for c in chunks)


# --- compression_of and open_decompressed ------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("events/a.json", None),
        ("events/a", None),
        ("events/a.json.gz", "gzip"),
        ("events/a.JSON.GZ", "gzip"),
        ("a.gzip", "gzip"),
        ("a.json.bz2", "bzip2"),
        ("a.json.zst", "zstd"),
        ("a.json.zstd", "zstd"),
        ("a.json.gz.txt", None),
        ("logs.gz/a.json", None),
        ("a.json.lz4", None),
    ],
)
def test_compression_follows_the_key_suffix(key: str, expected: str | None) -> None:
    assert compression_of(key, None) == expected


@pytest.mark.parametrize("declared", COMPRESSIONS)
def test_a_declared_compression_wins_over_the_suffix(declared: str) -> None:
    assert compression_of("a.json", declared) == declared
    assert compression_of("a.json.gz", declared) == declared


def test_an_unknown_declared_compression_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"'lz4' is not one of gzip, bzip2, zstd"):
        compression_of("a.json", "lz4")


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_open_decompressed_gives_the_original_bytes(compression: str) -> None:
    data = b'{"a": 1}\n' * 1000
    with open_decompressed(io.BytesIO(compress(data, compression)), compression) as stream:
        assert stream.read() == data


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_concatenated_compressed_streams_are_read_to_the_end(compression: str) -> None:
    parts = [b'{"part": 1}\n', b'{"part": 2}\n', b'{"part": 3}\n']
    raw = b"".join(compress(p, compression) for p in parts)
    with open_decompressed(io.BytesIO(raw), compression) as stream:
        assert stream.read() == b"".join(parts)


def test_no_compression_returns_the_stream_itself() -> None:
    raw = io.BytesIO(b"abc")
    assert open_decompressed(raw, None) is raw


def test_an_unknown_compression_cannot_be_opened() -> None:
    with pytest.raises(ConfigurationError, match="unknown compression 'lz4'"):
        open_decompressed(io.BytesIO(b""), "lz4")


# --- spool: in place, or copied into chunk files -----------------------------------------


def test_a_small_local_uncompressed_object_is_read_in_place(
    lake: LocalStore, workdir: Path
) -> None:
    info = put(lake, "events/a.json", b'{"a": 1}\n{"a": 2}')  # no final line end
    (chunk,) = spool(lake, info, 3, None, workdir)
    assert chunk == Chunk(3, info, 1, lake.path("events/a.json"), 17, False, True, {})
    assert list(workdir.iterdir()) == []
    chunk.discard()  # not ours: left alone
    assert lake.get("events/a.json") == b'{"a": 1}\n{"a": 2}'


def test_a_local_object_of_exactly_chunk_bytes_is_read_in_place(
    lake: LocalStore, workdir: Path
) -> None:
    info = put(lake, "a.json", b"x" * 9 + b"\n")
    (chunk,) = spool(lake, info, 0, None, workdir, chunk_bytes=10)
    assert (chunk.temporary, chunk.path) == (False, lake.path("a.json"))


def test_a_local_object_up_to_in_place_bytes_is_read_in_place_however_small_the_chunks(
    lake: LocalStore, workdir: Path
) -> None:
    info = put(lake, "a.json", b"xxxx\n" * 6)  # 30 bytes
    (chunk,) = spool(lake, info, 0, None, workdir, chunk_bytes=10, in_place_bytes=30)
    assert (chunk.temporary, chunk.path, chunk.last) == (False, lake.path("a.json"), True)
    chunks = list(spool(lake, info, 0, None, workdir, chunk_bytes=10, in_place_bytes=29))
    assert [c.temporary for c in chunks] == [True, True, True]
    assert joined(chunks) == b"xxxx\n" * 6


def test_a_local_object_over_chunk_bytes_is_copied_into_chunks(
    lake: LocalStore, workdir: Path
) -> None:
    info = put(lake, "a.json", b"x" * 10 + b"\n")
    chunks = list(spool(lake, info, 0, None, workdir, chunk_bytes=10))
    assert [(c.temporary, c.path.parent, c.first_line, c.last) for c in chunks] == [
        (True, workdir, 1, True),
    ]
    assert joined(chunks) == b"x" * 10 + b"\n"


def test_a_local_compressed_object_is_decompressed_into_a_chunk_file(
    lake: LocalStore, workdir: Path
) -> None:
    info = put(lake, "a.json.gz", gzip.compress(b'{"a": 1}\n{"a": 2}'))
    (chunk,) = spool(lake, info, 5, "gzip", workdir)
    assert chunk.path == workdir / "00000005-000000.ndjson"
    assert chunk.path.read_bytes() == b'{"a": 1}\n{"a": 2}\n'
    assert (chunk.obj, chunk.first_line, chunk.nbytes, chunk.temporary, chunk.last) == (
        5,
        1,
        18,
        True,
        True,
    )
    assert chunk.info == info
    chunk.discard()
    assert not chunk.path.exists()
    chunk.discard()  # a second time is fine


@pytest.mark.parametrize("compression", [*COMPRESSIONS, None])
def test_every_compression_spools_to_the_same_lines(compression: str | None, workdir: Path) -> None:
    data = b"".join(b'{"n": %d}\n' % n for n in range(500))
    key = "a.json" + _SUFFIX[compression]
    store = MemoryStore({key: compress(data, compression)})
    chunks = list(spool(store, store.info(key), 0, compression, workdir, chunk_bytes=1000))
    assert joined(chunks) == data
    assert len(chunks) > 1


def test_chunks_end_at_line_ends_and_number_their_first_lines(
    small_blocks: int, workdir: Path
) -> None:
    lines = [b'{"n": %d, "pad": "%s"}' % (n, b"p" * (n % 7)) for n in range(40)]
    store = MemoryStore({"a.json": b"\n".join(lines) + b"\n"})
    chunks = list(spool(store, store.info("a.json"), 0, None, workdir, chunk_bytes=50))
    assert len(chunks) > 5
    expected_first = 1
    for chunk in chunks:
        data = chunk.path.read_bytes()
        assert data.endswith(b"\n") or (data == b"" and chunk.last)
        assert chunk.nbytes == len(data)
        assert chunk.first_line == expected_first
        count = data.count(b"\n")
        assert chunk_lines(chunk) == lines[expected_first - 1 : expected_first - 1 + count]
        expected_first += count
    assert expected_first == 41
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(c.nbytes >= 50 for c in chunks[:-1])
    assert len({c.path for c in chunks}) == len(chunks)


def test_a_final_line_end_is_added_when_missing_and_not_doubled(workdir: Path) -> None:
    store = MemoryStore({"a.json": b'{"a": 1}\n{"a": 2}', "b.json": b'{"a": 1}\n{"a": 2}\n'})
    for key in ("a.json", "b.json"):
        chunks = list(spool(store, store.info(key), 0, None, workdir))
        assert joined(chunks) == b'{"a": 1}\n{"a": 2}\n'


def test_blank_lines_and_crlf_are_kept_as_they_are(workdir: Path) -> None:
    data = b'\n\n{"a": 1}\r\n\n{"b": 2}\r\n'
    store = MemoryStore({"a.json": data})
    assert joined(list(spool(store, store.info("a.json"), 0, None, workdir))) == data


def test_an_empty_object_gives_one_empty_last_chunk(workdir: Path) -> None:
    store = MemoryStore({"empty.json": b""})
    (chunk,) = spool(store, store.info("empty.json"), 2, None, workdir)
    assert (chunk.first_line, chunk.nbytes, chunk.last, chunk.oversized) == (1, 0, True, {})
    assert chunk.path.read_bytes() == b""


def test_an_empty_compressed_local_object_gives_one_empty_last_chunk(
    lake: LocalStore, workdir: Path
) -> None:
    info = put(lake, "empty.json.zst", compress(b"", "zstd"))
    (chunk,) = spool(lake, info, 0, "zstd", workdir)
    assert (chunk.first_line, chunk.nbytes, chunk.last, chunk.temporary) == (1, 0, True, True)
    assert chunk.path.read_bytes() == b""


def test_an_empty_local_object_is_one_empty_chunk_read_in_place(
    lake: LocalStore, workdir: Path
) -> None:
    info = put(lake, "empty.json", b"")
    (chunk,) = spool(lake, info, 0, None, workdir)
    assert (chunk.first_line, chunk.nbytes, chunk.last, chunk.temporary) == (1, 0, True, False)


def test_an_object_ending_exactly_at_a_chunk_end_has_no_empty_chunk_after_it(
    workdir: Path,
) -> None:
    # an empty last chunk would be read as a blank line after the object's last
    store = MemoryStore({"a.json": b"123456789\n", "b.json": b"123456789\nabcdefghi\n"})
    chunks = list(spool(store, store.info("a.json"), 0, None, workdir, chunk_bytes=10))
    assert [(c.first_line, c.nbytes, c.last) for c in chunks] == [(1, 10, True)]
    chunks = list(spool(store, store.info("b.json"), 0, None, workdir, chunk_bytes=10))
    assert [(c.first_line, c.nbytes, c.last) for c in chunks] == [(1, 10, False), (2, 10, True)]


def test_the_real_block_size_cuts_a_large_object_into_several_chunks(workdir: Path) -> None:
    line = b'{"pad": "' + b"p" * 990 + b'"}'  # 1,001 bytes with its line end
    data = b"\n".join([line] * 5000) + b"\n"  # about 5 MB
    store = MemoryStore({"big.json.gz": gzip.compress(data, compresslevel=1)})
    chunks = list(spool(store, store.info("big.json.gz"), 0, "gzip", workdir, 1024 * 1024))
    assert joined(chunks) == data
    first = 1
    for chunk in chunks:
        assert chunk.first_line == first
        first += chunk.path.read_bytes().count(b"\n")
    assert len(chunks) >= 3
    assert all(c.nbytes >= 1024 * 1024 for c in chunks[:-1])
    assert all(c.path.read_bytes().endswith(b"\n") for c in chunks if c.nbytes)


@pytest.mark.parametrize(
    ("compression", "data", "cause"),
    [
        ("gzip", b"not gzip at all", "Not a gzipped file"),
        ("gzip", gzip.compress(b'{"a": 1}\n' * 100)[:-12], "end-of-stream"),
        ("bzip2", b"not bzip2 data", "Invalid data stream"),
        ("zstd", b"not zstd data", "Unknown frame descriptor"),
    ],
    ids=["gzip-garbage", "gzip-truncated", "bzip2-garbage", "zstd-garbage"],
)
def test_corrupt_compressed_data_is_a_store_error_naming_the_object(
    compression: str, data: bytes, cause: str, workdir: Path
) -> None:
    store = MemoryStore({"bad.json": data})
    with pytest.raises(StoreError, match=f"cannot read 'bad.json' as {compression} data: ") as exc:
        list(spool(store, store.info("bad.json"), 0, compression, workdir))
    assert cause.lower() in str(exc.value).lower()
    assert type(exc.value) is StoreError


def test_a_missing_object_is_reported_as_not_found(workdir: Path) -> None:
    store = MemoryStore({})
    info = ObjectInfo("gone.json.gz", 10, "x", dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(ObjectNotFoundError, match=r"gone\.json\.gz"):
        list(spool(store, info, 0, "gzip", workdir))


# --- lines over the record limit -----------------------------------------------------------


def test_the_limit_is_4_mib() -> None:
    assert MAX_RECORD_BYTES == 4 * 1024 * 1024
    assert CHUNK_BYTES == 2 * 1024 * 1024
    assert IN_PLACE_BYTES == 8 * 1024 * 1024


def spool_memory(data: bytes, workdir: Path, chunk_bytes: int) -> list[Chunk]:
    store = MemoryStore({"a.json": data})
    return list(spool(store, store.info("a.json"), 0, None, workdir, chunk_bytes))


def test_an_overlong_line_is_blanked_and_reported_with_its_line_number(
    small_limit: int, small_blocks: int, workdir: Path
) -> None:
    data = b'{"a": 1}\n' + b"x" * 300 + b'\n{"b": 2}\n'
    (chunk,) = spool_memory(data, workdir, chunk_bytes=1000)
    assert chunk.path.read_bytes() == b'{"a": 1}\n\n{"b": 2}\n'
    assert list(chunk.oversized) == [2]
    assert chunk.nbytes == 19
    # the reject's value is the start of the line (as much as was read when it was dropped)
    assert chunk.oversized[2] == "x" * len(chunk.oversized[2])
    assert len(chunk.oversized[2]) > LIMIT


def test_a_line_of_exactly_the_limit_is_kept(
    small_limit: int, small_blocks: int, workdir: Path
) -> None:
    data = b'{"a": 1}\n' + b"x" * small_limit + b'\n{"b": 2}\n'
    (chunk,) = spool_memory(data, workdir, chunk_bytes=1000)
    assert chunk.path.read_bytes() == data
    assert chunk.oversized == {}


@pytest.mark.parametrize("line_end", [b"\r\n", b"  \t\r\n"])
def test_whitespace_at_the_end_of_a_line_of_exactly_the_limit_is_not_counted(
    small_limit: int, small_blocks: int, workdir: Path, line_end: bytes
) -> None:
    data = b'{"a": 1}\r\n' + b"x" * small_limit + line_end + b'{"b": 2}\r\n'
    (chunk,) = spool_memory(data, workdir, chunk_bytes=1000)
    assert chunk.path.read_bytes() == data
    assert chunk.oversized == {}


def test_an_overlong_line_is_reported_with_its_start_without_leading_whitespace(
    small_limit: int, small_blocks: int, workdir: Path
) -> None:
    data = b'{"a": 1}\n  \t{"pad": "' + "é".encode() * 200 + b'"}\n'
    (chunk,) = spool_memory(data, workdir, chunk_bytes=1000)
    (value,) = chunk.oversized.values()
    assert value.startswith('{"pad": "éé')  # never a character cut in two


@pytest.mark.parametrize("block", [16, 256])  # reads shorter and longer than the limit
def test_overlong_lines_straddling_chunks_are_reported_in_the_chunk_holding_their_blank(
    small_limit: int, block: int, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "_BLOCK", block)
    lines = [b"a" * 30, b"b" * 700, b"c" * 20, b"d" * 40, b"e" * 400, b"f" * 700, b"g" * 5]
    chunks = spool_memory(b"\n".join(lines) + b"\n", workdir, chunk_bytes=25)
    expected = [line if len(line) <= LIMIT else b"" for line in lines]
    assert joined(chunks) == b"\n".join(expected) + b"\n"
    reported: dict[int, int] = {}
    for chunk in chunks:
        count = chunk.path.read_bytes().count(b"\n")
        for number in chunk.oversized:
            assert chunk.first_line <= number < chunk.first_line + count
            assert chunk_lines(chunk)[number - chunk.first_line] == b""
            reported[number] = chunk.first_line
    assert sorted(reported) == [2, 5, 6]
    assert reported[2] == 2  # line 2 began in the first chunk's bytes, its blank is in the next


def test_an_overlong_line_running_through_several_chunk_sizes_is_dropped_whole(
    small_limit: int, small_blocks: int, workdir: Path
) -> None:
    data = b'{"a": 1}\n' * 4 + b"[" + b"1," * 2000 + b"1]\n" + b'{"b": 2}\n'
    chunks = spool_memory(data, workdir, chunk_bytes=20)
    assert joined(chunks) == b'{"a": 1}\n' * 4 + b"\n" + b'{"b": 2}\n'
    assert [n for c in chunks for n in c.oversized] == [5]
    (holder,) = (c for c in chunks if c.oversized)
    assert chunk_lines(holder)[5 - holder.first_line] == b""


def test_an_overlong_line_ending_within_one_read_is_blanked_and_reported(
    small_limit: int, workdir: Path
) -> None:
    data = b'{"a": 1}\n' + b"x" * 150 + b'\n{"b": 2}\n'  # all in one 1 MiB read
    (chunk,) = spool_memory(data, workdir, chunk_bytes=1000)
    assert chunk.path.read_bytes() == b'{"a": 1}\n\n{"b": 2}\n'
    assert list(chunk.oversized) == [2]


def test_an_overlong_last_line_without_a_line_end_is_blanked_and_reported(
    small_limit: int, small_blocks: int, workdir: Path
) -> None:
    data = b'{"a": 1}\n' + b"x" * 300
    (chunk,) = spool_memory(data, workdir, chunk_bytes=1000)
    assert chunk.path.read_bytes() == b'{"a": 1}\n\n'
    assert list(chunk.oversized) == [2]


@settings(max_examples=60, deadline=None)
@example(lines=[b"\xef\xbb\xbf"], final_newline=False, chunk_bytes=1)
@given(
    lines=st.lists(
        st.one_of(
            st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
            # long enough to pass the limit at the end of some read, whatever the alignment
            st.integers(LIMIT + 16, 3 * LIMIT).map(lambda n: b"y" * n),
        ),
        max_size=25,
    ),
    final_newline=st.booleans(),
    chunk_bytes=st.integers(1, 120),
)
def test_chunks_put_together_give_the_object_with_overlong_lines_blanked(
    lines: list[bytes], final_newline: bool, chunk_bytes: int
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    read = data.removeprefix(reader.BOM)  # (an object's byte-order mark is not its text)
    expected_lines = read.split(b"\n")[:-1] if read.endswith(b"\n") else read.split(b"\n")
    if read == b"":
        expected_lines = []
    overlong = [n for n, line in enumerate(expected_lines, 1) if len(line) > LIMIT]
    expected = b"".join((b"" if len(line) > LIMIT else line) + b"\n" for line in expected_lines)
    with (
        pytest.MonkeyPatch.context() as mp,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mp.setattr(reader, "MAX_RECORD_BYTES", LIMIT)
        mp.setattr(reader, "_BLOCK", 16)
        chunks = spool_memory(data, Path(tmp), chunk_bytes)
        assert joined(chunks) == expected
        first = 1
        for chunk in chunks:
            content = chunk.path.read_bytes()
            assert chunk.first_line == first
            assert chunk.nbytes == len(content)
            assert content == b"" or content.endswith(b"\n")
            count = content.count(b"\n")
            assert all(first <= n < first + count for n in chunk.oversized)
            first += count
        assert [n for c in chunks for n in c.oversized] == overlong
        assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]


# --- Feed ----------------------------------------------------------------------------------


def make_objects(store: LocalStore, count: int, lines: int) -> list[ObjectInfo]:
    """``count`` gzip objects of ``lines`` numbered lines each."""
    for k in range(count):
        data = b"".join(b'{"obj": %d, "line": %d}\n' % (k, n) for n in range(1, lines + 1))
        store.put(f"events/{k:03d}.json.gz", gzip.compress(data))
    return list(store.list("events"))


def test_the_feed_hands_out_every_chunk_in_object_order_with_increasing_seq(
    lake: LocalStore, workdir: Path, small_blocks: int
) -> None:
    infos = make_objects(lake, 7, 30)
    with Feed(
        lake, infos, compression=None, workdir=workdir, workers=3, depth=1, chunk_bytes=100
    ) as feed:
        chunks = list(feed)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert [c.obj for c in chunks] == sorted(c.obj for c in chunks)
    assert {c.obj for c in chunks} == set(range(7))
    for k, info in enumerate(infos):
        mine = [c for c in chunks if c.obj == k]
        assert all(c.info == info for c in mine)
        assert [c.last for c in mine] == [False] * (len(mine) - 1) + [True]
        assert len(mine) > 3
        text = joined(mine)
        assert text == b"".join(b'{"obj": %d, "line": %d}\n' % (k, n) for n in range(1, 31))
        first = 1
        for c in mine:
            assert c.first_line == first
            first += c.path.read_bytes().count(b"\n")
    assert reader_threads() == []


def test_the_feed_reads_local_objects_up_to_in_place_bytes_in_place(
    lake: LocalStore, workdir: Path
) -> None:
    lake.put("a.json", b'{"a": 1}\n' * 20)  # 180 bytes
    infos = list(lake.list())
    with Feed(lake, infos, compression=None, workdir=workdir, chunk_bytes=50) as feed:
        (chunk,) = list(feed)  # IN_PLACE_BYTES by default
    assert (chunk.temporary, chunk.path) == (False, lake.path("a.json"))
    with Feed(
        lake, infos, compression=None, workdir=workdir, chunk_bytes=50, in_place_bytes=100
    ) as feed:
        chunks = list(feed)
    assert len(chunks) == 4
    assert all(c.temporary for c in chunks)


@pytest.mark.parametrize("local", [True, False])
def test_the_feed_reads_fewer_objects_at_once_from_a_folder_than_from_elsewhere(
    lake: LocalStore, workdir: Path, local: bool
) -> None:
    infos = make_objects(lake, 8, 30)
    store: GatedLocal | GatedMemory = (
        GatedLocal(lake.root) if local else GatedMemory({i.key: lake.get(i.key) for i in infos})
    )
    store.gate.clear()
    expected = reader.LOCAL_READERS if local else 4
    with Feed(store, infos, compression=None, workdir=workdir) as feed:
        readers, taken = readers_at_the_gate(feed, store, expected)
        assert readers == expected
        assert len(taken) == 8
    assert reader.LOCAL_READERS == 2


def test_the_feed_mixes_compressions_by_suffix_and_reads_small_local_files_in_place(
    lake: LocalStore, workdir: Path
) -> None:
    lake.put("a.json", b'{"a": 1}\n')
    lake.put("b.json.bz2", bz2.compress(b'{"b": 2}\n'))
    lake.put("c.json.zst", compress(b'{"c": 3}', "zstd"))
    infos = list(lake.list())
    with Feed(lake, infos, compression=None, workdir=workdir) as feed:
        chunks = list(feed)
    assert [(c.info.key, c.temporary, c.path.read_bytes()) for c in chunks] == [
        ("a.json", False, b'{"a": 1}\n'),
        ("b.json.bz2", True, b'{"b": 2}\n'),
        ("c.json.zst", True, b'{"c": 3}\n'),
    ]


def test_a_declared_compression_applies_to_every_object(lake: LocalStore, workdir: Path) -> None:
    lake.put("a.data", gzip.compress(b'{"a": 1}\n'))
    lake.put("b.data", gzip.compress(b'{"b": 2}\n'))
    with Feed(lake, list(lake.list()), compression="gzip", workdir=workdir) as feed:
        assert [c.path.read_bytes() for c in feed] == [b'{"a": 1}\n', b'{"b": 2}\n']


def test_a_feed_of_no_objects_gives_no_chunks(lake: LocalStore, workdir: Path) -> None:
    with Feed(lake, [], compression=None, workdir=workdir) as feed:
        assert list(feed) == []


def test_an_error_reading_one_object_is_raised_to_the_consumer_in_its_turn(
    lake: LocalStore, workdir: Path
) -> None:
    lake.put("a.json.gz", gzip.compress(b'{"a": 1}\n'))
    lake.put("b.json.gz", b"this is not gzip")
    lake.put("c.json.gz", gzip.compress(b'{"c": 3}\n'))
    with Feed(lake, list(lake.list()), compression=None, workdir=workdir, workers=3) as feed:
        chunks = iter(feed)
        assert next(chunks).info.key == "a.json.gz"
        with pytest.raises(StoreError, match=r"cannot read 'b\.json\.gz' as gzip data") as exc:
            next(chunks)
    assert isinstance(exc.value.__cause__, gzip.BadGzipFile)
    assert reader_threads() == []


def test_an_object_gone_since_listing_raises_not_found_to_the_consumer(
    lake: LocalStore, workdir: Path
) -> None:
    infos = make_objects(lake, 2, 3)
    lake.delete(infos[1].key)
    with Feed(lake, infos, compression=None, workdir=workdir) as feed:
        it = iter(feed)
        assert next(it).obj == 0
        with pytest.raises(ObjectNotFoundError, match=r"events/001\.json\.gz"):
            next(it)


def test_close_deletes_chunk_files_not_handed_out_and_stops_the_workers(
    lake: LocalStore, workdir: Path, small_blocks: int
) -> None:
    infos = make_objects(lake, 12, 40)
    feed = Feed(lake, infos, compression=None, workdir=workdir, workers=3, depth=2, chunk_bytes=60)
    it = iter(feed)
    first, second = next(it), next(it)
    assert reader_threads() != []
    feed.close()
    assert reader_threads() == []
    assert sorted(workdir.iterdir()) == sorted([first.path, second.path])  # the consumer's
    first.discard()
    second.discard()
    assert list(workdir.iterdir()) == []
    feed.close()  # a second close is harmless


def test_leaving_the_with_block_early_cleans_up_too(
    lake: LocalStore, workdir: Path, small_blocks: int
) -> None:
    infos = make_objects(lake, 6, 40)
    with Feed(lake, infos, compression=None, workdir=workdir, chunk_bytes=60) as feed:
        for chunk in feed:
            chunk.discard()
            if chunk.obj == 2:
                break
    assert list(workdir.iterdir()) == []
    assert reader_threads() == []


class _Lines(io.RawIOBase):
    """A stream of ``count`` numbered lines, made as they are read (nothing held)."""

    def __init__(self, count: int) -> None:
        self._next = 0
        self._count = count
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while len(self._rest) < len(buffer) and self._next < self._count:
            self._rest += b"".join(
                b'{"n": %d, "pad": "%s"}\n' % (n, b"p" * 80)
                for n in range(self._next, min(self._next + 1000, self._count))
            )
            self._next = min(self._next + 1000, self._count)
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def test_cutting_a_stream_holds_a_read_not_a_chunk(workdir: Path) -> None:
    # 40 MB of lines into 8 MB chunks: memory holds a read (1 MiB) and the unfinished line,
    # whatever the chunk size
    stream = io.BufferedReader(_Lines(400_000))
    info = ObjectInfo("big.json", 0, "etag", dt.datetime.now(dt.UTC))
    tracemalloc.start()
    try:
        chunks = list(reader._cut(stream, info, 0, workdir, 8 * 1024 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * 1024 * 1024  # cutting in memory held 8 MB and copied it
    assert len(chunks) == 5
    assert [c.last for c in chunks] == [False] * 4 + [True]
    assert sum(c.nbytes for c in chunks) == sum(c.path.stat().st_size for c in chunks)
    assert [c.first_line for c in chunks[:2]] == [1, chunks[0].path.read_bytes().count(b"\n") + 1]
    assert sum(c.path.read_bytes().count(b"\n") for c in chunks) == 400_000


# --- a byte-order mark -----------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"


class TrickleStore(MemoryStore):
    """Gives objects a byte per read, so that a byte-order mark spans reads."""

    def open(self, key: str) -> BinaryIO:
        data = super().open(key).read()
        return io.BufferedReader(_Trickle(data), buffer_size=1)


class _Trickle(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._data or not len(buffer):
            return 0
        buffer[0] = self._data[0]
        self._data = self._data[1:]
        return 1


@pytest.mark.parametrize("where", ["local", "memory", "trickle"])
@pytest.mark.parametrize("compression", [*COMPRESSIONS, None])
def test_a_byte_order_mark_at_the_start_of_an_object_is_skipped(
    compression: str | None, where: str, lake: LocalStore, workdir: Path
) -> None:
    data = b'{"a": 1}\n' + BOM + b'{"b": 2}\n'  # (one elsewhere stays: it is not JSON)
    key = "a.json" + _SUFFIX[compression]
    raw = compress(BOM + data, compression)
    store = lake if where == "local" else (MemoryStore if where == "memory" else TrickleStore)({})
    store.put(key, raw)
    info = next(i for i in store.list() if i.key == key)
    chunks = list(spool(store, info, 0, compression, workdir, chunk_bytes=12))
    assert joined(chunks) == data
    assert chunks[0].first_line == 1
    assert all(chunk.temporary for chunk in chunks)  # never the object's own file


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (BOM, b""),  # an object of a byte-order mark only is empty
        (BOM + b"{}", b"{}\n"),
        (BOM + b"\n{}\n", b"\n{}\n"),  # line numbers stay: a blank first line is kept
        (BOM + BOM + b"{}\n", BOM + b"{}\n"),  # only the first is skipped
        (b"\xef\xbb{}\n", b"\xef\xbb{}\n"),  # not a whole mark: kept
        (b" " + BOM + b"{}\n", b" " + BOM + b"{}\n"),
    ],
)
def test_only_a_whole_byte_order_mark_at_the_very_start_is_skipped(
    data: bytes, expected: bytes, workdir: Path
) -> None:
    for store in (MemoryStore({"a.json": data}), TrickleStore({"a.json": data})):
        assert joined(list(spool(store, store.info("a.json"), 0, None, workdir))) == expected


def test_a_local_object_without_a_byte_order_mark_is_still_read_in_place(
    lake: LocalStore, workdir: Path
) -> None:
    info = put(lake, "a.json", b"\xef{}\n")
    (chunk,) = spool(lake, info, 0, None, workdir)
    assert not chunk.temporary
    assert chunk.path == lake.path("a.json")
