"""Concurrent misses of one key run one query; a stuck lease holder blocks no one for long."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.test import override_settings

from django_scalekit.cache import stats
from tests.test_cache_helpers import make_product, pause_queries, qs, reset_cache, start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, params=["default", "locmem"])
def backend(request):
    reset_cache()
    with override_settings(SCALEKIT_CACHE={"CACHE": request.param, "LEASE_TIMEOUT": 3}):
        yield request.param
    reset_cache()


def test_hundred_concurrent_misses_run_one_query():
    for i in range(20):
        make_product(f"p{i}")
    barrier = threading.Barrier(100)
    lock = threading.Lock()
    selects = []

    def slow_select(execute, sql, params, many, context):
        if "testapp_product" in sql:
            with lock:
                selects.append(sql)
            time.sleep(0.3)  # a slow query: every other reader arrives meanwhile
        return execute(sql, params, many, context)

    def reader():
        barrier.wait(10)
        with connections["default"].execute_wrapper(slow_select):
            return [p.name for p in qs().cached().order_by("name")]

    threads = [start(reader) for _ in range(100)]
    results = [t.value(30) for t in threads]
    assert len(selects) == 1
    assert all(r == results[0] for r in results)
    assert len(results[0]) == 20
    assert stats.misses + stats.hits >= 100


def test_stuck_lease_holder_blocks_others_only_until_the_lease_expires(backend):
    p = make_product("a")
    reached, go = threading.Event(), threading.Event()

    def holder():
        with pause_queries("default", before=reached, go=go):
            return qs().cached().get(pk=p.pk).name

    with override_settings(SCALEKIT_CACHE={"CACHE": backend, "LEASE_TIMEOUT": 0.5}):
        t = start(holder)
        try:
            assert reached.wait(10)  # the holder took the lease and hangs
            started = time.monotonic()
            assert qs().cached().get(pk=p.pk).name == "a"
            waited = time.monotonic() - started
        finally:
            go.set()
        assert t.value() == "a"
    assert 0.3 < waited < 1.5
