"""Retention goes by a partition's upper bound and never drops without permission."""

from __future__ import annotations

import pytest
from django.db import connection

from django_scalekit.partitioning import maintain, plan
from tests.test_partitioning_helpers import at, count, drop_family, make_parent, ranges

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def table():
    name = make_parent("pt_ret")
    yield name
    drop_family(name)


def exists(name: str) -> bool:
    return count("SELECT count(*) FROM pg_class WHERE relname = %s", [name]) == 1


def seed_january_to_july(table: str, options: dict) -> None:
    maintain(table=table, options={**options, "retention": None}, now=at(2026, 1, 10))
    for month in range(2, 8):
        maintain(table=table, options={**options, "retention": None}, now=at(2026, month, 1))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (created, note) VALUES (%s, 'jan 25')", [at(2026, 1, 25, 12)]
        )


@pytest.mark.parametrize("on_expire", ["detach", "drop"])
def test_six_month_retention_on_july_1st_keeps_a_january_25th_row(table, on_expire):
    options = {"interval": "month", "premake": 1, "retention": "6 months", "on_expire": on_expire}
    seed_january_to_july(table, options)
    result = maintain(table=table, options=options, now=at(2026, 7, 1, 0, 30), allow_drop=True)
    assert [s.action for s in result.applied if s.action in ("detach", "drop")] == []
    assert count(f"SELECT count(*) FROM {table} WHERE note = 'jan 25'") == 1

    # On 1 August every possible January row is older than six months.
    result = maintain(table=table, options=options, now=at(2026, 8, 1, 0, 30), allow_drop=True)
    assert [(s.action, s.name) for s in result.applied if s.action != "create"] == [
        (on_expire, f"{table}_p202601")
    ]
    assert ranges(table)[0].name == f"{table}_p202602"
    assert count(f"SELECT count(*) FROM {table} WHERE note = 'jan 25'") == 0
    if on_expire == "detach":  # kept as a standalone table, row included
        assert count(f"SELECT count(*) FROM {table}_p202601 WHERE note = 'jan 25'") == 1
    else:
        assert not exists(f"{table}_p202601")


def test_drop_needs_permission(table):
    options = {"interval": "month", "premake": 1, "retention": "6 months", "on_expire": "drop"}
    seed_january_to_july(table, options)
    current = plan(table=table, options=options, now=at(2026, 8, 2))
    drop = [s for s in current.steps if s.action == "drop"]
    assert [(s.name, s.allowed, s.rows) for s in drop] == [(f"{table}_p202601", False, 1)]
    result = maintain(table=table, options=options, now=at(2026, 8, 2))
    assert all(s.action == "create" for s in result.applied)
    assert count(f"SELECT count(*) FROM {table} WHERE note = 'jan 25'") == 1
    assert ranges(table)[0].name == f"{table}_p202601"


def test_row_estimates_come_from_statistics_once_analyzed(table):
    options = {"interval": "month", "premake": 1, "retention": "6 months", "on_expire": "drop"}
    seed_january_to_july(table, options)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (created) SELECT %s FROM generate_series(1, 99)", [at(2026, 1, 3)]
        )
        cursor.execute(f"ANALYZE {table}_p202601")
    (drop,) = [
        s
        for s in plan(table=table, options=options, now=at(2026, 8, 2)).steps
        if s.action == "drop"
    ]
    assert drop.rows == 100


def test_retention_does_not_stop_at_a_gap(table):
    options = {"interval": "month", "premake": 0, "retention": "2 months", "on_expire": "drop"}
    seed_january_to_july(table, options)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table}_p202603")  # a hole in the middle
    result = maintain(table=table, options=options, now=at(2026, 7, 15), allow_drop=True)
    dropped = sorted(s.name for s in result.applied if s.action == "drop")
    assert dropped == [f"{table}_p20260{m}" for m in (1, 2, 4)]
    assert next(p.name for p in ranges(table)) == f"{table}_p202605"


def test_detach_with_a_default_partition_works_without_concurrently(table):
    options = {
        "interval": "month",
        "premake": 1,
        "retention": "1 month",
        "default_partition": True,
    }
    maintain(table=table, options=options, now=at(2026, 1, 10))
    result = maintain(table=table, options=options, now=at(2026, 3, 5))
    assert [s.name for s in result.applied if s.action == "detach"] == [f"{table}_p202601"]
    assert exists(f"{table}_p202601")
