"""Planted secrets never reach any output: messages, reprs, tracebacks, logs or the CLI.

Distinctive fake credentials are planted (AWS access keys with a session token for the S3
store and for Redshift's COPY; a password in the PostgreSQL warehouse URL, which the server's
trust authentication ignores; a temporary database password from an IAM sign-in, answered by
a botocore Stubber or by moto's Redshift), then every surface is driven and captured: runs
that succeed and runs that fail (a missing bucket, an object that cannot be read, S3
refusing the keys, too many rejects, a failing SQL step, a warehouse that refuses
connections), ``validate()``, ``plan()``, the ``repr`` and ``str`` of pipelines, stores,
credentials, steps, results, plans and errors (with their causes and contexts, and
tracebacks as ``traceback.format_exception`` prints them), the ``arbalest`` logger's records
at DEBUG, the ``arbalest`` command's stdout and stderr with ``--verbose``, and every
OpenTelemetry span and metric the runs export (names, attributes, events and statuses).
Every captured string is scanned for each secret, whole, URL-encoded, or any 10 characters
of it in a row.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import textwrap
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import boto3
import pytest
import sqlalchemy as sa

from arbalest import (
    ArbalestError,
    ConfigurationError,
    Credentials,
    Pipeline,
    PipelineError,
    WarehouseUnavailableError,
)
from arbalest.cli import main
from tests.fixtures.faults import Fault, FaultProxy, Operation
from tests.fixtures.lakes import put_s3
from tests.fixtures.modules import module
from tests.fixtures.servers import POSTGRES_URL
from tests.fixtures.telemetry import Recorder

KEY_ID = "AKIAQX7PLANTEDKEY4ID"
SECRET_KEY = "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"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEPLANTEDsessionTOKEN" + "Zm9vYmFy" * 6
PG_PASSWORD = "pgPLANTEDpassw0rd-7c1e"
# what GetClusterCredentials / GetCredentials answer, in the IAM sign-in tests
TEMPORARY_PASSWORD = "tmpPLANTEDdbPassw0rd/IAM+Zx81"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:PLANTEDarbalest-q7Zp"
SECRETS = {
    "AWS access key id": KEY_ID,
    "AWS secret access key": SECRET_KEY,
    "AWS session token": SESSION_TOKEN,
    "PostgreSQL password": PG_PASSWORD,
    "Redshift temporary password": TEMPORARY_PASSWORD,
    "Data API secret ARN": SECRET_ARN,
}
WINDOW = 10  # this many characters of a secret in a row are a leak


def forms(secret: str) -> set[str]:
    """What to look for: every run of WINDOW characters of the secret, as it is and
    URL-encoded (a password in a URL is)."""
    found = set()
    for shown in {secret, quote(secret, safe=""), quote_plus(secret)}:
        found |= {shown[i : i + WINDOW] for i in range(len(shown) - WINDOW + 1)}
    return found


FORMS = {name: forms(secret) for name, secret in SECRETS.items()}


def chain(exc: BaseException) -> Iterator[tuple[BaseException, bool]]:
    """The exception, its causes and its contexts, each once, and whether it is only reached
    through a suppressed context (``raise ... from None``: held, but not printed)."""
    seen: set[int] = set()
    todo = [(exc, False)]
    while todo:
        current, hidden = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current, hidden
        if current.__cause__ is not None:
            todo.append((current.__cause__, hidden))
        if current.__context__ is not None and current.__context__ is not current.__cause__:
            todo.append((current.__context__, hidden or current.__suppress_context__))


@dataclass
class Surfaces:
    """Captured output, by where it came from."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: object) -> None:
        self.texts.append((where, text if isinstance(text, str) else str(text)))

    def add_object(self, where: str, obj: object) -> None:
        self.add(f"{where}: repr", repr(obj))
        self.add(f"{where}: str", str(obj))

    def add_exception(self, where: str, exc: BaseException) -> None:
        """str and repr of the error and of every cause and context, their attributes, and
        the traceback as Python prints it. Links that only a suppressed context reaches are
        marked ``(suppressed)``."""
        for number, (link, hidden) in enumerate(chain(exc)):
            name = f"{where}: chain[{number}] {type(link).__name__}"
            name += " (suppressed)" if hidden else ""
            self.add_object(name, link)
            for attribute, value in vars(link).items():
                if isinstance(value, str | int | list | tuple) or value is None:
                    self.add(f"{name}.{attribute}", repr(value))
        self.add(f"{where}: traceback", "".join(traceback.format_exception(exc)))

    def add_telemetry(self, where: str, recorder: Recorder) -> None:
        """Every span and metric the recorder was given, as text (see ``Recorder.texts``)."""
        texts = list(recorder.texts())
        assert texts, "no span was exported"
        for name, text in texts:
            self.add(f"{where}: {name}", text)

    def add_logs(self, where: str, records: list[logging.LogRecord]) -> None:
        formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
        for record in records:
            if record.name == "arbalest" or record.name.startswith("arbalest."):
                self.add(f"{where}: log {record.name}", formatter.format(record))

    def leaks(
        self, secrets: Iterable[str] = tuple(SECRETS), *, suppressed: bool = True
    ) -> list[tuple[str, str, str]]:
        """(where, which secret, the text around it) for every captured text that shows one
        of ``secrets``; ``suppressed=False`` skips what only suppressed contexts hold."""
        found = []
        for where, text in self.texts:
            if not suppressed and "(suppressed)" in where:
                continue
            for name in secrets:
                at = min((i for i in (text.find(f) for f in FORMS[name]) if i >= 0), default=-1)
                if at >= 0:
                    found.append((where, name, text[max(0, at - 60) : at + 80]))
        return found

    def check(self, secrets: Iterable[str] = tuple(SECRETS), *, suppressed: bool = True) -> None:
        """Fail with every leak: which secret, where, and the text around it."""
        found = self.leaks(secrets, suppressed=suppressed)
        assert not found, "secrets leaked:\n" + "\n".join(
            f"{name} in {where}: ...{around!r}..." for where, name, around in found
        )

    def __len__(self) -> int:
        return len(self.texts)


# -- the scanner itself ---------------------------------------------------------------------


def test_the_scanner_finds_every_secret_in_every_form_and_place() -> None:
    for name, secret in SECRETS.items():
        surfaces = Surfaces()
        surfaces.add("whole", f"... {secret} ...")
        surfaces.add("encoded", f"postgresql://u:{quote(secret, safe='')}@h/db")
        surfaces.add("cut short", f"LINE 1: ...{secret[3 : 3 + WINDOW]}...")
        try:
            try:
                raise ValueError(f"inner {secret}")
            except ValueError:
                raise RuntimeError("outer") from None  # suppressed context, still held
        except RuntimeError as exc:
            surfaces.add_exception("error", exc)
        record = logging.LogRecord("arbalest.x", logging.DEBUG, __file__, 1, "%s", (secret,), None)
        surfaces.add_logs("logs", [record])
        recorder = Recorder()
        span = recorder.tracer_provider.get_tracer("t").start_span("s", attributes={"k": secret})
        span.add_event("exception", {"exception.message": f"at {secret}"})
        span.end()
        counter = recorder.meter_provider.get_meter("t").create_counter("m")
        counter.add(1, {"k": secret})
        surfaces.add_telemetry("telemetry", recorder)
        found = {where for where, leaked, _ in surfaces.leaks() if leaked == name}
        assert found >= {
            "whole",
            "encoded",
            "cut short",
            "error: chain[1] ValueError (suppressed): str",
            "logs: log arbalest.x",
            "telemetry: span s attribute k",
            "telemetry: span s event exception exception.message",
            "telemetry: metric m attribute k",
        }, name
        assert not any("traceback" in where for where in found)  # Python does not print it
        assert surfaces.leaks(suppressed=False) != []
        with pytest.raises(AssertionError, match=f"{name} in whole"):
            surfaces.check()
    clean = Surfaces()
    clean.add("clean", f"AKIA... {KEY_ID[:4]}... *** {PG_PASSWORD[: WINDOW - 1]}")
    assert clean.leaks() == []


# -- fixtures: a lake, a warehouse URL with a password, keys -----------------------------------


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(KEY_ID, SECRET_KEY, SESSION_TOKEN)


@pytest.fixture
def warehouse_url(postgres_url: str) -> str:
    """The test's PostgreSQL schema, with a password (trust authentication ignores it)."""
    url = sa.make_url(postgres_url).set(password=PG_PASSWORD)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def lake(s3_bucket: str) -> str:
    """``s3://<bucket>/lake`` with two good objects under ``events/``."""
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": 2}])
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "b1", "n": 3}])
    return f"s3://{s3_bucket}/lake"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="arbalest")
    return caplog


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the library ----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.s3
def test_no_secret_in_a_successful_run_validate_plan_or_any_repr(
    warehouse_url: str,
    lake: str,
    credentials: Credentials,
    event: Any,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    pipeline = (
        Pipeline(warehouse_url, store=lake, credentials=credentials, name="planted")
        .copy(event, "events", max_errors=5)
        .sql("CREATE TABLE IF NOT EXISTS totals AS SELECT count(*) AS c FROM events")
    )
    surfaces = Surfaces()
    recorder = Recorder()
    try:
        for name, obj in [
            ("credentials", credentials),
            ("pipeline", pipeline),
            ("store", pipeline.store),
            ("pipeline.credentials", pipeline.credentials),
            ("steps", pipeline.steps),
            ("backend", pipeline.backend),
            ("engine", pipeline.engine),
            ("engine.url", pipeline.engine.url),
            ("plan", pipeline.plan()),
            ("plan.steps", pipeline.plan().steps),
            ("validate", pipeline.validate(**recorder.providers)),
        ]:
            surfaces.add_object(name, obj)
        result = pipeline.run(**recorder.providers)
        surfaces.add_object("run", result)
        surfaces.add_object("run.steps", result.steps)
        again = pipeline.run(**recorder.providers)
        surfaces.add_object("second run", again)
        surfaces.add_object("plan after", pipeline.plan())
        as_mapping = Pipeline(
            warehouse_url,
            store=lake,
            credentials={
                "aws_access_key_id": KEY_ID,
                "aws_secret_access_key": SECRET_KEY,
                "aws_session_token": SESSION_TOKEN,
            },
        )
        surfaces.add_object("pipeline with a mapping of keys", as_mapping)
        surfaces.add_object("its credentials", as_mapping.credentials)
        as_mapping.engine.dispose()
        with pytest.raises(ConfigurationError) as incomplete:
            Pipeline(warehouse_url, store=lake, credentials={"aws_access_key_id": KEY_ID})
        surfaces.add_exception("incomplete keys", incomplete.value)
    finally:
        pipeline.engine.dispose()
    surfaces.add_logs("logs", debug_logs.records)
    surfaces.add_telemetry("telemetry", recorder)
    assert len(recorder.spans("arbalest.object")) == 4  # validated, then loaded
    assert result.rows_loaded == 3  # the surfaces are those of a real load
    assert "***" in repr(pipeline)  # the password is there, hidden
    assert len(surfaces) > 25
    surfaces.check()


@pytest.mark.postgres
@pytest.mark.s3
def test_no_secret_from_the_original_arbalest_api(
    postgres_schema: str,
    warehouse_url: str,
    s3_bucket: str,
    lake: str,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    import psycopg2

    from arbalest.compat import S3CopyPipeline
    from arbalest.redshift.schema import JsonObject, Property

    url = sa.make_url(warehouse_url)
    connection = psycopg2.connect(
        host=url.host,
        port=url.port,
        dbname=url.database,
        user=url.username,
        password=PG_PASSWORD,
        options=f"-csearch_path={postgres_schema}",
    )
    try:
        events = JsonObject("events", Property("id", "VARCHAR(36)"), Property("n", "INTEGER"))
        pipeline = S3CopyPipeline(
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET_KEY,
            bucket=s3_bucket,
            db_connection=connection,
        ).manifest_copy(metadata="meta", source="lake/events", schema=events)
        surfaces = Surfaces()
        surfaces.add_object("S3CopyPipeline", pipeline)
        surfaces.add_object("its run", pipeline.run())
        pipeline.manifest_copy(
            metadata="meta", source="lake/nothing", schema=events, max_error_count=0
        )
        put_s3(s3_bucket, "lake/nothing/x.json", [{"id": "x", "n": "not a number"}])
        with pytest.raises(PipelineError) as caught:
            pipeline.run()
        surfaces.add_exception("its failure", caught.value)
    finally:
        connection.close()
    surfaces.add_logs("logs", debug_logs.records)
    surfaces.check()


@dataclass(frozen=True)
class Failure:
    """A pipeline that fails; ``make`` builds it from the warehouse URL, lake and keys."""

    id: str
    make: Callable[..., Pipeline]
    proxy: Fault | None = None  # S3 answers through the fault proxy with this...
    on: Operation = "list"  # ...to these requests


def _bad_bucket(url: str, lake: str, keys: Credentials, event: Any, **_: Any) -> Pipeline:
    return Pipeline(url, store="s3://no-such-bucket-planted/lake", credentials=keys).copy(
        event, "events"
    )


def _bad_object(url: str, lake: str, keys: Credentials, event: Any, bucket: str) -> Pipeline:
    put_s3(bucket, "lake/events/c.json.gz", b'{"id": "not gzip at all"}\n')
    return Pipeline(url, store=lake, credentials=keys).copy(event, "events")


def _rejects(url: str, lake: str, keys: Credentials, event: Any, bucket: str) -> Pipeline:
    put_s3(bucket, "lake/events/c.json", [{"id": "c1", "n": "not a number"}, {"id": None}])
    return Pipeline(url, store=lake, credentials=keys).copy(event, "events", max_errors=1)


def _sql(url: str, lake: str, keys: Credentials, event: Any, **_: Any) -> Pipeline:
    return Pipeline(url, store=lake, credentials=keys).sql("SELECT * FROM no_such_table")


def _good(url: str, lake: str, keys: Credentials, event: Any, **_: Any) -> Pipeline:
    return Pipeline(url, store=lake, credentials=keys).copy(event, "events")


def _refused(url: str, lake: str, keys: Credentials, event: Any, **_: Any) -> Pipeline:
    refused = sa.make_url(url).set(port=refused_port()).render_as_string(hide_password=False)
    return Pipeline(refused, store=lake, credentials=keys).copy(event, "events")


FAILURES = [
    Failure("missing-bucket", _bad_bucket),
    Failure("unreadable-object", _bad_object),
    Failure("too-many-rejects", _rejects),
    Failure("failing-sql-step", _sql),
    Failure("s3-invalid-access-key-id", _good, Fault.echo_auth("InvalidAccessKeyId")),
    Failure("s3-signature-does-not-match", _good, Fault.echo_auth("SignatureDoesNotMatch")),
    Failure("s3-access-denied-on-get", _good, Fault.echo_auth("AccessDenied"), "get"),
    Failure("object-vanished", _good, Fault.status(404, "NoSuchKey"), "get"),
    Failure("warehouse-refuses-connections", _refused),
]


@pytest.mark.postgres
@pytest.mark.s3
@pytest.mark.parametrize("failure", FAILURES, ids=lambda f: f.id)
def test_no_secret_when_a_run_validate_or_plan_fails(
    failure: Failure,
    warehouse_url: str,
    lake: str,
    s3_bucket: str,
    s3_endpoint: str,
    credentials: Credentials,
    event: Any,
    debug_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FaultProxy(s3_endpoint) as proxy:
        if failure.proxy is not None:
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
            proxy.inject(failure.proxy, on=failure.on, times=None)
        pipeline = failure.make(warehouse_url, lake, credentials, event, bucket=s3_bucket)
        surfaces = Surfaces()
        recorder = Recorder()
        errors = []
        try:
            for action in ("run", "validate", "plan"):
                try:
                    kw = recorder.providers if action != "plan" else {}
                    outcome = getattr(pipeline, action)(**kw)
                except Exception as exc:
                    errors.append(exc)
                    surfaces.add_exception(action, exc)
                else:
                    surfaces.add_object(action, outcome)
        finally:
            pipeline.engine.dispose()
        if failure.proxy is not None:
            assert proxy.hits(failure.on) >= 2  # the run's and the validation's
    surfaces.add_object("pipeline", pipeline)
    surfaces.add_logs("logs", debug_logs.records)
    surfaces.add_telemetry("telemetry", recorder)
    assert errors, "the pipeline was meant to fail"
    # the failure is in the spans too, with its (redacted) message
    assert any(span.status.description for span in recorder.spans())
    surfaces.check()


# -- the Redshift path: keys go into COPY's SQL -------------------------------------------------


def redshift_pipeline(engine: sa.Engine, bucket: str, keys: Credentials, event: Any) -> Pipeline:
    return Pipeline(engine, store=f"s3://{bucket}/lake", credentials=keys).copy(
        event, "events", max_errors=1
    )


@pytest.mark.postgres
@pytest.mark.s3
def test_no_secret_from_the_redshift_path_that_succeeds_or_rejects_too_much(
    redshift_standin: Any,
    s3_bucket: str,
    credentials: Credentials,
    event: Any,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    pipeline = redshift_pipeline(redshift_standin.engine, s3_bucket, credentials, event)
    surfaces = Surfaces()
    recorder = Recorder()
    surfaces.add_object("pipeline", pipeline)
    surfaces.add_object("plan", pipeline.plan())
    surfaces.add_object("validate", pipeline.validate(**recorder.providers))
    surfaces.add_object("run", pipeline.run(**recorder.providers))
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "b1", "n": "x"}, {"id": "b2", "n": "y"}])
    with pytest.raises(PipelineError) as caught:
        pipeline.run(**recorder.providers)
    surfaces.add_exception("too many rejects", caught.value)
    surfaces.add_logs("logs", debug_logs.records)
    surfaces.add_telemetry("telemetry", recorder)
    # the keys did go into the COPY, as a bound parameter
    assert all(
        "WITH CREDENTIALS AS %(credentials)s" in c["statement"] for c in redshift_standin.copies
    )
    surfaces.check()


@pytest.mark.postgres
@pytest.mark.s3
def test_no_secret_through_the_data_api(
    redshift_standin: Any,
    s3_bucket: str,
    credentials: Credentials,
    event: Any,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    from arbalest import RedshiftDataAPI
    from tests.fixtures.redshift_data import FakeDataAPI

    client = FakeDataAPI(redshift_standin)
    api = RedshiftDataAPI(
        workgroup="analytics", database="test", secret_arn=SECRET_ARN, client=client
    )
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    pipeline = Pipeline(api, store=f"s3://{s3_bucket}/lake", credentials=credentials).copy(
        event, "events", max_errors=1
    )
    surfaces = Surfaces()
    recorder = Recorder()
    for name, obj in [
        ("api", api),
        ("api.url", api.url()),
        ("pipeline", pipeline),
        ("engine", pipeline.engine),
        ("engine.url", pipeline.engine.url),
        ("backend", pipeline.backend),
        ("plan", pipeline.plan()),
        ("validate", pipeline.validate(**recorder.providers)),
        ("run", pipeline.run(**recorder.providers)),
    ]:
        surfaces.add_object(name, obj)
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "b1", "n": "x"}, {"id": "b2", "n": "y"}])
    with pytest.raises(PipelineError) as too_many:
        pipeline.run(**recorder.providers)
    surfaces.add_exception("too many rejects", too_many.value)
    client.fail_next = ["AccessDeniedException"] * 20
    with pytest.raises(ArbalestError) as denied:
        pipeline.run(**recorder.providers)
    surfaces.add_exception("access denied", denied.value)
    client.fail_next = []
    put_s3(s3_bucket, "lake/events/c.json", [{"id": "c1", "n": 1}])
    client.refuse = "COPY"
    with pytest.raises(PipelineError) as refused:
        pipeline.run(**recorder.providers)
    surfaces.add_exception("refused COPY", refused.value)
    with pytest.raises(ConfigurationError) as bad:
        Pipeline(f"redshift+data:///test?workgroup=wg&secret_arn={SECRET_ARN}&bad=1")
    surfaces.add_exception("bad URL", bad.value)
    surfaces.add_logs("logs", debug_logs.records)
    surfaces.add_telemetry("telemetry", recorder)
    assert "syntax error" in str(refused.value)  # the warehouse's message is kept
    # the ARN went to the Data API, and the keys into the COPY's text, as they must
    # (a call in a Data API session names the session alone, which a call with it opened)
    batches = [r for _, r in client.requests if "Sqls" in r]
    assert all(r.get("SecretArn") == SECRET_ARN or "SessionId" in r for r in batches)
    assert any(r.get("SecretArn") == SECRET_ARN for r in batches)
    assert any(SECRET_KEY in sql for sql in client.sent if sql.startswith("COPY"))
    client.close()  # the sessions the failed runs left open
    surfaces.check()


def refused_copy(standin: Any, bucket: str, keys: Credentials, event: Any, hide: bool) -> Surfaces:
    """Run a Redshift COPY that the warehouse refuses with a syntax error: PostgreSQL, like
    Redshift, quotes the statement it received (keys pasted in by the driver) in its message.
    ``hide``: the engine's ``hide_parameters``."""
    put_s3(bucket, "lake/events/a.json", [{"id": "a1", "n": 1}])
    standin.remove()  # COPY reaches PostgreSQL as it is
    engine = sa.create_engine(standin.engine.url, hide_parameters=hide)
    try:
        with pytest.raises(PipelineError) as caught:
            redshift_pipeline(engine, bucket, keys, event).run()
    finally:
        engine.dispose()
        standin.install(create=False)
    assert "syntax error" in str(caught.value)  # the warehouse's message is kept
    surfaces = Surfaces()
    surfaces.add_exception("refused COPY", caught.value)
    return surfaces


HIDE = pytest.mark.parametrize("hide", [True, False], ids=["hide_parameters", "own_engine"])


@pytest.mark.postgres
@pytest.mark.s3
@HIDE
def test_no_secret_in_the_error_when_the_warehouse_echoes_the_copy_statement(
    hide: bool,
    redshift_standin: Any,
    s3_bucket: str,
    credentials: Credentials,
    event: Any,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    surfaces = refused_copy(redshift_standin, s3_bucket, credentials, event, hide)
    surfaces.add_logs("logs", debug_logs.records)
    surfaces.check(suppressed=False)  # everything str(), repr() and tracebacks show


@pytest.mark.postgres
@pytest.mark.s3
@HIDE
def test_no_secret_key_anywhere_in_a_refused_copys_error_chain(
    hide: bool, redshift_standin: Any, s3_bucket: str, credentials: Credentials, event: Any
) -> None:
    surfaces = refused_copy(redshift_standin, s3_bucket, credentials, event, hide)
    surfaces.check(["AWS secret access key", "AWS session token"], suppressed=True)


# -- IAM sign-in: a temporary database password ----------------------------------------------


def iam_pipeline(
    user: str, schema: str, bucket: str, event: Any, port: int | None = None, **kw: Any
) -> Pipeline:
    base = sa.make_url(POSTGRES_URL)
    url = (
        f"redshift+psycopg2://{user}@{base.host}:{port or base.port}/{base.database}?iam=true"
        f"&cluster_identifier=loading&region=us-east-1&sslmode=disable"
        f"&options=-csearch_path%3D{schema}"
    )
    return Pipeline(url, store=f"s3://{bucket}/lake", **kw).copy(event, "events", max_errors=1)


@pytest.mark.postgres
@pytest.mark.s3
def test_no_temporary_password_from_an_iam_sign_in_anywhere(
    iam_user: str,
    postgres_schema: str,
    s3_bucket: str,
    credentials: Credentials,
    event: Any,
    debug_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """psycopg2 signs in with a password from GetClusterCredentials: runs that succeed and
    fail, validate(), plan(), a warehouse that refuses connections, and every repr."""
    from botocore.stub import Stubber

    from arbalest.backends import _redshift_iam
    from tests.fixtures.redshift import install_stand_in

    client = boto3.client("redshift", region_name="us-east-1")
    stub = Stubber(client)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)
    for _ in range(2):  # the pipeline's engine, then the refused one's
        stub.add_response(
            "get_cluster_credentials",
            {"DbUser": f"IAM:{iam_user}", "DbPassword": TEMPORARY_PASSWORD, "Expiration": expires},
        )
    stub.activate()
    monkeypatch.setattr(_redshift_iam, "_client", lambda service, region, profile: client)
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": "x"}])
    pipeline = iam_pipeline(iam_user, postgres_schema, s3_bucket, event, credentials=credentials)
    side = sa.create_engine(
        sa.make_url(POSTGRES_URL).update_query_dict(
            {"options": f"-csearch_path={postgres_schema}"}
        ),
        isolation_level="AUTOCOMMIT",
    )
    standin = install_stand_in(pipeline.engine, side)
    surfaces = Surfaces()
    try:
        surfaces.add_object("pipeline", pipeline)
        surfaces.add_object("plan", pipeline.plan())
        surfaces.add_object("validate", pipeline.validate())
        surfaces.add_object("run", pipeline.run())
        put_s3(s3_bucket, "lake/events/b.json", [{"id": "b1", "n": "x"}, {"id": "b2", "n": "y"}])
        with pytest.raises(PipelineError) as caught:
            pipeline.run()
        surfaces.add_exception("too many rejects", caught.value)
        surfaces.add_object("engine", pipeline.engine)
        surfaces.add_object("url", pipeline.engine.url)
        surfaces.add_object("sign-in", _redshift_iam.sign_in_for(pipeline.engine))
    finally:
        standin.remove()
        pipeline.close()
        side.dispose()
    refused = iam_pipeline(iam_user, postgres_schema, s3_bucket, event, port=refused_port())
    with pytest.raises(WarehouseUnavailableError) as caught_refused:
        refused.run()
    surfaces.add_exception("refused connection", caught_refused.value)
    assert TEMPORARY_PASSWORD in _redshift_iam.sign_in_for(refused.engine).secrets()  # type: ignore[union-attr]
    surfaces.add_logs("logs", debug_logs.records)
    stub.assert_no_pending_responses()
    surfaces.check()


@pytest.mark.postgres
@pytest.mark.s3
def test_no_temporary_password_from_redshift_connectors_own_iam_sign_in(
    s3_endpoint: str,
    s3_bucket: str,
    event: Any,
    debug_logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """redshift_connector asks moto's Redshift for the password itself, then finds nothing
    listening: the error, its chain and the logs hold no trace of the password."""
    from moto.redshift import models

    boto3.client("redshift", region_name="us-east-1").create_cluster(
        ClusterIdentifier="connector",
        ClusterType="single-node",
        NodeType="ra3.xlplus",
        MasterUsername="admin",
        MasterUserPassword="Adm1nPassword",
    )
    answered = []
    real = models.RedshiftBackend.get_cluster_credentials

    def planted(self: Any, *args: Any, **kw: Any) -> Any:
        found = real(self, *args, **kw)
        answered.append(found["DbUser"])
        return {**found, "DbPassword": TEMPORARY_PASSWORD}

    monkeypatch.setattr(models.RedshiftBackend, "get_cluster_credentials", planted)
    url = (
        f"redshift+redshift_connector://etl@127.0.0.1:{refused_port()}/dev?iam=true"
        "&cluster_identifier=connector&region=us-east-1&timeout=5"
    )
    pipeline = Pipeline(url, store=f"s3://{s3_bucket}/lake").copy(event, "events")
    surfaces = Surfaces()
    with pytest.raises(WarehouseUnavailableError) as caught:
        pipeline.run()
    assert answered == ["IAM:etl"], caught.value  # the driver did get the password
    surfaces.add_exception("refused connection", caught.value)
    surfaces.add_object("pipeline", pipeline)
    surfaces.add_logs("logs", debug_logs.records)
    surfaces.check()


# -- the command line -----------------------------------------------------------------------

JOBS = module(
    """\
# credentials from the environment, as in production (never in the file); one function per
# pipeline, so that a command builds only the one it runs
def keys():
    return Credentials(
        os.environ["PLANTED_KEY_ID"], os.environ["PLANTED_SECRET"], os.environ["PLANTED_TOKEN"]
    )


def good():
    return Pipeline(
        os.environ["PLANTED_WAREHOUSE"], store=os.environ["PLANTED_LAKE"], credentials=keys()
    ).copy(Event, "events")


def rejects():
    return Pipeline(
        os.environ["PLANTED_WAREHOUSE"], store=os.environ["PLANTED_LAKE"], credentials=keys()
    ).copy(Event, "bad", max_errors=0)


def missing():
    return Pipeline(
        os.environ["PLANTED_WAREHOUSE"], store="s3://no-such-bucket-planted/x", credentials=keys()
    ).copy(Event, "events")
""",
    first=("import os",),
    names=("Credentials", "Integer", "Pipeline", "Schema", "String"),
)


@pytest.mark.postgres
@pytest.mark.s3
def test_no_secret_on_the_command_lines_stdout_or_stderr(
    clean_cli: None,
    warehouse_url: str,
    lake: str,
    s3_bucket: str,
    s3_endpoint: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put_s3(s3_bucket, "lake/bad/x.json", [{"id": "x", "n": "not a number"}])
    jobs = tmp_path / f"jobs_{uuid.uuid4().hex[:8]}.py"
    jobs.write_text(textwrap.dedent(JOBS))
    for name, value in [
        ("PLANTED_KEY_ID", KEY_ID),
        ("PLANTED_SECRET", SECRET_KEY),
        ("PLANTED_TOKEN", SESSION_TOKEN),
        ("PLANTED_WAREHOUSE", warehouse_url),
        ("PLANTED_LAKE", lake),
    ]:
        monkeypatch.setenv(name, value)
    refused = sa.make_url(warehouse_url).set(port=refused_port()).render_as_string(False)
    commands = [
        ["run", f"{jobs}:good"],
        ["validate", f"{jobs}:good"],
        ["plan", f"{jobs}:good"],
        ["status", f"{jobs}:good"],
        ["run", f"{jobs}:rejects"],
        ["validate", f"{jobs}:rejects"],
        ["run", f"{jobs}:missing"],
        ["plan", f"{jobs}:missing"],
        ["run", f"{jobs}:good", "--warehouse", refused],
        ["status", f"{jobs}:good", "--warehouse", refused],
        ["run", f"{jobs}:good", "--warehouse", f"postgresql+psycopg2//u:{PG_PASSWORD}@h/db"],
        ["run", f"{jobs}:good", "--store", f"{lake}2"],  # S3 refuses the keys (the proxy)
    ]
    surfaces = Surfaces()
    codes = []
    with FaultProxy(s3_endpoint) as proxy:
        proxy.inject(Fault.echo_auth("SignatureDoesNotMatch"), on="list", times=None)
        for number, argv in enumerate(commands):
            if argv[-1] == f"{lake}2":
                monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
            where = f"#{number} {argv[0]} {argv[1].rsplit(':', 1)[-1]}"
            try:
                codes.append(main(["--verbose", *argv]))
            except Exception as exc:  # what Python would print for the installed script
                codes.append(-1)
                surfaces.add_exception(f"{where}: uncaught", exc)
            out, err = capsys.readouterr()
            surfaces.add(f"{where}: stdout", out)
            surfaces.add(f"{where}: stderr", err)
        assert proxy.hits("list") >= 1
    texts = dict(surfaces.texts)
    assert codes[:4] == [0, 0, 0, 0]
    assert "copy events (incremental): done" in texts["#0 run good: stderr"]
    assert "SignatureDoesNotMatch" in texts["#11 run good: stderr"]
    assert all(code != 0 for code in codes[4:]), codes
    surfaces.check()
