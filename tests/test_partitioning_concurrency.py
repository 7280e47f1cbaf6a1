"""One advisory lock per table; short lock waits that never queue traffic for long."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections
from django.test import override_settings

from django_scalekit.partitioning import LockNotAcquired, maintain
from django_scalekit.partitioning.catalog import read_parent
from django_scalekit.partitioning.maintain import lock_key
from tests.test_partitioning_helpers import (
    assert_contiguous,
    at,
    count,
    drop_family,
    make_parent,
    ranges,
)

pytestmark = pytest.mark.django_db(transaction=True)
MONTH = {"interval": "month", "premake": 3}


@pytest.fixture
def table():
    name = make_parent("pt_conc")
    yield name
    drop_family(name)


class Worker(threading.Thread):
    """Runs ``fn`` on its own database connection and keeps the outcome."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:
            self.error = exc
        finally:
            connections.close_all()


def waiting_for_advisory_lock() -> int:
    return count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")


def test_a_run_finding_the_lock_taken_skips_or_waits(table):
    key = lock_key(read_parent(connection, table).oid)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        other = Worker(
            lambda: maintain(table=table, options=MONTH, now=at(2026, 5, 10), wait=False)
        )
        other.start()
        other.join(10)
        assert other.error is None
        assert other.result.skipped
        assert ranges(table) == []

        waiter = Worker(lambda: maintain(table=table, options=MONTH, now=at(2026, 5, 10)))
        waiter.start()
        deadline = time.monotonic() + 10
        while waiting_for_advisory_lock() == 0:
            assert time.monotonic() < deadline, "the second run never waited for the lock"
            time.sleep(0.02)
        assert waiter.is_alive()
        assert ranges(table) == []
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    waiter.join(10)
    assert waiter.error is None
    assert len(waiter.result.applied) == 4
    assert_contiguous(ranges(table))


def test_two_runners_at_once_both_succeed_and_create_once(table):
    barrier = threading.Barrier(2)

    def run() -> Any:
        barrier.wait()
        return maintain(table=table, options=MONTH, now=at(2026, 5, 10, 10))

    workers = [Worker(run), Worker(run)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(20)
    assert [w.error for w in workers] == [None, None]
    assert sorted(len(w.result.applied) for w in workers) == [0, 4]
    assert len(ranges(table)) == 4


def test_randomised_concurrent_runs_never_fail_or_overlap(table):
    rng = random.Random(6)
    options = {"interval": "day", "premake": 3, "default_partition": True}
    for _ in range(8):
        moments = [at(2026, 5, rng.randint(1, 28), rng.randint(0, 23)) for _ in range(3)]
        barrier = threading.Barrier(len(moments))

        def run(moment=None, barrier=barrier) -> Any:
            barrier.wait()
            time.sleep(rng.random() * 0.01)
            return maintain(table=table, options=options, now=moment)

        workers = [Worker(lambda m=m: run(m)) for m in moments]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
        assert [w.error for w in workers] == [None] * len(workers)
        parts = ranges(table)
        names = [p.name for p in parts]
        assert len(names) == len(set(names))
        for a, b in itertools.pairwise(parts):
            assert a.upper <= b.lower  # never an overlap (gaps are filled by the next run)
    maintain(table=table, options=options, now=at(2026, 5, 28))
    assert_contiguous(ranges(table))


class Reader(Worker):
    """Holds a transaction that has read the whole parent until ``release`` is set."""

    def __init__(self, table: str) -> None:
        self.ready = threading.Event()
        self.release = threading.Event()
        super().__init__(self.hold)
        self.table = table

    def hold(self) -> None:
        conn = connections["default"]
        with conn.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(f"SELECT count(*) FROM {self.table}")
            self.ready.set()
            self.release.wait(30)
            cursor.execute("COMMIT")


class Inserter(Worker):
    """Inserts rows in a loop and records the slowest insert."""

    def __init__(self, table: str) -> None:
        self.stop = threading.Event()
        self.slowest = 0.0
        self.rows = 0
        super().__init__(self.loop)
        self.table = table

    def loop(self) -> None:
        with connections["default"].cursor() as cursor:
            while not self.stop.is_set():
                started = time.monotonic()
                cursor.execute(f"INSERT INTO {self.table} (created) VALUES (%s)", [at(2026, 5, 11)])
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.rows += 1
                time.sleep(0.01)


@override_settings(SCALEKIT_PARTITIONING={"LOCK_TIMEOUT": "200ms", "LOCK_RETRIES": 3})
def test_long_reader_makes_maintenance_give_up_while_inserts_keep_flowing(table):
    options = {"interval": "month", "premake": 0, "default_partition": True}
    maintain(table=table, options=options, now=at(2026, 5, 10))
    reader, inserter = Reader(table), Inserter(table)
    reader.start()
    assert reader.ready.wait(10)
    inserter.start()
    try:
        started = time.monotonic()
        with pytest.raises(LockNotAcquired, match="after 3 attempts"):
            maintain(table=table, options=options, now=at(2026, 6, 10))
        elapsed = time.monotonic() - started
        assert elapsed < 3, elapsed  # 3 x 200 ms plus short pauses, not "until the reader ends"
        rows_during = inserter.rows
    finally:
        reader.release.set()
        reader.join(10)
        inserter.stop.set()
        inserter.join(10)
    assert rows_during > 10
    assert inserter.slowest < 1.0, inserter.slowest
    assert [p.name for p in ranges(table)] == [f"{table}_p202605"]  # nothing half-made
    assert count("SELECT count(*) FROM pg_class WHERE relname = %s", [f"{table}_p202606"]) == 0
    # Once the reader is gone the same run goes through.
    result = maintain(table=table, options=options, now=at(2026, 6, 10))
    assert [s.name for s in result.applied] == [f"{table}_p202606"]


@override_settings(SCALEKIT_PARTITIONING={"LOCK_TIMEOUT": "100ms", "LOCK_RETRIES": 5})
def test_a_step_that_timed_out_is_retried_and_goes_through_once_the_reader_ends(table, monkeypatch):
    options = {"interval": "month", "premake": 0, "default_partition": True}
    maintain(table=table, options=options, now=at(2026, 5, 10))
    reader = Reader(table)
    reader.start()
    assert reader.ready.wait(10)
    pauses: list[float] = []
    sleep = time.sleep

    def pause(seconds: float) -> None:  # the backoff after an attempt hit LOCK_TIMEOUT
        pauses.append(seconds)
        reader.release.set()
        sleep(seconds)

    monkeypatch.setattr(time, "sleep", pause)
    try:
        result = maintain(table=table, options=options, now=at(2026, 6, 10))
    finally:
        reader.release.set()
        reader.join(10)
    assert pauses, "the first attempt should have given up at LOCK_TIMEOUT"
    assert [s.name for s in result.applied] == [f"{table}_p202606"]
    assert [p.name for p in ranges(table)] == [f"{table}_p202605", f"{table}_p202606"]


def test_without_a_default_partition_a_long_reader_does_not_block_creation(table):
    maintain(table=table, options=MONTH, now=at(2026, 5, 10))
    reader = Reader(table)
    reader.start()
    assert reader.ready.wait(10)
    try:
        with override_settings(SCALEKIT_PARTITIONING={"LOCK_TIMEOUT": "200ms", "LOCK_RETRIES": 1}):
            result = maintain(table=table, options=MONTH, now=at(2026, 6, 10))
        assert [s.name for s in result.applied] == [f"{table}_p202609"]
    finally:
        reader.release.set()
        reader.join(10)


@pytest.mark.parametrize("on_expire", ["detach", "drop"])
@override_settings(SCALEKIT_PARTITIONING={"LOCK_TIMEOUT": "200ms", "LOCK_RETRIES": 2})
def test_interrupted_concurrent_detach_is_finalized_later(table, on_expire):
    options = {"interval": "month", "premake": 0, "retention": "1 month", "on_expire": on_expire}
    maintain(table=table, options={**options, "retention": None}, now=at(2026, 1, 10))
    maintain(table=table, options={**options, "retention": None}, now=at(2026, 2, 10))
    maintain(table=table, options={**options, "retention": None}, now=at(2026, 3, 10))
    reader = Reader(table)
    reader.start()
    assert reader.ready.wait(10)
    try:
        with pytest.raises(LockNotAcquired):
            maintain(table=table, options=options, now=at(2026, 3, 10), allow_drop=True)
        # CONCURRENTLY committed its first phase; the partition waits to be finalized.
        assert count("SELECT count(*) FROM pg_inherits WHERE inhdetachpending") == 1
    finally:
        reader.release.set()
        reader.join(10)
    result = maintain(table=table, options=options, now=at(2026, 3, 10), allow_drop=True)
    action = "finalize" if on_expire == "detach" else "drop"
    assert [(s.action, s.name) for s in result.applied] == [(action, f"{table}_p202601")]
    kept = count("SELECT count(*) FROM pg_class WHERE relname = %s", [f"{table}_p202601"])
    assert kept == (1 if on_expire == "detach" else 0)
    assert [p.name for p in ranges(table)] == [f"{table}_p202602", f"{table}_p202603"]


def test_rows_inserted_while_the_default_partition_is_drained_are_all_kept(table):
    """Rows keep landing in the DEFAULT partition while maintenance moves them out."""
    options = {"interval": "month", "premake": 0, "default_partition": True}
    maintain(table=table, options=options, now=at(2026, 5, 10))
    stop = threading.Event()
    written = [0]

    def insert_into_july() -> None:
        with connections["default"].cursor() as cursor:
            while not stop.is_set():
                cursor.execute(f"INSERT INTO {table} (created) VALUES (%s)", [at(2026, 7, 5)])
                written[0] += 1

    writer = Worker(insert_into_july)
    writer.start()
    try:
        deadline = time.monotonic() + 10
        while written[0] < 50:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        moved = 0
        for month in (6, 7):  # the June run already creates July, for the waiting rows
            moved += maintain(table=table, options=options, now=at(2026, month, 10)).moved_rows
            assert writer.error is None
        assert moved >= 50
    finally:
        stop.set()
        writer.join(10)
    assert writer.error is None
    assert count(f"SELECT count(*) FROM {table}") == written[0]
    assert count(f"SELECT count(*) FROM {table}_default") == 0
    assert count(f"SELECT count(*) FROM {table}_p202607") == written[0]
