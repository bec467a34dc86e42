"""Amazon S3 as an object store: the one store module that imports boto3 (the Redshift IAM
and Data API modules are the others).

Listing is paginated and yields page by page; reads stream, and a connection that drops in the
middle of an object is resumed from the byte where it stopped (a ranged GET pinned to the
object's ETag). botocore retries transient faults (throttling, 5xx, timeouts) with its
``standard`` retry mode before an error reaches us; then it becomes a ``StoreError``.
"""

from __future__ import annotations

import builtins
import datetime as dt
import io
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, Final, cast
from urllib.parse import urlparse

import boto3
import botocore.exceptions
from botocore.config import Config

from arbalest.errors import (
    ConfigurationError,
    ObjectNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from arbalest.stores.base import ObjectInfo, folder_prefix
from arbalest.stores.credentials import Credentials

__all__ = ["Credentials", "S3Store", "parse_s3_url"]

logger = logging.getLogger(__name__)

#: Attempts botocore makes for one call (its ``standard`` mode backs off exponentially).
MAX_ATTEMPTS: Final = 8
#: Times a read that broke in the middle of an object is resumed.
MAX_RESUMES: Final = 5

_TRANSIENT_READ_ERRORS: Final = (
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.EndpointConnectionError,
    ConnectionError,
    TimeoutError,
)
_UNAVAILABLE: Final = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigurationError(f"{url!r} is not an S3 URL like s3://bucket/prefix")
    return parsed.netloc, parsed.path.strip("/")


class S3Store:
    """Objects under ``s3://bucket/prefix``.

    Example:
        ```python
        store = S3Store("s3://my-lake/raw")                  # credentials from the environment
        store = S3Store("s3://my-lake/raw", region="eu-west-1",
                        credentials=Credentials(key_id, secret))
        for info in store.list("events"):
            print(info.key, info.size)
        ```

    Args:
        url: ``s3://bucket`` or ``s3://bucket/prefix``.
        credentials: Access keys; default: boto3's chain (environment, profile, role).
        region: The bucket's region; default: boto3's.
        endpoint_url: Another S3 endpoint; default: boto3's (``AWS_ENDPOINT_URL`` is honoured).
        client: A ready boto3 S3 client, instead of the above.
    """

    def __init__(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket, self.root = parse_s3_url(url)
        self.credentials = credentials
        self.region = region
        if client is None:
            config = Config(
                # total_max_attempts counts the first request too (max_attempts would not)
                retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                connect_timeout=10,
                read_timeout=60,
                max_pool_connections=16,
            )
            kwargs: dict[str, Any] = {"config": config}
            if region:
                kwargs["region_name"] = region
            if endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3"):
                kwargs["endpoint_url"] = endpoint_url or os.environ["AWS_ENDPOINT_URL_S3"]
            if credentials is not None:
                kwargs["aws_access_key_id"] = credentials.access_key_id
                kwargs["aws_secret_access_key"] = credentials.secret_access_key
                kwargs["aws_session_token"] = credentials.session_token
            client = boto3.session.Session().client("s3", **kwargs)
        self.client = client

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.root}".rstrip("/")

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    def _full(self, key: str) -> str:
        """The S3 key of a store key, byte for byte: S3 keys are names, not paths, so a key
        that a listing gave (``events//a.json``, ``/a.json``, ``a/../b.json``) is joined to the
        root as it is, never normalised."""
        return f"{self.root}/{key}" if self.root else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.root) + 1 :] if self.root else full_key

    def list(self, prefix: str = "", *, exclude: str | None = None) -> Iterator[ObjectInfo]:
        folder = folder_prefix(prefix)
        full = folder_prefix(self.root) + folder
        skip = folder_prefix(exclude) if exclude else None
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(f"list {full or '/'}"):
            # One page in memory at a time: each is yielded from before the next is fetched.
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", ()):
                    full_key: str = item["Key"]
                    if full_key.endswith("/"):
                        continue  # a "folder" marker, not data
                    key = self._relative(full_key)
                    if skip and (key + "/").startswith(skip):
                        continue
                    yield ObjectInfo(
                        key=key,
                        size=int(item["Size"]),
                        etag=str(item["ETag"]).strip('"'),
                        last_modified=_utc(item["LastModified"]),
                    )

    def children(self, prefix: str = "") -> builtins.list[str]:
        full = folder_prefix(self.root) + folder_prefix(prefix)
        names: builtins.list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(f"list {full or '/'}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full, Delimiter="/"):
                for item in page.get("CommonPrefixes", ()):
                    names.append(str(item["Prefix"])[len(full) :].rstrip("/"))
        return sorted(names)

    def open(self, key: str) -> BinaryIO:
        with self._errors(f"read {key}", key=key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        reopen = self._reopener(key, str(response.get("ETag", "")))
        raw = _ResumableBody(response["Body"], reopen, key, self.url)
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=1 << 20))

    def _reopener(self, key: str, etag: str) -> Callable[[int], Any]:
        def reopen(position: int) -> Any:
            with self._errors(f"read {key}", key=key):
                response = self.client.get_object(
                    Bucket=self.bucket,
                    Key=self._full(key),
                    Range=f"bytes={position}-",
                    IfMatch=etag,  # the same version of the object, or an error
                )
            return response["Body"]

        return reopen

    def get(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    def tail(self, key: str, size: int) -> bytes:
        """The last ``size`` bytes of an object (all of it when it is smaller), in one
        ranged GET: a Parquet footer without reading the data before it."""
        with self._errors(f"read {key}", key=key):
            response = self.client.get_object(
                Bucket=self.bucket, Key=self._full(key), Range=f"bytes=-{max(1, size)}"
            )
            return bytes(response["Body"].read())

    def put(self, key: str, data: bytes) -> None:
        with self._errors(f"write {key}"):
            self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data)

    def delete(self, key: str) -> None:
        with self._errors(f"delete {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    @contextmanager
    def _errors(self, action: str, *, key: str | None = None) -> Iterator[None]:
        """Turn botocore's errors into ours, with what failed and where; never credentials."""
        where = f"s3://{self.bucket}/{self.root}".rstrip("/")
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = str(error.get("Message", "")) or code
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFoundError(f"cannot {action}: no such object in {where}") from None
            if code == "NoSuchBucket":
                raise StoreError(
                    f"cannot {action}: the bucket {self.bucket!r} does not exist"
                ) from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StoreError(
                    f"cannot {action} in {where}: {code} ({message}); check the credentials "
                    "or the role's S3 permissions"
                ) from None
            if code == "PreconditionFailed":
                raise StoreError(
                    f"cannot {action} in {where}: the object changed while it was read"
                ) from None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            cls = StoreUnavailableError if int(status or 0) >= 500 else StoreError
            raise cls(f"cannot {action} in {where}: {code} {message}".rstrip()) from None
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(
                f"cannot {action} in {where}: S3 did not answer after {MAX_ATTEMPTS} attempts "
                f"({type(exc).__name__})"
            ) from None
        except botocore.exceptions.NoCredentialsError:
            raise StoreError(
                f"cannot {action} in {where}: no AWS credentials found; set them in the "
                "environment, a profile, or pass credentials="
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise StoreError(f"cannot {action} in {where}: {type(exc).__name__}") from None


class _ResumableBody(io.RawIOBase):
    """A GetObject body that resumes, from where it stopped, when the connection breaks."""

    def __init__(self, body: Any, reopen: Callable[[int], Any], key: str, store: str) -> None:
        self._body = body
        self._reopen = reopen
        self._key = key
        self._store = store
        self._position = 0
        self._resumes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            try:
                data = self._body.read(len(view))
            except _TRANSIENT_READ_ERRORS as exc:
                self._resume(exc)
                continue
            n = len(data)
            view[:n] = data
            self._position += n
            return n

    def _resume(self, exc: BaseException) -> None:
        if self._resumes >= MAX_RESUMES:
            raise StoreUnavailableError(
                f"cannot read {self._key!r} in {self._store}: the connection broke "
                f"{self._resumes + 1} times while reading it (last: {type(exc).__name__} at "
                f"byte {self._position}); S3 or the network is unstable, try again later"
            ) from None
        self._resumes += 1
        logger.warning(
            "reading %s broke at byte %d (%s); resuming",
            self._key,
            self._position,
            type(exc).__name__,
        )
        try:
            self._body.close()
        except Exception:
            logger.debug("closing the broken body of %s failed", self._key)
        self._body = self._reopen(self._position)

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


def _utc(value: Any) -> dt.datetime:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
