"""The Redshift backend, end to end: its whole statement sequence runs on PostgreSQL, with
COPY done by the stand-in of tests/fixtures/redshift.py from manifests on moto's S3."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import sqlalchemy as sa

from arbalest import (
    ConcurrentRunError,
    ConfigurationError,
    Credentials,
    Pipeline,
    PipelineError,
    Schema,
    TooManyRejectsError,
    journal,
)
from tests.fixtures.lakes import put_s3
from tests.fixtures.real_aws import drop_loaded, random_event
from tests.fixtures.redshift import ROLE

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


@pytest.fixture
def event(make_event: Callable[..., Any]) -> Any:
    return make_event(__table_args__={"redshift_distkey": "id"})


def keys(bucket: str, prefix: str) -> list[str]:
    response = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))


def get_json(bucket: str, key: str) -> Any:
    return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT id, n FROM events ORDER BY id"))]


def pipeline(standin: Any, bucket: str, event: Any, **kw: Any) -> Pipeline:
    copy_kw = {
        k: kw.pop(k) for k in ("mode", "max_errors", "compression", "time_format") if k in kw
    }
    return Pipeline(standin.engine, store=f"s3://{bucket}/lake", iam_role=ROLE, **kw).copy(
        event, "events", **copy_kw
    )


def test_incremental_uploads_exactly_the_new_objects(
    redshift_standin: Any, s3_bucket: str, event: Any
) -> None:
    size_a = put_s3(s3_bucket, "lake/events/a.json", [{"id": "a1", "n": 1}, {"id": "a2", "n": 2}])
    size_b = put_s3(s3_bucket, "lake/events/b.json", [{"id": "b1", "n": 3}])
    put_s3(s3_bucket, "lake/events_old/x.json", [{"id": "old"}])
    p = pipeline(redshift_standin, s3_bucket, event)
    result = p.run()
    assert (result.steps[0].objects_loaded, result.rows_loaded) == (2, 3)
    # one COPY per object, in key order: each COPY's count and load errors are its object's
    assert len(redshift_standin.copies) == 2
    for copy, (name, size) in zip(
        redshift_standin.copies, [("a.json", size_a), ("b.json", size_b)], strict=True
    ):
        assert copy["table"] == "events"
        assert copy["columns"] == ["id", "n"]
        assert copy["jsonpaths"] == {"jsonpaths": ["$['id']", "$['n']"]}
        assert copy["jsonpaths_url"] == f"s3://{s3_bucket}/lake/_arbalest/jsonpaths/events.json"
        assert copy["manifest"] == {
            "entries": [
                {
                    "url": f"s3://{s3_bucket}/lake/events/{name}",
                    "mandatory": True,
                    "meta": {"content_length": size},
                }
            ]
        }
        assert copy["manifest_url"].startswith(f"s3://{s3_bucket}/lake/_arbalest/manifests/events/")
        assert "WITH CREDENTIALS AS" in copy["statement"]
    assert rows(redshift_standin.engine) == [("a1", 1), ("a2", 2), ("b1", 3)]

    # a second run with nothing new: no COPY, and nothing uploaded
    uploaded = keys(s3_bucket, "lake/_arbalest/")
    assert p.run().rows_loaded == 0
    assert len(redshift_standin.copies) == 2
    assert keys(s3_bucket, "lake/_arbalest/") == uploaded

    # a third with one new object lists only it
    put_s3(s3_bucket, "lake/events/c.json", [{"id": "c1", "n": 4}])
    assert p.run().rows_loaded == 1
    assert [e["url"] for e in redshift_standin.copies[-1]["manifest"]["entries"]] == [
        f"s3://{s3_bucket}/lake/events/c.json"
    ]
    with redshift_standin.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(journal.JOURNAL)).scalar() == 3


def test_each_object_copies_with_its_compression(
    redshift_standin: Any, s3_bucket: str, event: Any
) -> None:
    import bz2
    import gzip

    import zstandard

    put_s3(s3_bucket, "lake/events/a.json.gz", gzip.compress(b'{"id": "g"}\n'))
    put_s3(s3_bucket, "lake/events/b.json.bz2", bz2.compress(b'{"id": "b"}\n'))
    put_s3(
        s3_bucket, "lake/events/c.json.zst", zstandard.ZstdCompressor().compress(b'{"id": "z"}\n')
    )
    put_s3(s3_bucket, "lake/events/d.json", [{"id": "p"}])
    pipeline(redshift_standin, s3_bucket, event).run()
    assert sorted(str(c["compression"]) for c in redshift_standin.copies) == [
        "None",
        "bzip2",
        "gzip",
        "zstd",
    ]
    for copy in redshift_standin.copies:
        assert len(copy["manifest"]["entries"]) == 1
    assert [r[0] for r in rows(redshift_standin.engine)] == ["b", "g", "p", "z"]


def test_replace_loads_everything_into_staging_and_swaps(
    redshift_standin: Any, s3_bucket: str, event: Any
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a"}, {"id": "b"}])
    p = pipeline(redshift_standin, s3_bucket, event, mode="replace")
    p.run()
    boto3.client("s3").delete_object(Bucket=s3_bucket, Key="lake/events/a.json")
    put_s3(s3_bucket, "lake/events/c.json", [{"id": "c", "n": 9}])
    result = p.run()
    assert rows(redshift_standin.engine) == [("c", 9)]
    assert result.steps[0].objects_loaded == 1
    copy = redshift_standin.copies[-1]
    assert copy["table"].startswith("_arbalest_stage_")
    assert [e["url"] for e in copy["manifest"]["entries"]] == [
        f"s3://{s3_bucket}/lake/events/c.json"
    ]
    # nothing left: no COPY, and the table is emptied
    boto3.client("s3").delete_object(Bucket=s3_bucket, Key="lake/events/c.json")
    count = len(redshift_standin.copies)
    p.run()
    assert len(redshift_standin.copies) == count
    assert rows(redshift_standin.engine) == []


def test_merge_copies_objects_oldest_first_and_upserts(
    redshift_standin: Any, s3_bucket: str, event: Any
) -> None:
    put_s3(s3_bucket, "lake/events/2.json", [{"id": "k1", "n": 1}, {"id": "k2", "n": 1}])
    time.sleep(1.1)  # S3 keeps modification times to the second
    put_s3(s3_bucket, "lake/events/1.json", [{"id": "k1", "n": 2}])  # written later: newer
    p = pipeline(redshift_standin, s3_bucket, event, mode="merge")
    p.run()
    assert rows(redshift_standin.engine) == [("k1", 2), ("k2", 1)]
    assert [
        c["manifest"]["entries"][0]["url"].rsplit("/", 1)[1] for c in redshift_standin.copies
    ] == [
        "2.json",
        "1.json",
    ]
    put_s3(s3_bucket, "lake/events/3.json", [{"id": "k2", "n": 7}])
    p.run()
    assert rows(redshift_standin.engine) == [("k1", 2), ("k2", 7)]


def test_rejects_come_back_from_the_load_errors(
    redshift_standin: Any, s3_bucket: str, event: Any
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a"}, {"id": "b", "n": "x"}, {"n": 1}])
    result = pipeline(redshift_standin, s3_bucket, event, max_errors=2).run()
    assert [(r.key, r.line, r.column, r.code) for r in result.steps[0].rejects] == [
        ("events/a.json", 2, "n", 1207),
        ("events/a.json", 3, "id", 1213),
    ]
    assert redshift_standin.copies[0]["max_error"] == 3  # the budget plus one: we count ourselves
    with redshift_standin.engine.connect() as conn:
        entry = conn.execute(
            sa.select(journal.JOURNAL.c.rows_loaded, journal.JOURNAL.c.rows_rejected)
        ).one()
    assert tuple(entry) == (1, 2)


def test_too_many_rejects_fails_the_copy_and_the_step(
    redshift_standin: Any, s3_bucket: str, event: Any
) -> None:
    put_s3(
        s3_bucket, "lake/events/a.json", [{"id": "a"}, {"id": "b", "n": "x"}, {"id": "c", "n": "y"}]
    )
    with pytest.raises(TooManyRejectsError) as info:
        pipeline(redshift_standin, s3_bucket, event, max_errors=1).run()
    assert [(r.line, r.column) for r in info.value.rejects] == [(2, "n"), (3, "n")]
    with redshift_standin.engine.connect() as conn:
        assert not journal.table_exists(conn, event.__table__)


def test_validate_runs_copy_noload(redshift_standin: Any, s3_bucket: str, event: Any) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a"}, {"id": "b", "n": "x"}])
    result = pipeline(redshift_standin, s3_bucket, event, max_errors=1).validate()
    assert result.rows_rejected == 1
    (copy,) = redshift_standin.copies
    assert copy["no_load"] is True
    assert "NOLOAD" in copy["statement"]
    with redshift_standin.engine.connect() as conn:
        assert not journal.table_exists(conn, event.__table__)


def test_access_keys_never_reach_errors(redshift_standin: Any, s3_bucket: str, event: Any) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    keys_ = Credentials("AKIAIOSFODNN7EXAMPLE", secret, "SESSIONtoken1234")
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a"}, {"id": "b", "n": "x"}])
    # moto accepts any keys: the store and the COPY both use these
    p = Pipeline(redshift_standin.engine, store=f"s3://{s3_bucket}/lake", credentials=keys_)
    p = p.copy(event, "events")
    with pytest.raises(TooManyRejectsError) as info:
        p.run()
    (copy,) = redshift_standin.copies
    assert "WITH CREDENTIALS AS %(credentials)s" in copy["statement"]  # bound, not pasted
    text = str(info.value) + repr(info.value.__dict__) + repr(p) + repr(p.credentials)
    assert secret not in text
    assert "SESSIONtoken1234" not in text
    boto3.client("s3").delete_object(Bucket=s3_bucket, Key="lake/events/a.json")
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "b"}])
    assert p.run().rows_loaded == 1


def test_the_journal_lock_times_out(redshift_standin: Any, s3_bucket: str, event: Any) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a"}])
    p = pipeline(redshift_standin, s3_bucket, event, lock_timeout=0.3)
    p.run()
    with redshift_standin.engine.connect() as holder, holder.begin():
        holder.exec_driver_sql("LOCK _arbalest_journal")
        with pytest.raises(ConcurrentRunError) as info:
            p.run()
    assert info.value.step == "copy events (incremental)"


def test_the_lock_keeps_the_sessions_statement_timeout(
    redshift_standin: Any, s3_bucket: str, event: Any
) -> None:
    """The lock bounds its own wait with statement_timeout, then gives the session back
    the timeout it had (a user's or a cluster's), for the COPY and after the step."""
    from tests.fixtures.redshift import install_stand_in

    url = redshift_standin.engine.url
    options = url.query["options"] + " -cstatement_timeout=5min"
    engine = sa.create_engine(url.update_query_dict({"options": options}), hide_parameters=True)
    standin = install_stand_in(engine, redshift_standin.side, create=False)
    try:
        put_s3(s3_bucket, "lake/events/a.json", [{"id": "a"}])
        p = Pipeline(engine, store=f"s3://{s3_bucket}/lake", iam_role=ROLE, lock_timeout=0.3)
        assert p.copy(event, "events").run().rows_loaded == 1
        with engine.connect() as conn:  # the pool hands back the connection the run used
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "5min"
            conn.rollback()
            with conn.begin(), p.backend.lock(conn, "events", 0.3):
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "5min"
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "5min"
    finally:
        standin.remove()
        engine.dispose()


def test_redshift_needs_an_s3_store(redshift_standin: Any, tmp_path: Any, event: Any) -> None:
    with pytest.raises(ConfigurationError, match="S3"):
        Pipeline(redshift_standin.engine, store=tmp_path).copy(event, "events")


@pytest.mark.parametrize(
    ("sabotage", "message"),
    [
        ("manifest_url", "cannot read the manifest"),
        ("manifest_json", "is not JSON"),
        ("missing_object", "was not found"),
        ("not_mandatory", "is not mandatory"),
        ("content_length", "content_length"),
        ("jsonpaths_count", "2 paths for 3 columns"),
    ],
)
def test_the_stand_in_refuses_what_redshift_would(
    redshift_standin: Any,
    s3_bucket: str,
    event: Any,
    monkeypatch: pytest.MonkeyPatch,
    sabotage: str,
    message: str,
) -> None:
    """A wrong URL, a missing object or a malformed manifest must fail the test."""
    from arbalest.backends import _redshift_copy

    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a"}])
    real_manifest = _redshift_copy.manifest_document
    real_build = _redshift_copy.build_copy

    def manifest(entries: Any) -> Any:
        document = real_manifest(entries)
        if sabotage == "missing_object":
            document["entries"][0]["url"] += ".missing"
        if sabotage == "not_mandatory":
            document["entries"][0]["mandatory"] = False
        if sabotage == "content_length":
            document["entries"][0]["meta"]["content_length"] += 1
        return document

    def build(table: Any, columns: Any, **kw: Any) -> Any:
        if sabotage == "manifest_url":
            kw["manifest_url"] = kw["manifest_url"].replace("manifests", "nowhere")
        if sabotage == "jsonpaths_count":
            columns = [*columns, columns[0]]
        return real_build(table, columns, **kw)

    monkeypatch.setattr(_redshift_copy, "manifest_document", manifest)
    monkeypatch.setattr(_redshift_copy, "build_copy", build)
    if sabotage == "manifest_json":
        original_put = None

        def bad_put(self: Any, key: str, data: bytes) -> None:
            if "/manifests/" in key:
                data = b"{not json"
            original_put(self, key, data)  # type: ignore[misc]

        from arbalest.stores.s3 import S3Store

        original_put = S3Store.put
        monkeypatch.setattr(S3Store, "put", bad_put)
    with pytest.raises(PipelineError) as info:
        pipeline(redshift_standin, s3_bucket, event).run()
    assert message in str(info.value)
    assert rows_or_none(redshift_standin.engine) is None


def rows_or_none(engine: sa.Engine) -> Any:
    with engine.connect() as conn:
        if not journal.table_exists(conn, sa.Table("events", sa.MetaData())):
            return None
        return conn.execute(sa.text("SELECT count(*) FROM events")).scalar()


REAL = {
    name: os.environ.get(name)
    for name in ("ARBALEST_TEST_REDSHIFT_URL", "ARBALEST_TEST_S3_BUCKET", "ARBALEST_TEST_IAM_ROLE")
}


@pytest.mark.aws
@pytest.mark.skipif(
    not all(REAL.values()),
    reason="set ARBALEST_TEST_REDSHIFT_URL, ARBALEST_TEST_S3_BUCKET and ARBALEST_TEST_IAM_ROLE "
    "to run against a real cluster",
)
def test_a_real_cluster(base: type[Schema]) -> None:  # pragma: no cover - opt-in
    RealEvent = random_event(base)

    prefix = f"arbalest-test/{uuid.uuid4().hex}"
    client = boto3.client("s3")
    bucket = str(REAL["ARBALEST_TEST_S3_BUCKET"])
    client.put_object(
        Bucket=bucket,
        Key=f"{prefix}/events/a.json",
        Body=b'{"id": "a", "n": 1}\n{"id": "b", "n": "x"}\n',
    )
    engine = sa.create_engine(str(REAL["ARBALEST_TEST_REDSHIFT_URL"]), hide_parameters=True)
    try:
        p = Pipeline(
            engine, store=f"s3://{bucket}/{prefix}", iam_role=REAL["ARBALEST_TEST_IAM_ROLE"]
        ).copy(RealEvent, "events", max_errors=1)
        result = p.run()
        assert result.rows_loaded == 1
        assert [(r.line, r.column, r.code) for r in result.steps[0].rejects] == [(2, "n", 1207)]
        assert p.run().rows_loaded == 0
    finally:
        drop_loaded(engine, RealEvent)
        for item in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
