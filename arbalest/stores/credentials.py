"""AWS credentials that never show their secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from arbalest.errors import ConfigurationError

__all__ = ["Credentials", "as_credentials"]


@dataclass(frozen=True)
class Credentials:
    """AWS access keys. Their ``repr`` and ``str`` never show the secret parts."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        shown = self.access_key_id[:4] + "..." if self.access_key_id else ""
        token = ", session_token=***" if self.session_token else ""
        return f"Credentials(access_key_id={shown!r}, secret_access_key=***{token})"

    __str__ = __repr__

    def secrets(self) -> tuple[str, ...]:
        """Every string to keep out of output (the key id too: it names the account's key)."""
        parts = (self.access_key_id, self.secret_access_key, self.session_token)
        return tuple(s for s in parts if s)


def as_credentials(value: Any) -> Credentials | None:
    """Accept ``Credentials``, a mapping with boto3's names, or ``None``."""
    if value is None or isinstance(value, Credentials):
        return value
    if isinstance(value, Mapping):
        try:
            return Credentials(
                str(value["aws_access_key_id"]),
                str(value["aws_secret_access_key"]),
                value.get("aws_session_token"),
            )
        except KeyError as exc:
            raise ConfigurationError(
                f"credentials= needs {exc.args[0]!r} (boto3's names: aws_access_key_id, "
                "aws_secret_access_key, aws_session_token)"
            ) from None
    raise ConfigurationError("credentials= takes arbalest.Credentials or a mapping of boto3 names")
