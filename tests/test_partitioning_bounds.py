"""Calendar-aligned bounds: any run hour, any interval, any zone gives the same ranges."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.db import connection
from django.test import override_settings

from django_scalekit.partitioning import maintain, plan
from tests.test_partitioning_helpers import (
    assert_contiguous,
    at,
    count,
    drop_family,
    drop_partitions,
    make_parent,
    ranges,
)
from tests.testapp.models import Metric

pytestmark = pytest.mark.django_db(transaction=True)
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
INTERVALS = ["hour", "day", "week", "month", "quarter", "year"]


@pytest.fixture
def parent(request):
    name = make_parent(f"pt_{request.node.name[:30].lower().replace('[', '_').strip(']')}")
    name = name.replace("-", "_")
    yield name
    drop_family(name)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
@pytest.mark.parametrize("interval", INTERVALS)
def test_runs_at_10_then_8_then_12_leave_no_overlap_and_no_gap(interval, zone):
    table = make_parent(f"pt_runs_{interval}_{zone[:3].lower()}")
    try:
        options = {"interval": interval, "premake": 3, "timezone": zone}
        step = dt.timedelta(hours=1) if interval == "hour" else dt.timedelta(days=1)
        first = at(2026, 3, 27, 10)
        created = []
        for when in (
            first,
            first + step - dt.timedelta(hours=2),
            first + 2 * step + dt.timedelta(hours=2),
        ):
            result = maintain(table=table, options=options, now=when)
            created += [s.name for s in result.applied]
        parts = ranges(table)
        assert_contiguous(parts)
        assert len(created) == len(set(created)) == len(parts)
        # Every bound is a calendar boundary of the zone, whatever hour the run was at.
        tz = zoneinfo.ZoneInfo(zone)
        for p in parts:
            local = p.lower.astimezone(tz)
            assert (local.minute, local.second) == (0, 0)
            if interval != "hour":
                assert local.hour == 0
            if interval in ("month", "quarter", "year"):
                assert local.day == 1
            if interval == "quarter":
                assert local.month in (1, 4, 7, 10)
            if interval == "year":
                assert local.month == 1
            if interval == "week":
                assert local.weekday() == 0
        # A second run at the same moment changes nothing.
        assert maintain(table=table, options=options, now=first + 2 * step).applied == []
    finally:
        drop_family(table)


def test_quarter_partitions_are_calendar_quarters_on_consecutive_runs(parent):
    options = {"interval": "quarter", "premake": 2}
    maintain(table=parent, options=options, now=at(2026, 2, 17, 10))
    maintain(table=parent, options=options, now=at(2026, 5, 3, 8))
    bounds = [(p.lower, p.upper) for p in ranges(parent)]
    assert bounds == [
        (at(2026, 1, 1), at(2026, 4, 1)),
        (at(2026, 4, 1), at(2026, 7, 1)),
        (at(2026, 7, 1), at(2026, 10, 1)),
        (at(2026, 10, 1), at(2027, 1, 1)),
    ]
    assert sorted(p.name for p in ranges(parent))[0].endswith("_p2026q1")


def test_hourly_across_midnight(parent):
    options = {"interval": "hour", "premake": 2}
    maintain(table=parent, options=options, now=at(2026, 12, 31, 23, 30))
    maintain(table=parent, options=options, now=at(2027, 1, 1, 0, 10))
    parts = ranges(parent)
    assert_contiguous(parts)
    assert [p.lower for p in parts] == [
        at(2026, 12, 31, 23),
        at(2027, 1, 1, 0),
        at(2027, 1, 1, 1),
        at(2027, 1, 1, 2),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {parent} (created) VALUES (%s), (%s)",
            [at(2026, 12, 31, 23, 59, 59), at(2027, 1, 1, 0, 0)],
        )
        cursor.execute(f"SELECT tableoid::regclass::text FROM {parent} ORDER BY created")
        homes = [r[0] for r in cursor.fetchall()]
    assert homes == [f"{parent}_p2026123123", f"{parent}_p2027010100"]


def test_daily_in_berlin_across_both_dst_changes(parent):
    options = {"interval": "day", "premake": 2, "timezone": "Europe/Berlin"}
    for day in (28, 29, 30):  # 2026-03-29: clocks jump 02:00 -> 03:00
        maintain(table=parent, options=options, now=at(2026, 3, day, 10))
    for day in (24, 25, 26):  # 2026-10-25: clocks fall back 03:00 -> 02:00
        maintain(table=parent, options=options, now=at(2026, 10, day, 10))
    parts = ranges(parent)
    for p in parts:
        assert p.lower.astimezone(BERLIN).time() == dt.time(0)
        assert p.upper.astimezone(BERLIN).time() == dt.time(0)
    lengths = {p.lower.astimezone(BERLIN).date(): p.upper - p.lower for p in parts}
    assert lengths[dt.date(2026, 3, 29)] == dt.timedelta(hours=23)
    assert lengths[dt.date(2026, 10, 25)] == dt.timedelta(hours=25)
    assert_contiguous([p for p in parts if p.lower.month == 3])
    assert_contiguous([p for p in parts if p.lower.month == 10])


def test_hourly_in_berlin_across_fall_back_has_25_slots(parent):
    options = {"interval": "hour", "premake": 30, "timezone": "Europe/Berlin"}
    maintain(table=parent, options=options, now=dt.datetime(2026, 10, 24, 23, 0, tzinfo=BERLIN))
    parts = ranges(parent)
    assert_contiguous(parts)
    day = [p for p in parts if p.lower.astimezone(BERLIN).date() == dt.date(2026, 10, 25)]
    assert len(day) == 25
    assert len({p.name for p in parts}) == len(parts)


def test_naive_timestamps_use_wall_clock_of_the_zone():
    table = make_parent("pt_naive", key_type="timestamp")
    try:
        options = {"interval": "day", "premake": 1, "timezone": "Europe/Berlin"}
        with override_settings(USE_TZ=False):
            maintain(table=table, options=options, now=at(2026, 5, 10, 23, 30))  # 01:30 in Berlin
        parts = ranges(table)
        assert [(p.lower, p.upper) for p in parts] == [
            (dt.datetime(2026, 5, 11), dt.datetime(2026, 5, 12)),
            (dt.datetime(2026, 5, 12), dt.datetime(2026, 5, 13)),
        ]
    finally:
        drop_family(table)


def test_naive_now_is_read_in_settings_time_zone():
    table = make_parent("pt_naive_now", key_type="timestamp")
    try:
        options = {"interval": "day", "premake": 0, "timezone": "Europe/Berlin"}
        with override_settings(USE_TZ=False, TIME_ZONE="America/New_York"):
            # 20:00 in New York is 02:00 the next day in Berlin.
            maintain(table=table, options=options, now=dt.datetime(2026, 5, 10, 20))
        assert [p.lower for p in ranges(table)] == [dt.datetime(2026, 5, 11)]
    finally:
        drop_family(table)


def test_date_key_uses_dates():
    table = make_parent("pt_datekey", key_type="date")
    try:
        maintain(table=table, options={"interval": "month", "premake": 1}, now=at(2026, 5, 10))
        assert [(p.lower, p.upper) for p in ranges(table)] == [
            (dt.date(2026, 5, 1), dt.date(2026, 6, 1)),
            (dt.date(2026, 6, 1), dt.date(2026, 7, 1)),
        ]
    finally:
        drop_family(table)


@pytest.fixture
def metric_partitions():
    yield
    drop_partitions(Metric._meta.db_table)


@override_settings(SCALEKIT_PARTITIONING={"MODELS": {"testapp.Metric": {"interval": "month"}}})
def test_model_from_the_migration_gets_partitions_and_rows_land_in_them(metric_partitions):
    result = maintain(Metric, now=at(2026, 5, 10, 10))
    assert [s.name for s in result.applied] == [f"testapp_metric_p20260{m}" for m in (5, 6, 7, 8)]
    Metric.objects.create(name="cpu", value=1.5, created=at(2026, 5, 20))
    Metric.objects.create(name="cpu", value=2.5, created=at(2026, 7, 2))
    assert Metric.objects.filter(created__gte=at(2026, 6, 1)).count() == 1
    assert count("SELECT count(*) FROM testapp_metric_p202605") == 1
    assert plan("testapp.Metric", now=at(2026, 5, 11)).steps == ()
