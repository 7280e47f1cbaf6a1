"""Randomised schedules: whatever the run times, ranges never overlap, gaps are filled and
no row stays in the DEFAULT partition.

Each interval has 1,000 random schedules of about ten runs over three years, with a row
arriving before each run. The planner is a pure function of what the catalog reports, so
all 1,000 are replayed against ``Model``, an in-memory catalog. The first schedules of the
same sequence (137 in all, about 1,400 runs; the rest would take hours) are also replayed
on PostgreSQL by ``maintain``, on one table reset between schedules. After every run, the
steps applied must be the model's plan, and the real catalog (read by the maintenance
code's own reader), the relation names in use and the rows in each partition must equal
the model's: the model is checked to be what PostgreSQL does, run by run.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import zoneinfo
from collections.abc import Iterable, Iterator

import pytest
from django.db import connection

from django_scalekit.partitioning import maintain
from django_scalekit.partitioning.bounds import floor
from django_scalekit.partitioning.catalog import Parent, Partition, read_parent, read_partitions
from django_scalekit.partitioning.conf import model_options
from django_scalekit.partitioning.plan import Step, compute
from tests.test_partitioning_helpers import at, drop_family

SCHEDULES = 1000
SPAN = dt.timedelta(days=3 * 365)
CASES = {
    # interval: (retention, premake, schedules also replayed on PostgreSQL)
    "hour": ("3 days", 6, 1),
    "day": ("90 days", 3, 1),
    "week": (None, 2, 5),
    "month": ("12 months", 2, 20),
    "quarter": (None, 1, 40),
    "year": (None, 1, 50),
}
TABLE = "pt_rand"
# (name, lower, upper) of each partition; rows per table holding any; relation names in use
State = tuple[list[tuple[str, dt.datetime, dt.datetime]], dict[str, int], set[str]]


def schedules(interval: str) -> Iterator[tuple[dict[str, object], list[dt.datetime]]]:
    """The same 1,000 (options, run times) every time: ~10 runs, pauses up to 7 months."""
    rng = random.Random(interval)
    retention, premake, _ = CASES[interval]
    for n in range(SCHEDULES):
        options = {
            "interval": interval,
            "premake": premake,
            "retention": retention,
            "timezone": "UTC" if n % 2 else "Europe/Berlin",
            "default_partition": True,
            "on_expire": "drop",
        }
        now = at(2024, 1, 1) + dt.timedelta(seconds=rng.randrange(int(SPAN.total_seconds()) // 3))
        end, times = now + SPAN, []
        while now < end:
            times.append(now)
            now += dt.timedelta(seconds=rng.randrange(1, int(SPAN.total_seconds()) // 5))
        yield options, times


class Model:
    """One partitioned table as PostgreSQL holds it: partitions, relation names, rows."""

    def __init__(self) -> None:
        self.parts: dict[str, Partition] = {}
        self.default: str | None = None
        self.names: set[str] = set()  # partitions, the DEFAULT one and detached tables
        self.rows: dict[str, list[dt.datetime]] = {}

    def home(self, value: dt.datetime) -> str | None:
        """The partition a row with key ``value`` goes to (None: the INSERT fails)."""
        found = (p.name for p in self.parts.values() if p.lower <= value < p.upper)
        return next(found, self.default)

    def insert(self, value: dt.datetime) -> None:
        self.rows[self.home(value)].append(value)  # type: ignore[index]

    def default_hours(self) -> list[tuple[dt.datetime, int]]:
        buckets: dict[dt.datetime, int] = {}
        for v in self.rows.get(self.default, []) if self.default else []:
            h = v.replace(minute=0, second=0, microsecond=0)
            buckets[h] = buckets.get(h, 0) + 1
        return sorted(buckets.items())

    def apply(self, steps: Iterable[Step]) -> None:
        for s in steps:
            assert (s.name in self.names) == (s.action in ("detach", "drop")), s
            if s.action == "create_default":
                self.default, self.rows[s.name] = s.name, []
            elif s.action == "create":
                self.parts[s.name] = Partition(s.name, s.lower, s.upper)
                waiting = self.rows[self.default] if self.default else []
                self.rows[s.name] = [v for v in waiting if s.lower <= v < s.upper]
                if self.rows[s.name]:
                    self.rows[self.default] = [v for v in waiting if not s.lower <= v < s.upper]
            else:  # detach keeps the table (and its name) outside the parent; drop removes it
                del self.parts[s.name], self.rows[s.name]
                if s.action == "drop":
                    self.names.discard(s.name)
            if s.action != "drop":
                self.names.add(s.name)
        ordered = sorted(self.parts.values(), key=lambda p: p.lower)
        for a, b in itertools.pairwise(ordered):
            assert a.upper <= b.lower, ("overlap", a, b)

    def plan(self, options: dict[str, object], now: dt.datetime) -> list[Step]:
        return list(
            compute(
                table=TABLE,
                key="created",
                key_type="timestamp with time zone",
                partitions=list(self.parts.values())
                + ([Partition(self.default, None, None, default=True)] if self.default else []),
                options=model_options(options),
                now=now,
                default_hours=self.default_hours(),
                allow_drop=True,
                is_taken=lambda names: {n for n in names if n in self.names},
            ).steps
        )

    def check(self, options: dict[str, object], now: dt.datetime) -> None:
        """No overlap, no gap, now covered, no row left in the DEFAULT partition."""
        assert self.default is not None
        assert self.rows[self.default] == []
        ordered = sorted(self.parts.values(), key=lambda p: p.lower)
        for a, b in itertools.pairwise(ordered):
            assert a.upper == b.lower, (options, now, a, b)
        tz = zoneinfo.ZoneInfo(str(options["timezone"]))
        assert ordered[0].lower <= floor(now, str(options["interval"]), tz) < ordered[-1].upper

    def state(self) -> State:
        parts = sorted((p.name, p.lower, p.upper) for p in self.parts.values())
        rows = {name: len(rows) for name, rows in self.rows.items() if rows}
        return parts, rows, self.names | {TABLE}


def replay(options: dict[str, object], times: list[dt.datetime]) -> None:
    model = Model()
    for n, now in enumerate(times):
        if n:
            model.insert(now)  # a row arriving just before the run, maybe into DEFAULT
        model.apply(model.plan(options, now))
        model.check(options, now)


@pytest.mark.parametrize("interval", list(CASES))
def test_a_thousand_random_schedules_over_three_years(interval):
    for options, times in schedules(interval):
        replay(options, times)


def pg_state(parent: Parent) -> State:
    """What the maintenance code's catalog reader, the rows and pg_class say of ``TABLE``."""
    parts = read_partitions(connection, parent)
    ranged = sorted((p.name, p.lower, p.upper) for p in parts if not p.default)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text, count(*) FROM {TABLE} GROUP BY 1")
        rows = dict(cursor.fetchall())
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE %s", [TABLE + "%"])
        names = {name for (name,) in cursor.fetchall()}
    return ranged, rows, names


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("interval", list(CASES))
def test_random_schedules_on_postgresql_match_the_model_run_by_run(interval):
    on_postgresql = CASES[interval][2]
    try:
        for options, times in itertools.islice(schedules(interval), on_postgresql):
            with connection.cursor() as cursor:  # one table, reset between schedules
                cursor.execute(f"DROP TABLE IF EXISTS {TABLE} CASCADE")
                cursor.execute(
                    f"CREATE TABLE {TABLE} (created timestamptz NOT NULL) "
                    "PARTITION BY RANGE (created)"
                )
            parent, model = read_parent(connection, TABLE), Model()
            for n, now in enumerate(times):
                if n:
                    model.insert(now)
                    with connection.cursor() as cursor:
                        cursor.execute(f"INSERT INTO {TABLE} (created) VALUES (%s)", [now])
                expected = model.plan(options, now)
                result = maintain(table=TABLE, options=options, now=now, allow_drop=True)
                assert [(s.action, s.name, s.lower, s.upper) for s in result.applied] == [
                    (s.action, s.name, s.lower, s.upper) for s in expected
                ], (options, now)
                model.apply(expected)
                model.check(options, now)
                assert pg_state(parent) == model.state(), (options, now)
    finally:
        drop_family(TABLE)
