"""Redshift gives what the local loaders give: DATE values, rows and rejects per object
(however long its URL, however its records are laid out), and the newest record in a merge.

The stand-in (tests/fixtures/redshift.py) does what Redshift's COPY does where it differs
from the local rules: a DATE column reads DATEFORMAT (default 'YYYY-MM-DD'), the system
tables keep 256 bytes of a URL, and lines_scanned counts lines.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from collections.abc import Callable
from typing import Any, Final

import boto3
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbalest import (
    Date,
    Pipeline,
    PipelineError,
    Schema,
    String,
    journal,
)
from arbalest.convert import ConvertOptions, DateRule, Rejected

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

ROLE: Final = "arn:aws:iam::123456789012:role/ArbalestLoader"
CI: Final = bool(os.environ.get("CI"))


def put(bucket: str, key: str, body: str) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())


def journal_rows(engine: sa.Engine) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        result = conn.execute(
            sa.select(
                journal.JOURNAL.c.key,
                journal.JOURNAL.c.rows_loaded,
                journal.JOURNAL.c.rows_rejected,
            )
        )
        return {key: (loaded, rejected) for key, loaded, rejected in result}


@pytest.fixture
def event(make_event: Callable[..., Any]) -> Any:
    return make_event(id=String(400, primary_key=True))


@pytest.fixture
def dated(base: type[Schema]) -> Any:
    class Dated(base):  # type: ignore[misc, valid-type]
        __tablename__ = "dated"
        id = String(8, primary_key=True)
        day = Date()

    return Dated


def pipeline(standin: Any, bucket: str, schema: Any, source: str, **kw: Any) -> Pipeline:
    engine = standin if isinstance(standin, sa.Engine) else standin.engine
    return Pipeline(engine, store=f"s3://{bucket}/lake", iam_role=ROLE).copy(schema, source, **kw)


@pytest.fixture
def standin_engine(redshift_standin: Any) -> sa.Engine:
    """The stand-in's engine alone (Hypothesis prints a test's arguments when it fails, and
    the stand-in holds the log of every COPY)."""
    engine: sa.Engine = redshift_standin.engine
    return engine


# -- objects with long URLs, and rows counted as records -----------------------------------


def test_rejects_and_rows_map_to_objects_whose_urls_share_their_first_256_bytes(
    redshift_standin: Any, s3_bucket: str, event: Any
) -> None:
    folder = "events/" + "long-folder-name/" * 20
    a, b = f"{folder}a.json", f"{folder}b.json"
    assert len(f"s3://{s3_bucket}/lake/{a}") > 300
    assert f"s3://{s3_bucket}/lake/{a}"[:256] == f"s3://{s3_bucket}/lake/{b}"[:256]
    put(s3_bucket, f"lake/{a}", '{"id": "a1", "n": 1}\n{"id": "a2", "n": "x"}\n')
    # b: pretty-printed, 3 records over 13 lines, the second rejected
    records = [{"id": "b1", "n": 1}, {"id": "b2", "n": "y"}, {"id": "b3", "n": 3}]
    put(s3_bucket, f"lake/{b}", "".join(json.dumps(r, indent=2) + "\n" for r in records))
    result = pipeline(redshift_standin, s3_bucket, event, "events", max_errors=2).run()
    assert [(r.key, r.line, r.column, r.code) for r in result.steps[0].rejects] == [
        (a, 2, "n", 1207),
        (b, 8, "n", 1207),
    ]
    assert (result.rows_loaded, result.rows_rejected) == (3, 2)
    assert journal_rows(redshift_standin.engine) == {a: (1, 1), b: (2, 1)}


@pytest.mark.parametrize("mode", ["incremental", "replace", "merge"])
def test_rows_are_records_not_lines(
    redshift_standin: Any, s3_bucket: str, event: Any, mode: str
) -> None:
    put(s3_bucket, "lake/events/pretty.json", json.dumps({"id": "p", "n": 1}, indent=4) + "\n")
    put(s3_bucket, "lake/events/packed.json", '{"id": "q1"} {"id": "q2"}{"id": "q3"}\n\n')
    put(s3_bucket, "lake/events/blank.json", "\n\n\n")
    result = pipeline(redshift_standin, s3_bucket, event, "events", mode=mode).run()
    assert result.rows_loaded == 4
    assert journal_rows(redshift_standin.engine) == {
        "events/pretty.json": (1, 0),
        "events/packed.json": (3, 0),
        "events/blank.json": (0, 0),
    }


# -- merge: the newest record, and no guess ------------------------------------------------


def test_merge_refuses_different_records_for_one_key_in_one_object(
    redshift_standin: Any, s3_bucket: str, event: Any
) -> None:
    """COPY keeps no order among an object's records: which is the newest cannot be told."""
    p = pipeline(redshift_standin, s3_bucket, event, "events", mode="merge")
    put(s3_bucket, "lake/events/1.json", '{"id": "k1", "n": 0}\n')
    p.run()
    put(
        s3_bucket,
        "lake/events/2.json",
        '{"id": "k1", "n": 1}\n{"id": "k2"}\n{"id": "k1", "n": 2}\n',
    )
    with pytest.raises(PipelineError) as info:
        p.run()
    message = str(info.value)
    assert "events/2.json holds 2 different records for (id) = ('k1')" in message
    assert "does not keep the order" in message
    with redshift_standin.engine.connect() as conn:  # the step changed nothing
        assert conn.execute(sa.text("SELECT id, n FROM events")).all() == [("k1", 0)]
    assert set(journal_rows(redshift_standin.engine)) == {"events/1.json"}


def test_merge_takes_identical_repeats(redshift_standin: Any, s3_bucket: str, event: Any) -> None:
    put(
        s3_bucket,
        "lake/events/1.json",
        '{"id": "k1", "n": 1}\n{"id": "k1", "n": 1}\n{"id": "k2"}\n',
    )
    pipeline(redshift_standin, s3_bucket, event, "events", mode="merge").run()
    with redshift_standin.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id, n FROM events ORDER BY id")).all() == [
            ("k1", 1),
            ("k2", None),
        ]


def test_merge_rejects_a_missing_primary_key_like_the_other_modes(
    redshift_standin: Any, s3_bucket: str, event: Any
) -> None:
    """The load table keeps NOT NULL, so COPY rejects the record (1213) instead of the
    upsert failing the step."""
    put(s3_bucket, "lake/events/1.json", '{"id": "k1", "n": 1}\n{"n": 2}\n')
    result = pipeline(
        redshift_standin, s3_bucket, event, "events", mode="merge", max_errors=1
    ).run()
    assert [(r.line, r.column, r.code) for r in result.steps[0].rejects] == [(2, "id", 1213)]
    assert result.rows_loaded == 1


# -- DATE: what the local rule accepts, the same date --------------------------------------


def test_dates_with_a_time_or_an_offset_are_their_date_in_utc_in_every_mode(
    redshift_standin: Any, s3_bucket: str, dated: Any
) -> None:
    values = {
        "a": ("2019-02-11T23:30:00-05:00", dt.date(2019, 2, 12)),
        "b": ("2019-02-11 05:09:12.195Z", dt.date(2019, 2, 11)),
        "c": ("2020-2-3", dt.date(2020, 2, 3)),
        "d": ("19960108 040809", dt.date(1996, 1, 8)),
        "e": ("12/31/2019 23:59:58", dt.date(2019, 12, 31)),
        "f": ("2019-02-11T00:30:00+01:00", dt.date(2019, 2, 10)),
    }
    body = "".join(json.dumps({"id": k, "day": v}) + "\n" for k, (v, _) in values.items())
    for mode in ("incremental", "replace", "merge"):
        put(s3_bucket, f"lake/{mode}/a.json", body + '{"id": "bad", "day": "2019-02-29"}\n')
        with redshift_standin.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS dated")
        result = pipeline(redshift_standin, s3_bucket, dated, mode, mode=mode, max_errors=1).run()
        assert [(r.line, r.column, r.code, r.reason) for r in result.steps[0].rejects] == [
            (7, "day", 1205, "Invalid date format (type DATE)")
        ]
        with redshift_standin.engine.connect() as conn:
            got = dict(conn.execute(sa.text("SELECT id, day FROM dated")).all())
        assert got == {k: day for k, (_, day) in values.items()}, mode


_ids = itertools.count()

_OFFSETS = st.builds(
    lambda sign, h, m, form: (
        sign + (f"{h:02d}" if form == 0 else f"{h:02d}{m:02d}" if form == 1 else f"{h:02d}:{m:02d}")
    ),
    st.sampled_from("+-"),
    st.integers(0, 14),
    st.integers(0, 59),
    st.integers(0, 2),
)


@st.composite
def auto_dates(draw: st.DrawFn) -> str:
    """A value in (or just beside) a form that time_format 'auto' reads."""
    moment = draw(st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)))
    form = draw(st.sampled_from(["iso", "iso-time", "compact", "us", "bad-day"]))
    y, mo, d = moment.year, moment.month, moment.day
    if form == "iso":
        return f"{y:04d}-{mo}-{d:02d}" if draw(st.booleans()) else f"{y:04d}-{mo:02d}-{d}"
    if form == "bad-day":
        return f"{y:04d}-{mo:02d}-{draw(st.integers(29, 32))}"
    if form == "compact":
        time = f" {moment:%H%M%S}" if draw(st.booleans()) else ""
        return f"{y:04d}{mo:02d}{d:02d}{time}"
    if form == "us":
        time = draw(st.sampled_from(["", f" {moment.hour}:{moment:%M}", f" {moment:%H:%M:%S}"]))
        return f"{mo}/{d}/{y:04d}{time}"
    separator = draw(st.sampled_from("T "))
    time = draw(
        st.sampled_from([f"{moment:%H:%M}", f"{moment:%H:%M:%S}", f"{moment:%H:%M:%S}.{moment:%f}"])
    )
    zone = draw(st.one_of(st.just(""), st.just("Z"), _OFFSETS))
    return f"{y:04d}-{mo:02d}-{d:02d}{separator}{time}{zone}"


epoch_numbers = st.one_of(
    st.integers(-(10**10), 10**11).map(str),
    st.decimals(-(10**9), 10**10, places=3, allow_nan=False).map(str),
)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=CI,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    case=st.one_of(
        st.tuples(st.just("auto"), st.lists(auto_dates(), min_size=1, max_size=25)),
        st.tuples(
            st.sampled_from(["epochsecs", "epochmillisecs"]),
            st.lists(epoch_numbers, min_size=1, max_size=25),
        ),
        st.tuples(
            st.just("YYYY-MM-DD HH:MI:SS"),
            st.lists(
                st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)).map(
                    lambda m: f"{m.year:04d}-{m:%m-%d %H:%M:%S}"
                ),
                min_size=1,
                max_size=10,
            ),
        ),
    )
)
def test_redshift_reads_every_date_the_local_rule_reads_and_gives_the_same_date(
    standin_engine: sa.Engine, s3_bucket: str, dated: Any, case: tuple[str, list[str]]
) -> None:
    time_format, values = case
    options = ConvertOptions(time_format=time_format)
    expected: dict[str, dt.date] = {}
    rejected: list[int] = []
    for line, value in enumerate(values, start=1):
        try:
            expected[f"v{line}"] = DateRule().python(value, options)
        except Rejected:
            rejected.append(line)
    source = f"p{next(_ids)}"
    body = "".join(json.dumps({"id": f"v{i}", "day": v}) + "\n" for i, v in enumerate(values, 1))
    put(s3_bucket, f"lake/{source}/a.json", body)
    result = pipeline(
        standin_engine,
        s3_bucket,
        dated,
        source,
        mode="replace",
        time_format=time_format,
        max_errors=len(values),
    ).run()
    assert [(r.line, r.column, r.code) for r in result.steps[0].rejects] == [
        (line, "day", 1205) for line in rejected
    ]
    with standin_engine.connect() as conn:
        assert dict(conn.execute(sa.text("SELECT id, day FROM dated")).all()) == expected
