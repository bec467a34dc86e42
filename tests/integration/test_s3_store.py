"""S3Store over HTTP against moto's S3 server: paging, streaming, resuming, errors."""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from urllib3.exceptions import ProtocolError

from arbalest import Pipeline, Schema, String
from arbalest.errors import ObjectNotFoundError, StoreError, StoreUnavailableError
from arbalest.loading.reader import Feed
from arbalest.stores import open_store
from arbalest.stores.s3 import MAX_RESUMES, S3Store

pytestmark = pytest.mark.s3


@pytest.fixture
def client(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def bucket(s3_bucket: str, client: Any) -> Iterator[str]:
    """``s3_bucket``, emptied page by page afterwards (its own cleanup lists one page only)."""
    yield s3_bucket
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=s3_bucket):
        batch = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if batch:
            client.delete_objects(Bucket=s3_bucket, Delete={"Objects": batch, "Quiet": True})


@pytest.fixture
def store(bucket: str) -> S3Store:
    """A store at ``s3://<bucket>/raw``, its endpoint from AWS_ENDPOINT_URL."""
    made = open_store(f"s3://{bucket}/raw")
    assert isinstance(made, S3Store)
    return made


def count_calls(store: S3Store, operation: str) -> list[dict[str, Any]]:
    """Record the parameters of every ``operation`` call the store's client makes."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **kwargs: Any) -> None:
        calls.append(dict(params))

    store.client.meta.events.register(f"provide-client-params.s3.{operation}", record)
    return calls


def test_the_store_talks_to_the_server_named_in_the_environment(
    store: S3Store, client: Any, bucket: str, s3_endpoint: str
) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == s3_endpoint
    assert store.client.meta.endpoint_url == s3_endpoint
    store.put("events/a.json", b'{"a": 1}\n')
    assert client.get_object(Bucket=bucket, Key="raw/events/a.json")["Body"].read() == (
        b'{"a": 1}\n'
    )


def test_put_get_list_and_delete_round_trip(store: S3Store, client: Any, bucket: str) -> None:
    store.put("events/b.json", b"b")
    store.put("events/a.json", b"aa")
    store.put("events_old/c.json", b"c")
    client.put_object(Bucket=bucket, Key="raw/events/", Body=b"")  # a folder marker
    client.put_object(Bucket=bucket, Key="raw_old/d.json", Body=b"d")
    infos = list(store.list("events"))
    assert [(i.key, i.size) for i in infos] == [("events/a.json", 2), ("events/b.json", 1)]
    assert infos[0].etag == hashlib.md5(b"aa").hexdigest()
    assert [i.key for i in store.list()] == ["events/a.json", "events/b.json", "events_old/c.json"]
    assert [i.key for i in store.list(exclude="events")] == ["events_old/c.json"]
    assert store.get("events/a.json") == b"aa"
    store.delete("events/a.json")
    store.delete("events/a.json")  # already gone: fine
    assert [i.key for i in store.list("events/")] == ["events/b.json"]
    assert store.uri("events/b.json") == f"s3://{bucket}/raw/events/b.json"


def test_errors_over_http(store: S3Store, s3_endpoint: str) -> None:
    with pytest.raises(ObjectNotFoundError, match="no such object in s3://"):
        store.get("missing.json")
    missing = S3Store("s3://no-such-bucket-here/raw", endpoint_url=s3_endpoint)
    with pytest.raises(StoreError) as exc:
        list(missing.list())
    assert type(exc.value) is StoreError
    assert "'no-such-bucket-here' does not exist" in str(exc.value)
    assert "testing" not in str(exc.value)  # the (fake) secret key


@pytest.mark.slow  # moto's server takes about 10 ms a PUT
def test_listing_2500_objects_pages_through_all_of_them_in_order(
    store: S3Store, client: Any, bucket: str
) -> None:
    names = [f"events/{n:05d}.json" for n in range(2500)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(lambda k: client.put_object(Bucket=bucket, Key=f"raw/{k}", Body=b"{}"), names)
        )
    client.put_object(Bucket=bucket, Key="raw/events/", Body=b"")
    calls = count_calls(store, "ListObjectsV2")
    listing = store.list("events")
    first = next(listing)
    assert first.key == "events/00000.json"
    assert len(calls) == 1  # one page at a time
    rest = list(listing)
    assert [first.key] + [i.key for i in rest] == names
    assert len(calls) == 3  # pages of 1,000
    assert [c.get("ContinuationToken") is None for c in calls] == [True, False, False]
    assert all(c["Prefix"] == "raw/events/" for c in calls)


def test_a_large_object_is_streamed_not_read_whole(
    store: S3Store, bucket: str, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(5 * 1024 * 1024)
    client.put_object(Bucket=bucket, Key="raw/big.bin", Body=data)
    pulled: list[int] = []
    real = store.client.get_object

    class CountingBody:
        def __init__(self, body: Any) -> None:
            self.body = body

        def read(self, amt: int | None = None) -> bytes:
            chunk: bytes = self.body.read(amt)
            pulled.append(len(chunk))
            return chunk

        def close(self) -> None:
            self.body.close()

    def get_object(**kwargs: Any) -> Any:
        response = real(**kwargs)
        response["Body"] = CountingBody(response["Body"])
        return response

    monkeypatch.setattr(store.client, "get_object", get_object)
    with store.open("big.bin") as fh:
        assert fh.read(10) == data[:10]
        assert sum(pulled) <= 1024 * 1024  # one buffer's worth, not 5 MB
        rest = b"".join(iter(lambda: fh.read(256 * 1024), b""))
    assert data[:10] + rest == data
    assert sum(pulled) == len(data)
    assert max(pulled) <= 1024 * 1024


# --- resuming ----------------------------------------------------------------------------


class BreakingBody:
    """A body that gives ``good`` bytes, then raises ``error()`` on every read."""

    def __init__(self, body: Any, good: int, error: Callable[[], BaseException]) -> None:
        self.body, self.left, self.error = body, good, error

    def read(self, amt: int | None = None) -> bytes:
        if self.left <= 0:
            raise self.error()
        data: bytes = self.body.read(self.left if amt is None else min(amt, self.left))
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.body.close()


def streaming_error() -> BaseException:
    # what botocore raises when urllib3 loses the connection in the middle of a body
    return botocore.exceptions.ResponseStreamingError(
        error=ProtocolError("Connection broken: IncompleteRead(65536 bytes read)")
    )


def break_reads(
    monkeypatch: pytest.MonkeyPatch,
    store: S3Store,
    *,
    good: int,
    times: int,
    before_reopen: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """The first ``times`` bodies break after ``good`` bytes; returns the GetObject calls."""
    real = store.client.get_object
    calls: list[dict[str, Any]] = []

    def get_object(**kwargs: Any) -> Any:
        calls.append(kwargs)
        if len(calls) > 1 and before_reopen is not None:
            before_reopen()
        response = real(**kwargs)
        if len(calls) <= times:
            response["Body"] = BreakingBody(response["Body"], good, streaming_error)
        return response

    monkeypatch.setattr(store.client, "get_object", get_object)
    return calls


def test_a_read_that_breaks_resumes_with_a_ranged_get_and_gives_exact_bytes(
    store: S3Store, client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    client.put_object(Bucket=bucket, Key="raw/a.bin", Body=data)
    good = 1024 * 1024 + 5
    calls = break_reads(monkeypatch, store, good=good, times=1)
    with store.open("a.bin") as fh:
        assert fh.read() == data
    etag = '"' + hashlib.md5(data).hexdigest() + '"'
    assert calls == [
        {"Bucket": bucket, "Key": "raw/a.bin"},
        {"Bucket": bucket, "Key": "raw/a.bin", "Range": f"bytes={good}-", "IfMatch": etag},
    ]


def test_a_read_resumes_max_resumes_times_and_then_is_unavailable(
    store: S3Store, client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(64 * 1024)
    client.put_object(Bucket=bucket, Key="raw/a.bin", Body=data)
    calls = break_reads(monkeypatch, store, good=4096, times=MAX_RESUMES)
    assert store.get("a.bin") == data
    assert [c.get("Range") for c in calls] == [None] + [
        f"bytes={4096 * k}-" for k in range(1, MAX_RESUMES + 1)
    ]

    monkeypatch.undo()
    calls = break_reads(monkeypatch, store, good=4096, times=MAX_RESUMES + 1)
    with pytest.raises(StoreUnavailableError) as exc:
        store.get("a.bin")
    assert str(exc.value) == (
        f"cannot read 'a.bin' in s3://{bucket}/raw: the connection broke {MAX_RESUMES + 1} "
        f"times while reading it (last: ResponseStreamingError at byte {4096 * (MAX_RESUMES + 1)}"
        "); S3 or the network is unstable, try again later"
    )
    assert len(calls) == MAX_RESUMES + 1


def test_an_object_replaced_while_it_is_read_is_not_resumed(
    store: S3Store, client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.put_object(Bucket=bucket, Key="raw/a.bin", Body=b"1" * 10_000)

    def replace() -> None:
        client.put_object(Bucket=bucket, Key="raw/a.bin", Body=b"2" * 10_000)

    break_reads(monkeypatch, store, good=1000, times=1, before_reopen=replace)
    with pytest.raises(StoreError, match="the object changed while it was read"):
        store.get("a.bin")


def test_the_feed_reads_compressed_objects_from_s3_into_chunks(
    store: S3Store, tmp_path: Path
) -> None:
    lines = [b'{"n": %d}' % n for n in range(20_000)]
    store.put("events/a.json.gz", gzip.compress(b"\n".join(lines)))
    store.put("events/b.json", b'{"b": 1}\n{"b": 2}')
    with Feed(
        store, list(store.list("events")), compression=None, workdir=tmp_path, chunk_bytes=50_000
    ) as feed:
        chunks = list(feed)
    a = [c for c in chunks if c.info.key == "events/a.json.gz"]
    assert b"".join(c.path.read_bytes() for c in a) == b"\n".join(lines) + b"\n"
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    (b,) = (c for c in chunks if c.info.key == "events/b.json")
    assert (b.temporary, b.path.read_bytes()) == (True, b'{"b": 1}\n{"b": 2}\n')


# Keys a listing can give that a path would not: empty segments, a leading slash, dot segments.
ODD_KEYS = (
    "raw/events//a.json",
    "raw/events///b.json",
    "raw/events/x//y/c.json",
    "raw/events/./d.json",
    "raw/events/../e.json",
    "raw//events/f.json",
)


def test_every_listed_key_is_read_and_urled_as_listed(
    store: S3Store, client: Any, bucket: str
) -> None:
    for key in ODD_KEYS:
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    client.put_object(Bucket=bucket, Key="//lead.json", Body=b"lead")
    listed = list(store.list())
    assert [i.key for i in listed] == sorted(k[len("raw/") :] for k in ODD_KEYS)
    for info in listed:
        assert store.get(info.key) == f"raw/{info.key}".encode()
        assert store.uri(info.key) == f"s3://{bucket}/raw/{info.key}"
    assert [i.key for i in store.list("events")] == [  # S3's byte order: "/" < "a"
        "events/../e.json",
        "events/./d.json",
        "events///b.json",
        "events//a.json",
        "events/x//y/c.json",
    ]
    root = S3Store(f"s3://{bucket}")
    assert [i.key for i in root.list() if i.key.startswith("//")] == ["//lead.json"]
    assert root.get("//lead.json") == b"lead"
    assert root.uri("//lead.json") == f"s3://{bucket}///lead.json"


def test_a_pipeline_loads_objects_whose_keys_have_empty_segments(
    store: S3Store, base: type[Schema], tmp_path: Path
) -> None:
    class Row(base):  # type: ignore[misc, valid-type]
        __tablename__ = "rows"
        id = String(20)

    # "raw//a.json" is the key "/a.json" of the store at s3://bucket/raw
    client = boto3.client("s3")
    for key in ("raw//a.json", "raw/events/x//b.json", "raw/c.json"):
        client.put_object(Bucket=store.bucket, Key=key, Body=b'{"id": "%s"}\n' % key.encode())
    pipeline = Pipeline(f"duckdb:///{tmp_path / 'w.duckdb'}", store=store).copy(Row, "")
    result = pipeline.run()
    again = pipeline.run()
    pipeline.engine.dispose()
    assert (result.steps[0].objects_loaded, result.rows_loaded) == (3, 3)
    assert again.rows_loaded == 0


@pytest.mark.postgres
def test_a_redshift_manifest_names_each_key_as_listed(
    redshift_standin: Any, bucket: str, base: type[Schema]
) -> None:
    class Row(base):  # type: ignore[misc, valid-type]
        __tablename__ = "rows"
        id = String(40)

    client = boto3.client("s3")
    for key in ("lake//a.json", "lake/b.json", "lake/x//c.json"):
        client.put_object(Bucket=bucket, Key=key, Body=b'{"id": "%s"}\n' % key.encode())
    pipeline = Pipeline(
        redshift_standin.engine,
        store=f"s3://{bucket}/lake",
        iam_role="arn:aws:iam::123456789012:role/ArbalestLoader",
    ).copy(Row, "")
    assert pipeline.run().rows_loaded == 3
    # one COPY per object, each with a manifest of its one entry
    urls = [e["url"] for copy in redshift_standin.copies for e in copy["manifest"]["entries"]]
    assert sorted(urls) == [
        f"s3://{bucket}/lake//a.json",
        f"s3://{bucket}/lake/b.json",
        f"s3://{bucket}/lake/x//c.json",
    ]
