"""Randomised schedules: whatever the run times, ranges never overlap, gaps are filled and
no row stays in the DEFAULT partition.

The planner is a pure function of what the catalog reports, so 1,000 schedules per
interval are replayed against an in-memory catalog; a smaller set runs on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import zoneinfo

import pytest
from django.db import connection

from django_scalekit.partitioning import maintain
from django_scalekit.partitioning.bounds import floor
from django_scalekit.partitioning.catalog import Partition
from django_scalekit.partitioning.conf import model_options
from django_scalekit.partitioning.plan import compute
from tests.test_partitioning_helpers import (
    assert_contiguous,
    at,
    count,
    drop_family,
    make_parent,
    ranges,
)

UTC = dt.UTC
SPAN = dt.timedelta(days=3 * 365)
CASES = {
    # interval: (retention, premake, longest pause between runs); ~10 runs per schedule
    "hour": ("3 days", 6, SPAN / 5),
    "day": ("90 days", 3, SPAN / 5),
    "week": (None, 2, SPAN / 5),
    "month": ("12 months", 2, SPAN / 5),
    "quarter": (None, 1, SPAN / 5),
    "year": (None, 1, SPAN / 5),
}


class Catalog:
    """Partitions, names and DEFAULT rows, as PostgreSQL would hold them."""

    def __init__(self) -> None:
        self.parts: list[Partition] = []
        self.default: list[dt.datetime] = []
        self.names: set[str] = set()

    def insert(self, value: dt.datetime) -> None:
        if not any(p.lower <= value < p.upper for p in self.parts):
            self.default.append(value)

    def hours(self) -> list[tuple[dt.datetime, int]]:
        buckets: dict[dt.datetime, int] = {}
        for v in self.default:
            h = v.replace(minute=0, second=0, microsecond=0)
            buckets[h] = buckets.get(h, 0) + 1
        return sorted(buckets.items())

    def apply(self, steps) -> None:
        for s in steps:
            if s.action == "create":
                assert s.name not in self.names  # (overlaps are caught by the caller)
                self.parts.append(Partition(s.name, s.lower, s.upper))
                self.names.add(s.name)
                if self.default:
                    self.default = [v for v in self.default if not s.lower <= v < s.upper]
            elif s.action in ("detach", "drop"):
                self.parts = [p for p in self.parts if p.name != s.name]


def replay(interval: str, rng: random.Random, zone: str) -> None:
    retention, premake, pause = CASES[interval]
    options = model_options(
        {
            "interval": interval,
            "premake": premake,
            "retention": retention,
            "timezone": zone,
            "default_partition": True,
            "on_expire": "drop",
        }
    )
    tz = zoneinfo.ZoneInfo(zone)
    db = Catalog()
    now = at(2024, 1, 1) + dt.timedelta(seconds=rng.randrange(int(SPAN.total_seconds()) // 3))
    end = now + SPAN
    while now < end:
        db.insert(now)  # a row arriving just before the run, maybe into DEFAULT
        current = compute(
            table="t",
            key="created",
            key_type="timestamp with time zone",
            partitions=db.parts,
            options=options,
            now=now,
            default_hours=db.hours(),
            allow_drop=True,
            is_taken=lambda names: {n for n in names if n in db.names},
        )
        db.apply(current.steps)
        assert db.default == []
        ordered = sorted(db.parts, key=lambda p: p.lower)
        for a, b in itertools.pairwise(ordered):
            assert a.upper == b.lower, (interval, zone, now, a, b)
        assert ordered[0].lower <= floor(now, interval, tz) < ordered[-1].upper
        seconds = rng.randrange(1, int(pause.total_seconds()))
        now += dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("interval", list(CASES))
def test_a_thousand_random_schedules_over_three_years(interval):
    rng = random.Random(interval)
    for n in range(1000):
        replay(interval, rng, "Europe/Berlin" if n % 2 else "UTC")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("interval", ["hour", "day", "month"])
def test_random_schedules_on_postgresql(interval):
    rng = random.Random(f"pg-{interval}")
    retention, premake, pause = CASES[interval]
    options = {
        "interval": interval,
        "premake": premake,
        "retention": retention,
        "default_partition": True,
        "on_expire": "drop",
        "timezone": "Europe/Berlin",
    }
    for n in range(3):
        table = make_parent(f"pt_rand_{interval}_{n}")
        try:
            now = at(2025, 1, 1) + dt.timedelta(hours=rng.randrange(5000))
            maintain(table=table, options=options, now=now)
            for _ in range(6):
                step = dt.timedelta(hours=30) if interval == "hour" else pause / 40
                now += dt.timedelta(seconds=rng.randrange(1, int(step.total_seconds())))
                with connection.cursor() as cursor:
                    cursor.execute(f"INSERT INTO {table} (created) VALUES (%s)", [now])
                result = maintain(table=table, options=options, now=now, allow_drop=True)
                assert count(f"SELECT count(*) FROM {table}_default") == 0
                parts = [p for p in result.plan.partitions if not p.default]
                assert len({p.name for p in parts}) == len(parts)
            assert_contiguous(ranges(table))
        finally:
            drop_family(table)
