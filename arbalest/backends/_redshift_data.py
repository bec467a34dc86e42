"""``RedshiftDataAPI``: a Redshift warehouse reached through the Redshift Data API (boto3's
``redshift-data`` client), in its Python form and its URL form (``redshift+data://``), and the
client it uses. The driver that sends statements is ``_redshift_driver``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import sqlalchemy as sa

from arbalest.errors import ConfigurationError

__all__ = ["BATCH_LIMIT", "URL_OPTIONS", "RedshiftDataAPI", "make_client"]

#: The Data API runs at most this many statements in one ``BatchExecuteStatement``.
BATCH_LIMIT: Final = 40
#: Options of a ``redshift+data://`` URL's query.
URL_OPTIONS: Final = (
    "workgroup",
    "cluster",
    "secret_arn",
    "db_user",
    "region",
    "profile",
    "timeout",
)


@dataclass(frozen=True)
class RedshiftDataAPI:
    """A Redshift warehouse reached through the Redshift Data API (boto3's ``redshift-data``).

    Pass it as a pipeline's warehouse, or write the same as a URL:
    ``redshift+data:///DATABASE?workgroup=NAME`` (or ``cluster=ID``, with ``db_user=`` for
    temporary credentials, or ``secret_arn=`` for a Secrets Manager secret).

    Example:
        ```python
        Pipeline(RedshiftDataAPI(workgroup="analytics", database="dev"), store="s3://lake/")
        ```

    Args:
        database: The database.
        workgroup: A Redshift Serverless workgroup (name or ARN).
        cluster: A provisioned cluster's identifier (instead of ``workgroup``).
        secret_arn: A Secrets Manager secret holding the user name and password; without
            it, IAM signs in (``redshift-serverless:GetCredentials`` for a workgroup,
            ``redshift:GetClusterCredentialsWithIAM``, or ``GetClusterCredentials`` with
            ``db_user``, for a cluster). Never shown in a message or a repr.
        db_user: For a cluster: the database user to sign in as with temporary credentials.
        region: The AWS region (default: boto3's).
        profile: An AWS profile to take credentials from (default: boto3's chain).
        timeout: How long one call (a statement, or a step's batch) may run, in seconds.
        client: A ``redshift-data`` client to use instead of making one (for tests).

    Raises:
        ConfigurationError: If neither or both of ``workgroup`` and ``cluster`` are given,
            or ``db_user`` with a workgroup.
    """

    database: str
    workgroup: str | None = None
    cluster: str | None = None
    secret_arn: str | None = field(default=None, repr=False)
    db_user: str | None = None
    region: str | None = None
    profile: str | None = None
    timeout: float = 900.0
    client: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.workgroup is None) == (self.cluster is None):
            raise ConfigurationError(
                "the Data API needs a workgroup= (Redshift Serverless) or a cluster= "
                "(provisioned), and not both"
            )
        if not self.database:
            raise ConfigurationError("the Data API needs a database= name")
        if self.db_user is not None and self.workgroup is not None:
            raise ConfigurationError(
                "db_user= is for a cluster; a workgroup signs in as the IAM identity "
                "(or with secret_arn=)"
            )
        if self.timeout <= 0:
            raise ConfigurationError(f"timeout= must be positive, not {self.timeout!r}")

    @classmethod
    def from_url(cls, url: str | sa.URL) -> RedshiftDataAPI:
        """Read a ``redshift+data:///DATABASE?workgroup=...`` URL.

        Raises:
            ConfigurationError: For an option the URL form does not know, or a bad value.
        """
        parsed = sa.make_url(url)
        query = {k: v if isinstance(v, str) else v[-1] for k, v in parsed.query.items()}
        unknown = sorted(set(query) - set(URL_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"the Data API URL's {', '.join(unknown)} is not one of its options "
                f"({', '.join(URL_OPTIONS)})"
            )
        if parsed.host or parsed.username or parsed.password:
            raise ConfigurationError(
                "a redshift+data:// URL names no host or user: redshift+data:///DATABASE"
                "?workgroup=NAME (or cluster=ID)"
            )
        timeout = query.pop("timeout", None)
        try:
            seconds = float(timeout) if timeout is not None else 900.0
        except ValueError:
            raise ConfigurationError(
                f"the Data API URL's timeout={timeout!r} is not a number"
            ) from None
        return cls(database=parsed.database or "", timeout=seconds, **query)

    def url(self) -> sa.URL:
        """The URL form, without the secret's ARN (it goes to the driver, not into the URL)."""
        query = {
            name: value
            for name in ("workgroup", "cluster", "db_user", "region", "profile")
            if (value := getattr(self, name)) is not None
        }
        return sa.URL.create("redshift+data", database=self.database, query=query)

    def target(self) -> dict[str, str]:
        """The arguments that name the warehouse and how to sign in, for every call."""
        found = {"Database": self.database}
        if self.workgroup is not None:
            found["WorkgroupName"] = self.workgroup
        if self.cluster is not None:
            found["ClusterIdentifier"] = self.cluster
        if self.secret_arn is not None:
            found["SecretArn"] = self.secret_arn
        if self.db_user is not None:
            found["DbUser"] = self.db_user
        return found

    def secrets(self) -> tuple[str, ...]:
        """Values to keep out of messages."""
        return (self.secret_arn,) if self.secret_arn else ()

    def engine(self) -> sa.Engine:
        """A SQLAlchemy engine that reaches the warehouse through the Data API."""
        from arbalest.backends import _redshift_dialect  # noqa: F401 - registers the dialect

        engine = sa.create_engine(
            self.url(),
            hide_parameters=True,
            poolclass=sa.pool.NullPool,
            connect_args={"api": self},
        )
        engine.dialect.arbalest_data_api = self  # type: ignore[attr-defined]  # for the backend
        return engine


def make_client(api: RedshiftDataAPI) -> Any:
    """A ``redshift-data`` client for ``api`` (its own ``client`` if it has one)."""
    if api.client is not None:
        return api.client
    import boto3

    session = boto3.session.Session(profile_name=api.profile, region_name=api.region)
    return session.client("redshift-data")
