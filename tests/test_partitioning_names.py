"""Existence is decided by bounds, never by names; names stay short and unique."""

from __future__ import annotations

import pytest
from django.db import connection

from django_scalekit.partitioning import maintain
from tests.test_partitioning_helpers import assert_contiguous, at, drop_family, make_parent, ranges

pytestmark = pytest.mark.django_db(transaction=True)
MONTH = {"interval": "month", "premake": 2}


@pytest.mark.parametrize("interval", ["hour", "month", "quarter"])
def test_long_table_name_gives_short_unique_names(interval):
    table = make_parent("pt_" + "x" * 56 + interval[0])  # 60 characters
    try:
        options = {"interval": interval, "premake": 4}
        maintain(table=table, options=options, now=at(2026, 5, 10, 10))
        maintain(table=table, options=options, now=at(2026, 6, 10, 8))
        parts = ranges(table)
        assert all(len(p.name.encode()) <= 63 for p in parts)
        assert len({p.name for p in parts}) == len(parts)
        assert_contiguous(parts)
        assert maintain(table=table, options=options, now=at(2026, 6, 10, 8, 59)).applied == []
    finally:
        drop_family(table)


def test_multibyte_table_name_is_cut_on_a_character_boundary():
    table = make_parent("pt_" + "é" * 29)  # 61 bytes
    try:
        maintain(table=table, options=MONTH, now=at(2026, 5, 10))
        names = [p.name for p in ranges(table)]
        assert all(len(n.encode()) <= 63 for n in names)
        assert all(n.encode().decode() == n for n in names)
    finally:
        drop_family(table)


def test_renamed_table_keeps_its_partitions():
    make_parent("pt_before")
    try:
        maintain(table="pt_before", options=MONTH, now=at(2026, 5, 10))
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE pt_before RENAME TO pt_after")
        result = maintain(table="pt_after", options=MONTH, now=at(2026, 6, 10))
        assert [s.name for s in result.applied] == ["pt_after_p202608"]
        parts = ranges("pt_after")
        assert_contiguous(parts)
        assert [p.name for p in parts] == [
            "pt_before_p202605",
            "pt_before_p202606",
            "pt_before_p202607",
            "pt_after_p202608",
        ]
    finally:
        drop_family("pt_before")
        drop_family("pt_after")


def test_a_gap_is_filled_and_nothing_overlaps():
    table = make_parent("pt_gap")
    try:
        with connection.cursor() as cursor:
            for name, lo, hi in [("jan", 1, 2), ("feb", 2, 3), ("apr", 4, 5)]:
                cursor.execute(
                    f"CREATE TABLE pt_gap_{name} PARTITION OF pt_gap FOR VALUES FROM "
                    f"('2026-0{lo}-01 00:00+00') TO ('2026-0{hi}-01 00:00+00')"
                )
        result = maintain(table=table, options=MONTH, now=at(2026, 4, 10))
        assert [s.name for s in result.applied] == [
            "pt_gap_p202603",
            "pt_gap_p202605",
            "pt_gap_p202606",
        ]
        assert_contiguous(ranges(table))
    finally:
        drop_family(table)


def month_partitions(table: str, *months: tuple[int, int]) -> None:
    with connection.cursor() as cursor:
        for year, month in months:
            nxt = (year + month // 12, month % 12 + 1)
            cursor.execute(
                f"CREATE TABLE {table}_m{year}{month:02} PARTITION OF {table} FOR VALUES FROM "
                f"('{year}-{month:02}-01 00:00+00') TO ('{nxt[0]}-{nxt[1]:02}-01 00:00+00')"
            )


def test_a_gap_beyond_premake_is_filled_up_to_the_newest_partition():
    table = make_parent("pt_gapahead")
    try:
        # January and June exist; premake 2 covers February and March.
        month_partitions(table, (2026, 1), (2026, 6))
        result = maintain(table=table, options=MONTH, now=at(2026, 1, 10))
        assert [s.name for s in result.applied] == [f"{table}_p2026{m:02}" for m in (2, 3, 4, 5)]
        parts = ranges(table)
        assert_contiguous(parts)
        assert (parts[0].lower, parts[-1].upper) == (at(2026, 1, 1), at(2026, 7, 1))
    finally:
        drop_family(table)


def test_the_gap_fill_skips_expired_ranges_and_stops_at_a_foreign_upper_bound():
    table = make_parent("pt_gapexp")
    try:
        month_partitions(table, (2025, 1))
        with connection.cursor() as cursor:  # another tool's range, bounds at 10:00
            cursor.execute(
                f"CREATE TABLE {table}_foreign PARTITION OF {table} FOR VALUES FROM "
                "('2026-06-10 10:00+00') TO ('2026-07-10 10:00+00')"
            )
        options = {**MONTH, "retention": "6 months", "on_expire": "detach"}
        result = maintain(table=table, options=options, now=at(2026, 1, 10))
        created = [(s.lower, s.upper) for s in result.applied if s.action == "create"]
        # Nothing for February-June 2025: those slots are already older than the retention.
        assert created[0] == (at(2025, 7, 1), at(2025, 8, 1))
        # Up to the foreign range, and not past its upper bound.
        assert created[-1] == (at(2026, 6, 1), at(2026, 6, 10, 10))
        assert [(s.action, s.name) for s in result.applied if s.action != "create"] == [
            ("detach", f"{table}_m202501")
        ]
        parts = ranges(table)
        assert_contiguous(parts)
        assert (parts[0].lower, parts[-1].upper) == (at(2025, 7, 1), at(2026, 7, 10, 10))
        assert maintain(table=table, options=options, now=at(2026, 1, 10)).applied == []
    finally:
        drop_family(table)


def test_ranges_made_by_another_tool_at_10_00_are_respected():
    """Bounds starting at the hour a job ran (as django-postgres-extra makes them)."""
    table = make_parent("pt_foreign")
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE pt_foreign_2026_may PARTITION OF pt_foreign FOR VALUES FROM "
                "('2026-05-10 10:00+00') TO ('2026-06-10 10:00+00')"
            )
        maintain(table=table, options=MONTH, now=at(2026, 5, 12))
        parts = ranges(table)
        assert_contiguous(parts)
        assert parts[0].lower == at(2026, 5, 1)
        assert parts[-1].upper == at(2026, 8, 1)
        assert [p.name for p in parts] == [
            "pt_foreign_p20260501_000000",  # the uncovered piece before the foreign range
            "pt_foreign_2026_may",
            "pt_foreign_p20260610_100000",
            "pt_foreign_p202607",
        ]
    finally:
        drop_family(table)


def test_a_name_taken_by_an_unrelated_table_gets_a_suffix():
    table = make_parent("pt_taken")
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE pt_taken_p202605 (x int)")
        maintain(table=table, options=MONTH, now=at(2026, 5, 10))
        assert next(p.name for p in ranges(table)) == "pt_taken_p202605_2"
    finally:
        drop_family(table)
