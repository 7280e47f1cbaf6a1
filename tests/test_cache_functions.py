"""``@cached`` functions and the SCALEKIT_CACHE checks."""

from __future__ import annotations

import threading

import pytest
from django.db import transaction
from django.test import override_settings

from django_scalekit.cache import cached, invalidate, stats
from django_scalekit.cache.tasks import refresh_cached
from django_scalekit.checks import check_settings
from tests.test_cache_helpers import make_product, reset_cache
from tests.testapp.models import Product, Tag

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, params=["default", "locmem"])
def backend(request):
    reset_cache()
    with override_settings(SCALEKIT_CACHE={"CACHE": request.param}):
        yield request.param
    reset_cache()


calls: list[tuple] = []


@cached(depends_on=[Product])
def product_names(active=True):
    calls.append(("names", active))
    return sorted(Product.objects.filter(active=active).values_list("name", flat=True))


@cached(depends_on=["testapp.Tag", Product], timeout=60)
def summary(prefix):
    calls.append(("summary", prefix))
    return f"{prefix}: {Product.objects.count()} products, {Tag.objects.count()} tags"


@cached(timeout=30)
def constant(x):
    calls.append(("constant", x))
    return None  # None is a value like any other


@pytest.fixture(autouse=True)
def _calls():
    calls.clear()


def test_function_result_is_cached_per_arguments():
    make_product("a")
    assert product_names() == ["a"]
    assert product_names() == ["a"]
    assert product_names(active=False) == []
    assert product_names(active=False) == []
    assert calls == [("names", True), ("names", False)]


def test_dependencies_invalidate():
    make_product("a")
    assert summary("x") == "x: 1 products, 0 tags"
    Tag.objects.create(name="t")
    assert summary("x") == "x: 1 products, 1 tags"
    assert summary("x") == "x: 1 products, 1 tags"
    Product.objects.filter(name="a").update(name="b")  # plain queryset: not seen ...
    invalidate(Product)  # ... until told
    assert summary("x") == "x: 1 products, 1 tags"
    assert len(calls) == 3


def test_no_dependency_lives_until_its_timeout_and_none_is_cached():
    assert constant(1) is None
    assert constant(1) is None
    make_product("a")
    assert constant(1) is None
    assert calls == [("constant", 1)]


def test_unpicklable_arguments_are_called_every_time():
    lock = threading.Lock()
    constant(lock)
    constant(lock)
    assert len(calls) == 2


def test_inside_a_transaction_that_wrote_a_dependency():
    assert product_names() == []
    with transaction.atomic():
        make_product("a")
        assert product_names() == ["a"]
        assert product_names() == ["a"]
    assert product_names() == ["a"]
    assert product_names() == ["a"]
    assert len(calls) == 4
    assert stats.bypasses == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"ENABLED": "yes"}, "django_scalekit.E023"),
        ({"LEASE_TIMEOUT": 0}, "django_scalekit.E024"),
        ({"LEASE_TIMEOUT": "2"}, "django_scalekit.E024"),
        ({"FAILURE_BACKOFF": -1}, "django_scalekit.E025"),
        ({"VERSION_TIMEOUT": 0}, "django_scalekit.E026"),
        ({"THREAD_CONNECTIONS": 1}, "django_scalekit.E027"),
        ({"KEY_PREFIX": "my prefix"}, "django_scalekit.E022"),
    ],
)
def test_bad_settings_are_reported_by_id(value, expected):
    with override_settings(SCALEKIT_CACHE=value):
        errors = check_settings()
    assert [e.id for e in errors] == [expected]
    assert errors[0].hint


def test_good_settings_pass():
    with override_settings(
        SCALEKIT_CACHE={
            "CACHE": "locmem",
            "ENABLED": False,
            "LEASE_TIMEOUT": 0.5,
            "FAILURE_BACKOFF": 0,
            "VERSION_TIMEOUT": 3600,
        }
    ):
        assert check_settings() == []


def test_refresh_recomputes_and_stores():
    make_product("a")
    assert product_names() == ["a"]
    Product.objects.filter(name="a").update(name="b")  # not seen: the stored value is old
    assert product_names() == ["a"]
    assert product_names.refresh() == ["b"]
    assert product_names() == ["b"]
    assert calls == [("names", True), ("names", True)]


def test_refresh_task(backend):
    # Run through Celery's task machinery in this process: the session's real worker
    # must not live through the Redis outages of test_cache_redis (other suites use it).
    make_product("a")
    assert product_names() == ["a"]
    Product.objects.filter(name="a").update(name="b")
    result = refresh_cached.apply(args=["tests.test_cache_functions.product_names"])
    assert result.successful()
    assert product_names() == ["b"]
    failed = refresh_cached.apply(args=["tests.test_cache_helpers.make_product"])
    assert isinstance(failed.result, TypeError)


def test_refresh_task_on_a_real_worker(celery_app):
    # A worker of this test's own (a thread, started and stopped here) consuming from
    # the test Redis; the session's worker must not live through the Redis outages.
    from celery.contrib.testing.worker import start_worker

    make_product("a")
    assert product_names() == ["a"]
    Product.objects.filter(name="a").update(name="b")
    with start_worker(celery_app, pool="solo", perform_ping_check=False):
        task = refresh_cached.delay("tests.test_cache_functions.product_names")
        task.get(timeout=60)
    assert task.successful()
    assert product_names() == ["b"]
    assert calls == [("names", True), ("names", True)]


class Shop:
    def __init__(self, name):
        self.name = name

    @cached(depends_on=[Product])
    def label(self, suffix):
        calls.append(("label", self.name))
        return f"{self.name}{suffix}"


def test_methods_bind_their_instance():
    assert Shop("x").label("!") == "x!"
    assert Shop("y").label("!") == "y!"
    assert Shop("x").label("!") == "x!"
    assert calls == [("label", "x"), ("label", "y")]


@cached(depends_on=[Product])
async def async_names():
    from asgiref.sync import sync_to_async

    calls.append(("async",))

    def read():
        return sorted(Product.objects.values_list("name", flat=True))

    return await sync_to_async(read)()


def test_async_functions():
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    async def run():
        first = await async_names()
        second = await async_names()
        await sync_to_async(make_product)("b")
        third = await async_names()
        await sync_to_async(connections.close_all)()
        return first, second, third

    make_product("a")
    assert asyncio.run(run()) == (["a"], ["a"], ["a", "b"])
    assert calls == [("async",), ("async",)]


def test_async_function_hits_stay_on_the_event_loop(monkeypatch):
    import asyncio

    from django_scalekit.cache import engine

    make_product("a")
    assert asyncio.run(async_names()) == ["a"]

    def no_sync(*args, **kwargs):
        raise AssertionError("a hit went through the blocking path")

    monkeypatch.setattr(engine, "fetch", no_sync)
    assert asyncio.run(async_names()) == ["a"]
    assert stats.hits >= 1
    assert calls == [("async",)]
    monkeypatch.undo()

    from asgiref.sync import sync_to_async
    from django.db import connections

    asyncio.run(sync_to_async(connections.close_all)())  # the worker thread's connection
