"""Object stores: where the objects are (a local folder or an S3 prefix).

- ``base``: the ``ObjectStore`` protocol every store follows, ``ObjectInfo``, and key helpers.
- ``local``: ``LocalStore``, a folder (also the test double).
- ``s3``: ``S3Store``, the one store module that imports boto3.
- ``credentials``: ``Credentials``, AWS keys that never show their secrets.

``open_store`` (here) picks the store for a location. Nothing here knows of schemas.
"""

from __future__ import annotations

import os

from arbalest.errors import ConfigurationError
from arbalest.stores.base import ObjectInfo, ObjectStore, folder_prefix, join_key
from arbalest.stores.credentials import Credentials, as_credentials
from arbalest.stores.local import LocalStore

__all__ = [
    "Credentials",
    "LocalStore",
    "ObjectInfo",
    "ObjectStore",
    "folder_prefix",
    "join_key",
    "open_store",
]


def open_store(
    location: str | os.PathLike[str] | ObjectStore,
    *,
    credentials: object = None,
    region: str | None = None,
) -> ObjectStore:
    """Return the object store that serves ``location``.

    Args:
        location: ``s3://bucket/prefix`` for Amazon S3; anything else is a local folder; a
            store object is returned as it is.
        credentials: AWS access keys for S3 (``arbalest.Credentials``, or a mapping of
            boto3's names).
        region: The bucket's region, for S3.

    Raises:
        ConfigurationError: If the local folder does not exist, or the location is a URL of
            another scheme than ``s3://`` and ``file://``.
    """
    if isinstance(location, ObjectStore) and not isinstance(location, str | os.PathLike):
        return location
    text = os.fspath(location)
    if text.startswith("s3://"):
        from arbalest.stores.s3 import S3Store

        return S3Store(text, credentials=as_credentials(credentials), region=region)
    if "://" in text and not text.startswith("file://"):
        raise ConfigurationError(f"unsupported store location {text!r}; use a folder or s3://")
    return LocalStore(text.removeprefix("file://"))
