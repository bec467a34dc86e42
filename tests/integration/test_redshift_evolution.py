"""evolve=True on Redshift, end to end on the stand-in (which refuses ALTER COLUMN ... TYPE
inside a transaction block, as Redshift does): new columns are added in the step's
transaction, VARCHARs widened before it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from arbalest import Integer, Pipeline, String, TableMismatchError, TooManyRejectsError
from tests.fixtures.lakes import put_s3
from tests.fixtures.redshift import ROLE
from tests.fixtures.schemas import fresh_base

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def version_1() -> Any:
    class Event(fresh_base()):  # type: ignore[misc]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        note = String(20)

    return Event


def version_2() -> Any:
    class Event(fresh_base()):  # type: ignore[misc]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        note = String(64)
        n = Integer(encode="az64")

    return Event


def pipeline(standin: Any, bucket: str, schema: Any, **kw: Any) -> Pipeline:
    return Pipeline(standin.engine, store=f"s3://{bucket}/lake", iam_role=ROLE).copy(
        schema, "events", **kw
    )


def table_columns(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT column_name, data_type, character_maximum_length "
                "FROM information_schema.columns WHERE table_name = 'events' "
                "AND table_schema = current_schema() ORDER BY ordinal_position"
            )
        )
        return {str(name): (str(kind), length) for name, kind, length in found}


def test_evolve_widens_before_the_transaction_and_adds_in_it(
    redshift_standin: Any, s3_bucket: str
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a", "note": "short"}])
    pipeline(redshift_standin, s3_bucket, version_1()).run()
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "b", "note": "x" * 50, "n": 3}])
    plan = pipeline(redshift_standin, s3_bucket, version_2(), evolve=True).plan().steps[0]
    assert plan.alter_before == ["ALTER TABLE events ALTER COLUMN note TYPE VARCHAR(64)"]
    assert plan.alter == ["ALTER TABLE events ADD COLUMN n INTEGER ENCODE az64"]
    assert "alter (before the step's transaction)" in str(
        pipeline(redshift_standin, s3_bucket, version_2(), evolve=True).plan()
    )
    pipeline(redshift_standin, s3_bucket, version_2(), evolve=True).run()
    assert table_columns(redshift_standin.engine) == {
        "id": ("character varying", 36),
        "note": ("character varying", 64),
        "n": ("integer", None),
    }
    with redshift_standin.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id, n FROM events ORDER BY id")).all() == [
            ("a", None),
            ("b", 3),
        ]


def test_a_failed_step_keeps_the_widening_and_loses_the_new_column(
    redshift_standin: Any, s3_bucket: str
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a", "note": "short"}])
    pipeline(redshift_standin, s3_bucket, version_1()).run()
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "b", "note": "x" * 50, "n": "three"}])
    with pytest.raises(TooManyRejectsError):
        pipeline(redshift_standin, s3_bucket, version_2(), evolve=True).run()
    # documented: the widening committed before the step; the ADD COLUMN rolled back with it
    assert table_columns(redshift_standin.engine) == {
        "id": ("character varying", 36),
        "note": ("character varying", 64),
    }


def test_a_refused_step_widens_nothing(redshift_standin: Any, s3_bucket: str) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a", "note": "short", "n": 1}])

    class Wide(fresh_base()):  # type: ignore[misc]
        __tablename__ = "events"
        id = String(36, primary_key=True)
        note = String(20)
        n = String(10)

    pipeline(redshift_standin, s3_bucket, Wide).run()
    before = table_columns(redshift_standin.engine)
    with pytest.raises(TableMismatchError) as info:
        pipeline(redshift_standin, s3_bucket, version_2(), evolve=True).run()
    assert info.value.columns == ["note", "n"]
    assert "column n is VARCHAR(10) in the table, INTEGER in the class" in str(info.value)
    assert table_columns(redshift_standin.engine) == before


def test_validate_does_not_widen_and_says_so(redshift_standin: Any, s3_bucket: str) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a", "note": "short"}])
    pipeline(redshift_standin, s3_bucket, version_1()).run()
    before = table_columns(redshift_standin.engine)
    put_s3(s3_bucket, "lake/events/b.json", [{"id": "b", "note": "fits", "n": 3}])
    result = pipeline(redshift_standin, s3_bucket, version_2(), evolve=True).validate()
    assert any("validate() left it as it is" in w for w in result.steps[0].warnings)
    assert table_columns(redshift_standin.engine) == before


def test_the_stand_in_refuses_alter_column_type_in_a_transaction(
    redshift_standin: Any, s3_bucket: str
) -> None:
    put_s3(s3_bucket, "lake/events/a.json", [{"id": "a", "note": "short"}])
    pipeline(redshift_standin, s3_bucket, version_1()).run()
    with (
        pytest.raises(sa.exc.DBAPIError, match="cannot run inside a transaction block"),
        redshift_standin.engine.begin() as conn,
    ):
        conn.exec_driver_sql("ALTER TABLE events ALTER COLUMN note TYPE VARCHAR(64)")
