"""Signing in to Redshift with IAM over psycopg2: a temporary database user and password.

A ``redshift+psycopg2://`` URL with ``iam=true`` gets no password from its user. When a
connection is opened, Arbalest asks AWS for temporary credentials and hands them to psycopg2:

- a provisioned cluster: ``redshift:GetClusterCredentials`` (with ``db_user``, the URL's user
  by default), or ``redshift:GetClusterCredentialsWithIAM`` when no database user is named
  (the user is then the IAM identity's own, ``IAM:<name>`` / ``IAMR:<role>``);
- a Serverless workgroup: ``redshift-serverless:GetCredentials``.

The query parameters have redshift_connector's names, so one URL reads the same with either
driver: ``iam``, ``cluster_identifier``, ``db_user``, ``db_groups`` (comma-separated),
``auto_create``, ``region``, ``profile``, ``is_serverless``, ``serverless_work_group``. The
cluster, workgroup and region are read from a Redshift host name when they are not given.

Credentials come from boto3's usual chain (or the named ``profile``). A password is kept
until a minute before it expires, so a run asks once, however many connections it opens.
Every password handed out is kept in ``secrets()``, so that messages never show it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import boto3
import botocore.exceptions
import sqlalchemy as sa

from arbalest.errors import ConfigurationError, WarehouseAccessError, WarehouseUnavailableError

__all__ = ["IAM_OPTIONS", "SECRET_OPTIONS", "IAMSignIn", "sign_in_for", "truthy"]

logger = logging.getLogger(__name__)

#: The URL query parameters that configure the sign-in (redshift_connector's names).
IAM_OPTIONS: Final = (
    "iam",
    "cluster_identifier",
    "db_user",
    "db_groups",
    "auto_create",
    "region",
    "profile",
    "is_serverless",
    "serverless_work_group",
)
#: Query parameters (of redshift_connector) that would put a secret in a URL, which messages
#: and process lists show.
SECRET_OPTIONS: Final = (
    "secret_access_key",
    "session_token",
    "client_secret",
    "web_identity_token",
    "token",
    "password",
)
#: A password is asked for again this long before it expires.
_MARGIN: Final = dt.timedelta(seconds=60)
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
# examplecluster.abc123xyz789.us-west-1.redshift.amazonaws.com (also .amazonaws.com.cn)
_CLUSTER_HOST: Final = re.compile(
    r"^(?P<cluster>[^.]+)\.[^.]+\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.redshift"
    r"\.amazonaws\.com(?:\.cn)?$"
)
# workgroup.123456789012.us-east-1.redshift-serverless.amazonaws.com
_SERVERLESS_HOST: Final = re.compile(
    r"^(?P<workgroup>[^.]+)\.\d{12}\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.redshift-serverless"
    r"\.amazonaws\.com(?:\.cn)?$"
)
# access denied, a missing cluster or workgroup: asking again will not help
_REFUSED: Final = re.compile(
    r"(?i)AccessDenied|UnauthorizedOperation|NotFound|InvalidParameter|ValidationException"
    r"|InvalidClusterState|UnrecognizedClient|InvalidClientTokenId|ExpiredToken"
)

_SIGN_INS: weakref.WeakKeyDictionary[sa.Engine, IAMSignIn] = weakref.WeakKeyDictionary()


def truthy(name: str, value: str) -> bool:
    """A URL query parameter read as a boolean (``true``/``false``, ``1``/``0``...)."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(
        f"the warehouse URL's {name}={value!r} is not a boolean; write {name}=true or {name}=false"
    )


def sign_in_for(engine: sa.Engine) -> IAMSignIn | None:
    """The IAM sign-in installed on ``engine``, if any."""
    return _SIGN_INS.get(engine)


def _client(
    service: Literal["redshift", "redshift-serverless"], region: str | None, profile: str | None
) -> Any:
    """A boto3 client (a function of its own, so that tests can hand in a stubbed one)."""
    session = boto3.Session(profile_name=profile, region_name=region)
    if service == "redshift":
        return session.client("redshift")
    return session.client("redshift-serverless")


def _one(query: Mapping[str, str | tuple[str, ...]], name: str) -> str | None:
    value = query.get(name)
    if isinstance(value, tuple):
        if len(value) != 1:
            raise ConfigurationError(f"the warehouse URL gives {name}= {len(value)} times")
        return value[0]
    return value


@dataclass
class IAMSignIn:
    """Temporary credentials for one cluster's or workgroup's database.

    Attributes:
        database: The database the credentials are for.
        serverless: A Serverless workgroup (``GetCredentials``), else a provisioned cluster.
        cluster_identifier: The cluster (provisioned).
        workgroup: The workgroup (Serverless).
        db_user: The database user to sign in as (provisioned); ``None``: the IAM identity's.
        db_groups: Groups the user joins for the session (provisioned, with ``db_user``).
        auto_create: Create ``db_user`` if it does not exist (provisioned).
        region: The AWS region (``None``: boto3's default).
        profile: The AWS profile to use (``None``: boto3's default chain).
    """

    database: str | None
    serverless: bool
    cluster_identifier: str | None = None
    workgroup: str | None = None
    db_user: str | None = None
    db_groups: tuple[str, ...] = ()
    auto_create: bool = False
    region: str | None = None
    profile: str | None = None
    _cached: tuple[str, str, dt.datetime] | None = field(default=None, repr=False)
    _handed_out: list[str] = field(default_factory=list, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_url(cls, url: sa.URL) -> IAMSignIn:
        """The sign-in a ``redshift+psycopg2://...?iam=true&...`` URL asks for.

        Raises:
            ConfigurationError: If the URL also has a password, or names neither a cluster
                nor a workgroup (and its host is not a Redshift host name).
        """
        query = url.query
        if url.password:
            raise ConfigurationError(
                "the warehouse URL has iam=true and a password: with IAM, Arbalest asks AWS "
                "for a temporary password; leave the URL's password out"
            )
        host = url.host or ""
        serverless_host = _SERVERLESS_HOST.match(host)
        cluster_host = _CLUSTER_HOST.match(host)
        flag = _one(query, "is_serverless")
        workgroup = _one(query, "serverless_work_group")
        serverless = (
            truthy("is_serverless", flag)
            if flag is not None
            else workgroup is not None or serverless_host is not None
        )
        region = _one(query, "region")
        if region is None:
            found = serverless_host or cluster_host
            region = found["region"] if found else None
        db_user = _one(query, "db_user") or url.username or None
        groups = _one(query, "db_groups")
        auto_create = _one(query, "auto_create")
        sign_in = cls(
            database=url.database or None,
            serverless=serverless,
            region=region,
            profile=_one(query, "profile"),
        )
        if serverless:
            workgroup = workgroup or (serverless_host["workgroup"] if serverless_host else None)
            if workgroup is None:
                raise ConfigurationError(
                    "the warehouse URL asks for IAM sign-in to Redshift Serverless but names no "
                    "workgroup: add serverless_work_group=<name> (or use the workgroup's "
                    "endpoint as the host)"
                )
            sign_in.workgroup = workgroup
            return sign_in
        cluster = _one(query, "cluster_identifier") or (
            cluster_host["cluster"] if cluster_host else None
        )
        if cluster is None:
            raise ConfigurationError(
                "the warehouse URL asks for IAM sign-in but names no cluster: add "
                "cluster_identifier=<cluster> (or use the cluster's endpoint as the host), or "
                "is_serverless=true&serverless_work_group=<name> for Redshift Serverless"
            )
        sign_in.cluster_identifier = cluster
        sign_in.db_user = db_user
        sign_in.db_groups = tuple(g.strip() for g in (groups or "").split(",") if g.strip())
        sign_in.auto_create = truthy("auto_create", auto_create) if auto_create else False
        if sign_in.db_groups and db_user is None:
            raise ConfigurationError(
                "db_groups= needs a database user: add db_user=<user> to the warehouse URL"
            )
        return sign_in

    @property
    def where(self) -> str:
        """The cluster or workgroup, as messages name it."""
        if self.serverless:
            return f"Redshift Serverless workgroup {self.workgroup!r}"
        return f"Redshift cluster {self.cluster_identifier!r}"

    def install(self, engine: sa.Engine) -> None:
        """Give every connection ``engine`` opens the temporary user and password."""
        sa.event.listen(engine, "do_connect", self._on_connect)
        _SIGN_INS[engine] = self

    def _on_connect(
        self, dialect: sa.Dialect, record: Any, cargs: Any, cparams: dict[str, Any]
    ) -> None:
        user, password = self.credentials()
        cparams["user"] = user
        cparams["password"] = password

    def secrets(self) -> tuple[str, ...]:
        """Every temporary password handed out so far."""
        with self._guard:
            return tuple(self._handed_out)

    def credentials(self) -> tuple[str, str]:
        """A database user and a temporary password that is still good for a minute.

        Raises:
            WarehouseAccessError: If AWS refuses (no permission, no such cluster or
                workgroup, no AWS credentials).
            WarehouseUnavailableError: If AWS cannot be reached or throttles (retryable).
        """
        with self._guard:
            now = dt.datetime.now(dt.UTC)
            if self._cached is not None and self._cached[2] - _MARGIN > now:
                return self._cached[0], self._cached[1]
            user, password, expires = self._ask()
            self._cached = (user, password, expires)
            self._handed_out.append(password)
            logger.debug("temporary credentials for %s, user %s", self.where, user)
            return user, password

    def _ask(self) -> tuple[str, str, dt.datetime]:
        try:
            if self.serverless:
                client = _client("redshift-serverless", self.region, self.profile)
                kwargs: dict[str, Any] = {"workgroupName": self.workgroup}
                if self.database:
                    kwargs["dbName"] = self.database
                answer = client.get_credentials(**kwargs)
                return (
                    str(answer["dbUser"]),
                    str(answer["dbPassword"]),
                    _aware(answer["expiration"]),
                )
            client = _client("redshift", self.region, self.profile)
            kwargs = {"ClusterIdentifier": self.cluster_identifier}
            if self.database:
                kwargs["DbName"] = self.database
            if self.db_user is None:
                answer = client.get_cluster_credentials_with_iam(**kwargs)
            else:
                kwargs["DbUser"] = self.db_user
                kwargs["AutoCreate"] = self.auto_create
                if self.db_groups:
                    kwargs["DbGroups"] = list(self.db_groups)
                answer = client.get_cluster_credentials(**kwargs)
            return str(answer["DbUser"]), str(answer["DbPassword"]), _aware(answer["Expiration"])
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            message = str(error.get("Message", "")).strip()
            operation = exc.operation_name
            reason = f"AWS refused {operation} for the {self.where} ({code}: {message})"
            if _REFUSED.search(code):
                raise WarehouseAccessError(
                    self.where, reason, _fix(self.serverless, operation)
                ) from None
            raise WarehouseUnavailableError("", f"{reason}; try again later") from None
        except botocore.exceptions.NoCredentialsError:
            raise WarehouseAccessError(
                self.where,
                "IAM sign-in needs AWS credentials, and boto3 found none",
                "set AWS credentials (environment, profile=, or an instance or task role)",
            ) from None
        except botocore.exceptions.ProfileNotFound:
            raise WarehouseAccessError(
                self.where,
                f"there is no AWS profile {self.profile!r}",
                "check profile= in the warehouse URL",
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            # a connection that failed, a timeout: worth trying again (the message names
            # the endpoint, never a credential)
            raise WarehouseUnavailableError(
                "", f"cannot reach AWS to sign in to the {self.where}: {exc}"
            ) from None


def _fix(serverless: bool, operation: str) -> str:
    action = "redshift-serverless:GetCredentials" if serverless else f"redshift:{operation}"
    return (
        f"allow {action} on it to the AWS identity that runs Arbalest, and check the "
        "cluster or workgroup name and region in the warehouse URL"
    )


def _aware(value: Any) -> dt.datetime:
    """An expiration as an aware datetime (botocore parses timestamps into aware ones)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=900)
