"""The interleavings that make other queryset caches serve stale rows, one test each.

Each test drives two connections (threads) into the exact interleaving with events,
then checks that a read starting after the write's commit returned sees the write.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.core.cache import caches
from django.db import connection, connections, transaction
from django.test import override_settings

from django_scalekit.cache import engine, stats
from tests.rig.urls import conninfo
from tests.test_cache_helpers import make_product, pause_queries, qs, reset_cache, start
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, params=["default", "locmem"])
def backend(request):
    reset_cache()
    with override_settings(SCALEKIT_CACHE={"CACHE": request.param}):
        yield request.param
    reset_cache()


def name_of(pk):
    return qs().cached().get(pk=pk).name


def fresh_read(pk, queries):
    """The cached read after the write: it must miss once, then hit the new row."""
    with queries("default") as c:
        first = name_of(pk)
    assert first == "new"
    # the reader's old row was not stored (a WAL position probe may come first)
    assert len([q for q in c.queries("default") if "pg_current_wal" not in q]) == 1
    assert name_of(pk) == "new"


def test_reader_misses_writer_commits_before_the_query_runs(queries):
    p = make_product("old")
    reached, go = threading.Event(), threading.Event()

    def reader():
        with pause_queries("default", before=reached, go=go):
            return name_of(p.pk)

    t = start(reader)
    assert reached.wait(10)  # tokens read, query not yet sent
    p.name = "new"
    p.save()  # commit + bump
    go.set()
    assert t.value() == "new"
    assert stats.store_conflicts == 1
    fresh_read(p.pk, queries)


def test_reader_reads_old_row_then_writer_commits_and_invalidates(queries):
    # cacheops .cache(): the reader stores the old row after the invalidation;
    # cachalot: the stamp is taken after the query and misses the commit in between.
    p = make_product("old")
    read_done, go = threading.Event(), threading.Event()

    def reader():
        with pause_queries("default", after=read_done, go=go):
            return name_of(p.pk)

    t = start(reader)
    assert read_done.wait(10)  # the old row is in the reader's hands
    p.name = "new"
    p.save()
    go.set()
    assert t.value() == "old"  # started before the commit: the old row is a correct answer
    assert stats.store_conflicts == 1
    fresh_read(p.pk, queries)


def test_read_while_an_autocommit_write_waits_for_a_lock(queries):
    # cachalot invalidates before the write in autocommit: a read in the gap stores
    # the old row after the invalidation. Here the bump comes after the commit.
    p = make_product("old")
    locker = psycopg.connect(**conninfo(connections["default"].settings_dict))
    locker.execute("SELECT 1 FROM testapp_product WHERE id = %s FOR UPDATE", [p.pk])

    def writer():
        p2 = Product.objects.get(pk=p.pk)
        p2.name = "new"
        p2.save()

    t = start(writer)
    try:
        admin = psycopg.connect(**conninfo(connections["default"].settings_dict), autocommit=True)
        deadline = time.monotonic() + 10
        while not admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ).fetchone()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        admin.close()
        assert name_of(p.pk) == "old"  # in the gap: the write has not committed
        assert name_of(p.pk) == "old"
    finally:
        locker.rollback()
        locker.close()
    t.value()
    with queries("default") as c:
        assert name_of(p.pk) == "new"
    assert c["default"] == 1


def test_repeatable_read_snapshot_is_not_stored(queries):
    p = make_product("old")
    snapshot, written = threading.Event(), threading.Event()

    def reader():
        connection.ensure_connection()
        connection.connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with transaction.atomic():
            list(Product.objects.all())  # the snapshot is taken here
            snapshot.set()
            assert written.wait(10)
            # the write is committed and bumped, but this snapshot predates it
            return name_of(p.pk), name_of(p.pk)

    t = start(reader)
    assert snapshot.wait(10)
    p.name = "new"
    p.save()
    written.set()
    assert t.value() == ("old", "old")
    assert stats.stores == 0
    fresh_read(p.pk, queries)


def test_serializable_reads_are_not_stored_either():
    p = make_product("a")

    def reader():
        connection.ensure_connection()
        connection.connection.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        with transaction.atomic():
            return name_of(p.pk)

    assert start(reader).value() == "a"
    assert stats.stores == 0
    assert stats.bypasses == 1


def test_not_found_is_not_stored_over_a_concurrent_create(queries):
    # cacheops #478/#474: "does not exist" cached while a create commits.
    read_done, go = threading.Event(), threading.Event()

    def reader():
        with pause_queries("default", after=read_done, go=go):
            return qs().cached().filter(name="new").first()

    t = start(reader)
    assert read_done.wait(10)
    p = make_product("new")
    go.set()
    assert t.value() is None
    fresh_read(p.pk, queries)
    assert [x.pk for x in qs().cached().filter(name="new")] == [p.pk]


def test_uncommitted_write_in_another_transaction(queries):
    p = make_product("old")
    wrote, go = threading.Event(), threading.Event()

    def writer():
        with transaction.atomic():
            qs().filter(pk=p.pk).update(name="new")
            wrote.set()
            assert go.wait(10)

    t = start(writer)
    assert wrote.wait(10)
    assert name_of(p.pk) == "old"  # not committed: the old row is right, and stored
    with queries("default") as c:
        assert name_of(p.pk) == "old"
    assert c["default"] == 0
    go.set()
    t.value()  # committed, then bumped
    fresh_read(p.pk, queries)


def test_evicted_version_counter_is_a_miss(backend, queries):
    p = make_product("old")
    assert name_of(p.pk) == "old"
    # the counter disappears (eviction, restart) and a write happens meanwhile
    cache = caches[backend]
    vkey = engine.version_key("default", "testapp_product")
    if hasattr(cache, "client"):
        cache.client.get_client(write=True).delete(vkey)
    else:
        cache.delete(vkey)
    with connection.cursor() as cursor:  # a write no bump reports
        cursor.execute("UPDATE testapp_product SET name = 'new' WHERE id = %s", [p.pk])
    fresh_read(p.pk, queries)


def test_payload_that_cannot_be_unpickled_is_a_miss(backend, queries):
    p = make_product("new")
    assert name_of(p.pk) == "new"
    cache = caches[backend]
    if hasattr(cache, "client"):
        client = cache.client.get_client(write=True)
        (key,) = client.keys("scalekit:q:*")
        head = client.get(key).partition(b"\n")[0]
        client.set(key, head + b"\n" + b"\x80\x05not a pickle", px=60_000)
    else:
        (key,) = [k for k in cache._cache if ":q:" in k]  # the raw key of locmem
        real = key.split(":", 2)[2]
        head = cache.get(real).partition(b"\n")[0]
        cache.set(real, head + b"\n" + b"\x80\x05not a pickle")
    fresh_read(p.pk, queries)
    assert stats.bad_payloads == 1
