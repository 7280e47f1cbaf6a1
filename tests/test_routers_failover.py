"""A replica that is down, blackholed, conflicting or lagging never fails a read."""

# ruff: noqa: F811  (fixtures imported from test_routers_support)

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.db import connections
from django.db.models.expressions import RawSQL
from django.test import Client

from django_scalekit.routers.replicas import replica as replica_health
from django_scalekit.routers.state import reset_state
from django_scalekit.routers.testing import served_by
from tests.rig.urls import conninfo
from tests.test_routers_support import BOTH, MIDDLEWARE, routed  # noqa: F401
from tests.testapp.models import Tag

pytestmark = BOTH


def read() -> tuple[list[str], str]:
    """One read in a fresh request: (names, alias that served it)."""
    reset_state()
    with served_by("default", "replica") as served:
        names = list(Tag.objects.values_list("name", flat=True))
    return names, served.aliases[-1]


def test_stopped_replica_falls_back_and_comes_back_after_the_cooldown(routed, replica):
    routed(COOLDOWN_SECONDS=0.3)
    Tag.objects.create(name="a")
    replica.wait()
    assert read() == (["a"], "replica")
    replica.stop()
    for _ in range(5):
        assert read() == (["a"], "default")
    assert replica_health("replica").failures == 1
    replica.start()
    time.sleep(0.35)
    assert read() == (["a"], "replica")
    assert replica_health("replica").failures == 0


def test_replica_dying_under_an_open_connection_retries_the_read(routed, replica):
    """The connection was fine when chosen; the query itself fails and runs on the primary."""
    routed(COOLDOWN_SECONDS=30)
    Tag.objects.create(name="a")
    replica.wait()
    assert read() == (["a"], "replica")
    assert connections["replica"].connection is not None
    replica.servers.stop_replica()  # the Django connection stays open, now broken
    reset_state()
    with served_by("default", "replica") as served:
        assert list(Tag.objects.values_list("name", flat=True)) == ["a"]
    assert served.aliases == ["default"]
    assert replica_health("replica").down


def test_requests_succeed_while_the_replica_is_stopped(routed, replica):
    from tests.test_routers_http import urlpatterns  # noqa: F401  (the views)

    routed(
        django={
            "ROOT_URLCONF": "tests.test_routers_http",
            "MIDDLEWARE": [MIDDLEWARE, *settings.MIDDLEWARE],
        }
    )
    client = Client()
    replica.stop()
    for i in range(20):
        assert client.post("/create/", {"name": f"t{i}"}).status_code == 200
        assert Client().get(f"/read/t{i}/").json() == {"found": True, "db": "default"}


def test_frozen_replica_costs_one_connect_timeout_per_cooldown(routed, replica):
    """SIGSTOP: new connections hang until connect_timeout (2 s in the test settings)."""
    routed(COOLDOWN_SECONDS=1)
    Tag.objects.create(name="a")
    replica.wait()
    connections["replica"].close()
    replica.freeze()
    start = time.monotonic()
    assert read() == (["a"], "default")
    first = time.monotonic() - start
    assert 1.5 < first < 3.5  # the one connect timeout
    start = time.monotonic()
    for _ in range(50):
        assert read() == (["a"], "default")
    assert time.monotonic() - start < 1.0  # within the cool-down: no further timeout
    # After the cool-down one more attempt times out, and the next window doubles.
    time.sleep(1)
    start = time.monotonic()
    assert read() == (["a"], "default")
    assert time.monotonic() - start > 1.5
    health = replica_health("replica")
    assert health.failures == 2
    assert 1.5 < health.down_until - time.monotonic() <= 2.0
    replica.thaw()
    health.down_until = health.next_poll = 0  # skip the rest of the wait
    assert read() == (["a"], "replica")


def test_concurrent_readers_share_one_poll_of_a_frozen_replica(routed, replica):
    """While one thread waits for the frozen replica, the others use the primary."""
    routed(COOLDOWN_SECONDS=5)
    Tag.objects.create(name="a")
    replica.wait()
    connections["replica"].close()
    replica_health("replica").next_poll = 0  # the first reader polls (and hangs)
    replica.freeze()
    timings: dict[int, float] = {}
    aliases: dict[int, str] = {}

    def reader(n: int) -> None:
        start = time.monotonic()
        aliases[n] = read()[1]
        timings[n] = time.monotonic() - start
        connections.close_all()

    first = threading.Thread(target=reader, args=(0,))
    first.start()
    time.sleep(0.2)  # reader 0 is now inside its connect
    others = [threading.Thread(target=reader, args=(n,)) for n in range(1, 6)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join()
    assert set(aliases.values()) == {"default"}
    assert timings[0] > 1.5
    assert all(timings[n] < 1.0 for n in range(1, 6))


@pytest.fixture
def conflict_prone_replica(replica):
    """max_standby_streaming_delay=0: replaying a conflicting lock cancels the query (40001)."""
    admin = psycopg.connect(
        **conninfo(connections["replica"].settings_dict, dbname="postgres"), autocommit=True
    )
    admin.execute("ALTER SYSTEM SET max_standby_streaming_delay = 0")
    admin.execute("SELECT pg_reload_conf()")
    time.sleep(0.1)
    yield replica
    admin.execute("ALTER SYSTEM RESET max_standby_streaming_delay")
    admin.execute("SELECT pg_reload_conf()")
    admin.close()


def test_hot_standby_conflict_is_retried_on_the_primary(routed, conflict_prone_replica):
    routed(COOLDOWN_SECONDS=30)
    Tag.objects.create(name="a")
    conflict_prone_replica.wait()
    reset_state()

    def lock_on_primary() -> None:
        time.sleep(0.3)  # the replica query is sleeping by now
        with psycopg.connect(**conninfo(connections["default"].settings_dict)) as conn:
            conn.execute("LOCK TABLE testapp_tag IN ACCESS EXCLUSIVE MODE")
        # commit on leaving the block: the lock record reaches the replica

    locker = threading.Thread(target=lock_on_primary)
    locker.start()
    slow = Tag.objects.annotate(pause=RawSQL("(SELECT 1 FROM pg_sleep(%s))", (2,)))
    with served_by("default", "replica") as served:
        start = time.monotonic()
        assert [t.name for t in slow] == ["a"]
    locker.join()
    assert served.aliases == ["default"]  # the replica's attempt failed with 40001
    assert replica_health("replica").down
    assert 2 <= time.monotonic() - start < 4.5  # 0.3 s on the replica, then 2 s on the primary


def test_replicas_behind_max_lag_seconds_are_skipped(routed, replica):
    routed(MAX_LAG_SECONDS=0.3, POLL_INTERVAL_MS=50)
    assert read()[1] == "replica"
    replica.pause()
    Tag.objects.create(name="late")
    time.sleep(0.4)
    names, alias = read()
    assert (names, alias) == (["late"], "default")
    assert replica_health("replica").lagging
    replica.resume()
    replica.wait()
    time.sleep(0.06)
    assert read() == (["late"], "replica")


def test_replicas_behind_max_lag_bytes_are_skipped(routed, replica):
    routed(MAX_LAG_BYTES=10_000, MAX_LAG_SECONDS=3600, POLL_INTERVAL_MS=50)
    assert read()[1] == "replica"
    replica.pause()
    Tag.objects.bulk_create(Tag(name=f"n{i:04}") for i in range(500))
    deadline = time.monotonic() + 5
    while replica_health("replica").lag_bytes <= 10_000:  # WAL still streams in while paused
        assert time.monotonic() < deadline
        time.sleep(0.06)
        read()
    names, alias = read()
    assert alias == "default"
    assert len(names) == 500
    replica.resume()
    replica.wait()
    time.sleep(0.06)
    assert read()[1] == "replica"


def test_readers_in_threads_never_fail_while_the_replica_stops_and_starts(routed, replica):
    """Four threads read without pause while the replica is shut down and brought back."""
    routed(COOLDOWN_SECONDS=0.2, POLL_INTERVAL_MS=20)
    Tag.objects.create(name="a")
    replica.wait()
    stop = threading.Event()
    failures: list[str] = []
    served: list[str] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                try:
                    names, alias = read()
                except Exception as exc:
                    failures.append(repr(exc))
                    continue
                if names != ["a"]:
                    failures.append(f"wrong rows {names}")
                served.append(alias)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    replica.servers.stop_replica()
    time.sleep(0.5)
    replica.start()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert served.count("default") > 0
    # Back in use once the (doubling) cool-down has passed.
    deadline = time.monotonic() + 5
    while read()[1] != "replica":
        assert time.monotonic() < deadline
        time.sleep(0.05)
