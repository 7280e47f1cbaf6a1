"""Rows in the DEFAULT partition are moved out before their partition is made."""

from __future__ import annotations

import pytest
from django.db import connection

from django_scalekit.partitioning import maintain, plan
from tests.test_partitioning_helpers import (
    assert_contiguous,
    at,
    count,
    drop_family,
    make_parent,
    ranges,
)

pytestmark = pytest.mark.django_db(transaction=True)
OPTIONS = {"interval": "month", "premake": 1, "default_partition": True}


@pytest.fixture
def table():
    name = make_parent("pt_def")
    yield name
    drop_family(name)


def insert(table: str, *moments) -> None:
    with connection.cursor() as cursor:
        for moment in moments:
            cursor.execute(f"INSERT INTO {table} (created) VALUES (%s)", [moment])


def test_default_partition_is_created_and_reported(table):
    result = maintain(table=table, options=OPTIONS, now=at(2026, 5, 10))
    assert result.applied[0].action == "create_default"
    assert result.applied[0].name == f"{table}_default"
    insert(table, at(2026, 9, 3), at(2026, 9, 4), at(2025, 2, 1))
    current = plan(table=table, options=OPTIONS, now=at(2026, 5, 10))
    assert current.default_rows == 3
    assert {(s.name, s.rows) for s in current.steps if s.rows} == {
        (f"{table}_p202502", 1),
        (f"{table}_p202609", 2),
    }
    # The months between them are filled too: the plan leaves no gap.
    created = sorted((s.lower, s.upper) for s in current.steps)
    assert created[0][0] == at(2025, 2, 1)
    assert created[-1][1] == at(2026, 10, 1)


def test_rows_in_default_are_moved_and_none_is_lost(table):
    maintain(table=table, options=OPTIONS, now=at(2026, 5, 10))
    insert(
        table,
        at(2026, 5, 11),
        at(2026, 7, 1),
        at(2026, 7, 31, 23, 59),
        at(2026, 8, 2),
        at(2026, 12, 24),
    )
    before = count(f"SELECT count(*) FROM {table}")
    assert count(f"SELECT count(*) FROM {table}_default") == 4
    # A month later the July partition is due; its rows are in the default.
    result = maintain(table=table, options=OPTIONS, now=at(2026, 6, 10))
    assert result.moved_rows == 2 + 1 + 1  # July, then the slots the leftover rows need
    assert count(f"SELECT count(*) FROM {table}") == before
    assert count(f"SELECT count(*) FROM {table}_default") == 0
    # December's row gets its partition, and September-November are filled in between.
    names = [p.name for p in ranges(table)]
    assert names == [f"{table}_p2026{m:02}" for m in range(5, 13)]
    assert count(f"SELECT count(*) FROM {table}_p202607") == 2
    assert count(f"SELECT count(*) FROM {table}_p202612") == 1
    assert_contiguous(ranges(table))


def test_without_a_default_partition_the_plan_says_so(table):
    current = plan(table=table, options={"interval": "month"}, now=at(2026, 5, 10))
    assert current.default_rows == 0
    assert all(s.action == "create" for s in current.steps)


def test_rows_with_a_null_key_are_reported_and_the_rest_still_moves():
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS pt_nullkey CASCADE")
        cursor.execute("CREATE TABLE pt_nullkey (created timestamptz) PARTITION BY RANGE (created)")
    try:
        maintain(table="pt_nullkey", options=OPTIONS, now=at(2026, 5, 10))
        insert("pt_nullkey", None, at(2026, 9, 1))
        current = plan(table="pt_nullkey", options=OPTIONS, now=at(2026, 5, 10))
        assert current.default_rows == 2
        result = maintain(table="pt_nullkey", options=OPTIONS, now=at(2026, 5, 10))
        assert result.moved_rows == 1
        assert count("SELECT count(*) FROM pt_nullkey_default") == 1
        assert count("SELECT count(*) FROM pt_nullkey") == 2
    finally:
        drop_family("pt_nullkey")
