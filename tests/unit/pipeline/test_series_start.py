"""Where a time series' DELETE starts: the same instant whatever the zones around it."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from arbalest import ConfigurationError
from arbalest.pipeline.steps import series_start
from tests.fixtures.budgets import budget

TABLE = sa.Table(
    "events",
    sa.MetaData(),
    sa.Column("tz", sa.DateTime(timezone=True)),
    sa.Column("naive", sa.DateTime(timezone=False)),
    sa.Column("day", sa.Date()),
    sa.Column("n", sa.Integer()),
)
UTC_4TH = dt.datetime(2014, 11, 4, tzinfo=dt.UTC)
KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")
LOS_ANGELES = zoneinfo.ZoneInfo("America/Los_Angeles")


@pytest.mark.parametrize(
    ("value", "tz", "naive", "day"),
    [
        # a partition's day, or a naive time: UTC
        (dt.date(2014, 11, 4), UTC_4TH, dt.datetime(2014, 11, 4), dt.date(2014, 11, 4)),
        (
            dt.datetime(2014, 11, 4, 1),
            UTC_4TH + dt.timedelta(hours=1),
            dt.datetime(2014, 11, 4, 1),
            dt.datetime(2014, 11, 4, 1),
        ),
        ("2014-11-04", UTC_4TH, dt.datetime(2014, 11, 4), dt.datetime(2014, 11, 4)),
        # an aware time: its instant
        (
            dt.datetime(2014, 11, 4, 5, 30, tzinfo=KOLKATA),
            UTC_4TH,
            dt.datetime(2014, 11, 4),
            dt.datetime(2014, 11, 4),
        ),
        (
            dt.datetime(2014, 11, 3, 16, tzinfo=LOS_ANGELES),
            UTC_4TH,
            dt.datetime(2014, 11, 4),
            dt.datetime(2014, 11, 4),
        ),
        ("2014-11-03T16:00:00-08:00", UTC_4TH, dt.datetime(2014, 11, 4), dt.datetime(2014, 11, 4)),
        ("2014-11-04T00:00:00Z", UTC_4TH, dt.datetime(2014, 11, 4), dt.datetime(2014, 11, 4)),
    ],
)
def test_partition_names_and_naive_times_are_utc(
    value: object, tz: Any, naive: Any, day: Any
) -> None:
    assert series_start(TABLE.c.tz, value, "since") == tz
    assert series_start(TABLE.c.naive, value, "since") == naive
    assert series_start(TABLE.c.day, value, "since") == day
    for column, bound in ((TABLE.c.tz, tz), (TABLE.c.naive, naive)):
        found = series_start(column, value, "since")
        assert isinstance(found, dt.datetime)
        assert (found.tzinfo is dt.UTC) == (bound.tzinfo is not None)


@budget(200)
@given(
    moment=st.datetimes(
        min_value=dt.datetime(1900, 1, 2),
        max_value=dt.datetime(2100, 12, 30),
        timezones=st.timezones(),
    )
)
def test_an_aware_time_means_its_instant_in_any_zone(moment: dt.datetime) -> None:
    instant = series_start(TABLE.c.tz, moment, "since")
    assert instant == moment.astimezone(dt.UTC)  # PEP 495: a fold compares unequal across zones
    assert isinstance(instant, dt.datetime)
    assert instant.utcoffset() == dt.timedelta(0)
    wall = series_start(TABLE.c.naive, moment, "since")
    assert wall == moment.astimezone(dt.UTC).replace(tzinfo=None)
    assert series_start(TABLE.c.naive, moment.isoformat(), "since") == wall


def test_other_columns_take_the_value_as_it_is() -> None:
    assert series_start(TABLE.c.n, 7, "since") == 7
    assert series_start(TABLE.c.n, "7", "since") == "7"


@pytest.mark.parametrize("value", [7, "yesterday", 1.5, ["2014-11-04"]])
@pytest.mark.parametrize("column", ["tz", "naive", "day"])
def test_a_value_that_names_no_time_is_a_configuration_error(value: object, column: str) -> None:
    with pytest.raises(
        ConfigurationError, match=re.escape(f"since={value!r} is not a date or a time")
    ):
        series_start(TABLE.c[column], value, f"since={value!r}")
