"""IAM sign-in to Redshift, offline: what a URL asks for, what is asked of AWS (through a
botocore Stubber), how long a password is kept, how AWS's refusals read; and the options of a
``redshift+redshift_connector://`` URL as the driver receives them."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import boto3
import pytest
import redshift_connector
import sqlalchemy as sa
from botocore.stub import Stubber

from arbalest import ConfigurationError, Pipeline, WarehouseAccessError
from arbalest.backends import _redshift_iam
from arbalest.backends._redshift_iam import IAMSignIn, sign_in_for
from arbalest.errors import WarehouseUnavailableError
from arbalest.pipeline.engines import create_engine

PLANTED = "tmpPLANTEDpassw0rdFromGetCredentials"
CLUSTER_HOST = "examplecluster.abc123xyz789.eu-west-1.redshift.amazonaws.com"
SERVERLESS_HOST = "analytics.123456789012.us-east-2.redshift-serverless.amazonaws.com"


def sign_in(url: str) -> IAMSignIn:
    return IAMSignIn.from_url(sa.make_url(url))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"redshift+psycopg2://loader@{CLUSTER_HOST}:5439/dev?iam=true",
            {
                "serverless": False,
                "cluster_identifier": "examplecluster",
                "region": "eu-west-1",
                "db_user": "loader",
                "database": "dev",
            },
        ),
        (
            "redshift+psycopg2://127.0.0.1/dev?iam=true&cluster_identifier=c1&region=us-east-1"
            "&db_user=etl&db_groups=loaders,+readers&auto_create=true&profile=prod",
            {
                "cluster_identifier": "c1",
                "region": "us-east-1",
                "db_user": "etl",
                "db_groups": ("loaders", "readers"),
                "auto_create": True,
                "profile": "prod",
            },
        ),
        (
            f"redshift+psycopg2://{SERVERLESS_HOST}:5439/dev?iam=true",
            {
                "serverless": True,
                "workgroup": "analytics",
                "region": "us-east-2",
                "cluster_identifier": None,
            },
        ),
        (
            "redshift+psycopg2://ignored@10.0.0.7:5439/dev?iam=true&is_serverless=true"
            "&serverless_work_group=wg&region=eu-central-1",
            {"serverless": True, "workgroup": "wg", "region": "eu-central-1", "db_user": None},
        ),
        (
            f"redshift+psycopg2://{CLUSTER_HOST}:5439/dev?iam=true",
            {"db_user": None},  # no user: the IAM identity's own (GetClusterCredentialsWithIAM)
        ),
    ],
)
def test_what_a_url_asks_for(url: str, expected: dict[str, Any]) -> None:
    found = sign_in(url)
    for name, value in expected.items():
        assert getattr(found, name) == value, name


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redshift+psycopg2://u:pw@h/dev?iam=true&cluster_identifier=c", "and a password"),
        ("redshift+psycopg2://u@10.0.0.1/dev?iam=true", "names no cluster"),
        ("redshift+psycopg2://u@10.0.0.1/dev?iam=true&is_serverless=true", "names no workgroup"),
        ("redshift+psycopg2://10.0.0.1/dev?iam=true&cluster_identifier=c&db_groups=g", "db_user"),
        ("redshift+psycopg2://u@h/dev?iam=true&cluster_identifier=c&auto_create=sure", "boolean"),
        ("redshift+psycopg2://u@h/dev?iam=yes please", "boolean"),
    ],
)
def test_urls_that_cannot_sign_in_say_why(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        create_engine(url)
    assert "pw" not in str(caught.value).replace("password", "")


def test_the_iam_options_do_not_reach_psycopg2() -> None:
    engine = create_engine(
        f"redshift+psycopg2://loader@{CLUSTER_HOST}:5439/dev?iam=true&db_groups=g"
        "&sslmode=verify-full&profile=prod"
    )
    assert dict(engine.url.query) == {"sslmode": "verify-full"}
    assert sign_in_for(engine) is not None
    assert sign_in_for(create_engine(f"redshift+psycopg2://u@{CLUSTER_HOST}/dev?iam=false")) is None
    assert sign_in_for(create_engine(f"redshift+psycopg2://u:p@{CLUSTER_HOST}/dev")) is None


def expiring(minutes: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> dict[str, Stubber]:
    """Clients whose answers the test queues (``Stubber``); any other call fails."""
    stubs: dict[str, Stubber] = {}
    for service in ("redshift", "redshift-serverless"):
        client = boto3.client(
            service,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        stubs[service] = Stubber(client)
        stubs[service].activate()
    monkeypatch.setattr(
        _redshift_iam, "_client", lambda service, region, profile: stubs[service].client
    )
    return stubs


def test_a_cluster_user_gets_get_cluster_credentials_and_the_password_is_kept(
    stubbed: dict[str, Stubber],
) -> None:
    stub = stubbed["redshift"]
    stub.add_response(
        "get_cluster_credentials",
        {"DbUser": "IAMA:etl", "DbPassword": PLANTED, "Expiration": expiring(15)},
        {
            "ClusterIdentifier": "c1",
            "DbName": "dev",
            "DbUser": "etl",
            "AutoCreate": True,
            "DbGroups": ["loaders"],
        },
    )
    found = sign_in(
        "redshift+psycopg2://h/dev?iam=true&cluster_identifier=c1&db_user=etl"
        "&db_groups=loaders&auto_create=1"
    )
    assert found.credentials() == ("IAMA:etl", PLANTED)
    assert found.credentials() == ("IAMA:etl", PLANTED)  # kept: one call only
    stub.assert_no_pending_responses()
    assert found.secrets() == (PLANTED,)
    assert PLANTED not in repr(found)


def test_a_password_about_to_expire_is_asked_for_again(stubbed: dict[str, Stubber]) -> None:
    stub = stubbed["redshift"]
    for password, minutes in (("first-password-0001", 0.5), ("second-password-0002", 15)):
        stub.add_response(
            "get_cluster_credentials_with_iam",
            {"DbUser": "IAMR:loader", "DbPassword": password, "Expiration": expiring(minutes)},
            {"ClusterIdentifier": "c1", "DbName": "dev"},
        )
    found = sign_in("redshift+psycopg2://h/dev?iam=true&cluster_identifier=c1")
    assert found.credentials()[1] == "first-password-0001"
    assert found.credentials()[1] == "second-password-0002"  # the first had 30 s left
    assert found.secrets() == ("first-password-0001", "second-password-0002")


def test_serverless_gets_get_credentials_for_the_workgroup(stubbed: dict[str, Stubber]) -> None:
    stub = stubbed["redshift-serverless"]
    stub.add_response(
        "get_credentials",
        {"dbUser": "IAMR:loader", "dbPassword": PLANTED, "expiration": expiring(15)},
        {"workgroupName": "analytics", "dbName": "dev"},
    )
    assert sign_in(f"redshift+psycopg2://{SERVERLESS_HOST}/dev?iam=true").credentials() == (
        "IAMR:loader",
        PLANTED,
    )


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("AccessDenied", WarehouseAccessError),
        ("ClusterNotFound", WarehouseAccessError),
        ("Throttling", WarehouseUnavailableError),
        ("InternalFailure", WarehouseUnavailableError),
    ],
)
def test_aws_refusing_reads_as_what_to_fix_or_a_retryable_error(
    stubbed: dict[str, Stubber], code: str, error: type[Exception]
) -> None:
    stubbed["redshift"].add_client_error(
        "get_cluster_credentials",
        service_error_code=code,
        service_message="no",
        http_status_code=400,
    )
    engine = create_engine("redshift+psycopg2://etl@127.0.0.1:1/dev?iam=true&cluster_identifier=c1")
    with pytest.raises(error) as caught:
        Pipeline(engine).plan()
    assert code in str(caught.value)
    assert caught.value.retryable is (error is WarehouseUnavailableError)  # type: ignore[attr-defined]
    if error is WarehouseAccessError:
        assert "redshift:GetClusterCredentials" in str(caught.value)


def test_no_aws_credentials_says_where_to_put_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    found = sign_in("redshift+psycopg2://etl@h/dev?iam=true&cluster_identifier=c&region=us-east-1")
    with pytest.raises(WarehouseAccessError, match="found none"):
        found.credentials()
    missing = sign_in("redshift+psycopg2://etl@h/dev?iam=true&cluster_identifier=c&profile=nope")
    with pytest.raises(WarehouseAccessError, match="no AWS profile 'nope'"):
        missing.credentials()


# -- redshift+redshift_connector:// -----------------------------------------------------------


def connect_kwargs(url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the driver's connect() receives for ``url``."""
    seen: dict[str, Any] = {}

    @functools.wraps(redshift_connector.connect)  # its signature is what types the options
    def connect(**kw: Any) -> Any:
        seen.update(kw)
        raise redshift_connector.error.InterfaceError("not connecting in a unit test")

    monkeypatch.setattr(redshift_connector, "connect", connect)
    with pytest.raises(sa.exc.DBAPIError):
        create_engine(url).connect()
    return seen


def test_redshift_connector_gets_its_iam_options_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = connect_kwargs(
        "redshift+redshift_connector://etl@h:5439/dev?iam=true&cluster_identifier=c1"
        "&db_groups=loaders,readers&auto_create=false&region=eu-west-1&profile=prod"
        "&timeout=30&is_serverless=0&serverless_work_group=wg",
        monkeypatch,
    )
    assert seen["iam"] is True
    assert seen["auto_create"] is False
    assert seen["is_serverless"] is False
    assert seen["db_groups"] == ["loaders", "readers"]
    assert seen["timeout"] == 30
    assert (seen["cluster_identifier"], seen["region"], seen["profile"]) == (
        "c1",
        "eu-west-1",
        "prod",
    )
    assert (seen["user"], seen["database"], seen["port"]) == ("etl", "dev", 5439)
    # the URL's user is the database user to ask credentials for, as with psycopg2
    assert seen["db_user"] == "etl"
    named = connect_kwargs(
        "redshift+redshift_connector://etl@h/dev?iam=true&cluster_identifier=c&db_user=other",
        monkeypatch,
    )
    assert named["db_user"] == "other"
    serverless = connect_kwargs(
        "redshift+redshift_connector://etl@h/dev?iam=true&is_serverless=true", monkeypatch
    )
    assert "db_user" not in serverless


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("iam=maybe", "is not a boolean"),
        ("timeout=soon", "is not a whole number"),
        ("cluster_identifer=c1", "not an option of redshift_connector.connect"),
        ("secret_access_key=abc123", "carries secret_access_key"),
        ("session_token=abc123", "carries session_token"),
    ],
)
def test_redshift_connector_options_that_cannot_be_read_are_refused(
    query: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        create_engine(f"redshift+redshift_connector://etl@h:5439/dev?{query}")
    assert "abc123" not in str(caught.value)
