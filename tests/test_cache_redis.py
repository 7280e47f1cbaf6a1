"""Redis stopped or frozen: reads go to the database, and no stale value survives."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings

from django_scalekit.cache import engine, stats
from tests.test_cache_helpers import make_product, qs, reset_cache

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clean():
    reset_cache()
    with override_settings(SCALEKIT_CACHE={"FAILURE_BACKOFF": 0.2}):
        yield
    reset_cache()


def name_of(pk):
    return qs().cached().get(pk=pk).name


def test_stopped_redis_reads_fall_back_to_the_database(redis_server, queries, caplog):
    p = make_product("old")
    assert name_of(p.pk) == "old"
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="django_scalekit.cache"):
        with queries("default") as c:
            assert name_of(p.pk) == "old"
        assert c["default"] == 1
        p.name = "new"
        p.save()  # the write succeeds; its bump is kept pending
        assert name_of(p.pk) == "new"
    assert stats.errors >= 1
    assert stats.bump_failures == 1
    assert "could not bump" in caplog.text
    redis_server.start()
    time.sleep(0.25)  # past the back-off
    assert name_of(p.pk) == "new"
    assert name_of(p.pk) == "new"
    assert stats.as_dict()["pending_bumps"] == 0
    assert stats.hits >= 1


def test_bump_lost_while_frozen_is_written_when_redis_returns(redis_server):
    # Redis keeps its data across a freeze: the old row is still stored when it returns.
    p = make_product("old")
    assert name_of(p.pk) == "old"
    (key,) = engine.get_store().client.keys("scalekit:q:*")
    redis_server.freeze()
    try:
        started = time.monotonic()
        p.name = "new"
        p.save()  # bump times out (0.5 s socket timeout); the save does not fail
        assert time.monotonic() - started < 3
        assert stats.bump_failures == 1
        assert name_of(p.pk) == "new"  # this process reads the database meanwhile
    finally:
        redis_server.thaw()
    # No cache call from here on: the retry thread writes the pending bump by itself,
    # so other processes stop serving the old row too.
    deadline = time.monotonic() + 5
    while stats.as_dict()["pending_bumps"]:
        assert time.monotonic() < deadline, "pending bump never written"
        time.sleep(0.05)
    assert engine.get_store().get(key.decode()) is None  # the old value is dead everywhere
    assert name_of(p.pk) == "new"


def test_frozen_redis_never_raises(redis_server):
    p = make_product("old")
    redis_server.freeze()
    try:
        for _ in range(3):
            assert name_of(p.pk) == "old"
            assert qs().cached().count() == 1
    finally:
        redis_server.thaw()
    assert stats.errors >= 1
    time.sleep(0.25)
    assert name_of(p.pk) == "old"


WRITER = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from django.db import connections
connections["default"].settings_dict["NAME"] = sys.argv[1]
from django_scalekit.cache import stats
from tests.testapp.models import Product
product = Product.objects.get(pk=int(sys.argv[2]))
product.name = "new"
product.save()
print("bump_failures", stats.bump_failures)
"""


def test_a_writer_dying_with_its_bump_unwritten_leaves_nothing_stale(redis_server):
    # The writer's pending bump dies with its process; this process saw the outage
    # too, so it bumps the epoch before serving anything once Redis is back.
    from django.db import connection

    p = make_product("old")
    assert name_of(p.pk) == "old"
    store = engine.get_store()
    vkey = engine.version_key("default", "testapp_product")
    token = store.client.get(vkey)
    redis_server.freeze()
    try:
        out = subprocess.run(
            [sys.executable, "-c", WRITER, connection.settings_dict["NAME"], str(p.pk)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=False,
        )
        assert "bump_failures 1" in out.stdout, out.stderr[-3000:]
        assert name_of(p.pk) == "new"  # from the database: the cache call failed
    finally:
        redis_server.thaw()
    assert store.client.get(vkey) == token  # the table's bump was lost with the writer
    time.sleep(0.25)  # past the back-off
    assert name_of(p.pk) == "new"
    assert stats.epoch_bumps == 1
    assert name_of(p.pk) == "new"
    assert stats.hits >= 1


# -- the hit's own connection per thread ----------------------------------------------


def _read_until_mget(pk):
    """The first read stores, the second learns the counters, the third is an MGET."""
    for _ in range(3):
        name_of(pk)


def test_a_connection_closed_by_the_server_is_reopened_without_an_error(queries):
    p = make_product("old")
    _read_until_mget(p.pk)
    store = engine.get_store()
    assert store._direct
    assert store._own.conn is not None
    store.client.client_kill_filter(_type="normal", skipme=True)  # like an idle timeout
    hits = stats.hits
    with queries("default") as c:
        assert name_of(p.pk) == "old"
    assert c["default"] == 0  # served from the cache on the reopened connection
    assert stats.hits == hits + 1
    assert stats.errors == 0
    assert stats.epoch_bumps == 0


def test_each_thread_and_a_forked_child_read_on_their_own_connection():
    import os
    import threading

    p = make_product("old")
    _read_until_mget(p.pk)
    store = engine.get_store()
    mine = store._own.conn
    seen = []

    def read():
        assert name_of(p.pk) == "old"
        seen.append(store._own.conn)

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen
    assert seen[0] is not None
    assert seen[0] is not mine

    from django.db import connections

    connections.close_all()  # the child must not share the database socket
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            hits = stats.hits
            ok = all(name_of(p.pk) == "old" for _ in range(20))
            code = 0 if ok and stats.hits == hits + 20 and store._own.conn is not mine else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the child neither closed nor read from the parent's socket
    assert all(name_of(p.pk) == "old" for _ in range(20))
    assert store._own.conn is mine


def test_a_pool_of_another_kind_reads_through_the_client():
    import redis
    from django.core.cache import cache

    from django_scalekit.cache.stores import RedisStore

    class CountingPool(redis.ConnectionPool):
        checkouts = 0

        def get_connection(self, *args, **kwargs):
            CountingPool.checkouts += 1
            return super().get_connection(*args, **kwargs)

    p = make_product("old")
    _read_until_mget(p.pk)
    main = engine.get_store()
    (key,) = main.client.keys("scalekit:q:*")
    kwargs = cache.client.get_client().connection_pool.connection_kwargs
    other = RedisStore(redis.Redis(connection_pool=CountingPool(**kwargs)))
    assert not other._direct
    assert other.get(key.decode()) == main.get(key.decode()) is not None  # Lua, then MGET
    assert other.get(key.decode()) is not None
    assert CountingPool.checkouts >= 2


def test_thread_connections_can_be_switched_off():
    p = make_product("old")
    with override_settings(SCALEKIT_CACHE={"THREAD_CONNECTIONS": False}):
        store = engine.get_store()
        assert not store._direct
        _read_until_mget(p.pk)
        assert getattr(store._own, "conn", None) is None
        assert name_of(p.pk) == "old"
    assert engine.get_store()._direct


def test_a_finished_thread_leaves_no_connection_open():
    import gc
    import threading
    import weakref

    p = make_product("old")
    _read_until_mget(p.pk)
    store = engine.get_store()
    refs = []

    def read():
        _read_until_mget(p.pk)
        conn = store._own.conn
        assert conn.is_connected
        refs.append((weakref.ref(conn), conn._sock))

    threads = [threading.Thread(target=read) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gc.collect()
    assert len(refs) == 5
    for ref, sock in refs:
        assert ref() is None  # freed with its thread, and redis-py closes it then
        assert sock.fileno() == -1


def test_async_hits_are_one_mget_once_the_counters_are_known():
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    p = make_product("old")
    client = engine.get_store().client

    def calls(command):
        return client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)

    async def read():
        rows = await qs().cached().filter(pk=p.pk).acached()
        await sync_to_async(connections.close_all)()
        return [r.name for r in rows]

    assert asyncio.run(read()) == ["old"]  # a miss: run and stored
    assert asyncio.run(read()) == ["old"]  # a hit by the script, which names the counters
    mget, evalsha, hits = calls("mget"), calls("evalsha"), stats.hits
    for _ in range(3):
        assert asyncio.run(read()) == ["old"]
    assert stats.hits == hits + 3
    assert (calls("mget"), calls("evalsha")) == (mget + 3, evalsha)
    p.name = "new"
    p.save()
    assert asyncio.run(read()) == ["new"]  # the MGET saw the bumped counter
    assert asyncio.run(read()) == ["new"]
