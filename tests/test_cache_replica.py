"""A lagging replica must not refill the cache with rows older than a committed write."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_scalekit.cache import cached, set_primary_resolver, stats
from django_scalekit.cache.replicas import has_replicas, primary_of
from tests.test_cache_helpers import make_product, qs, reset_cache
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db(databases=["default", "replica"], transaction=True)


@pytest.fixture(autouse=True, params=["default", "locmem"])
def backend(request):
    reset_cache()
    with override_settings(SCALEKIT_CACHE={"CACHE": request.param}):
        yield request.param
    reset_cache()


def settle(replica):
    """Wait until the replica has replayed the primary's WAL *insert* position.

    The rig's ``wait()`` targets the write position; bumps record the insert position
    (never behind a commit), which the replica reaches a moment later.
    """
    import time

    from django_scalekit.cache.replicas import replay_position, write_position

    replica.wait()
    target = write_position("default")
    deadline = time.monotonic() + 10
    while (replay_position("replica") or 0) < target:
        assert time.monotonic() < deadline, "replica did not reach the insert position"
        time.sleep(0.01)


def replica_name(pk):
    return qs().using("replica").cached().get(pk=pk).name


def ready(replica, pk):
    """Leave only version tokens the replica has replayed, so the next miss is stored.

    A flushed cache lacks the epoch token; the first miss creates it at the *current*
    WAL position, which background WAL (a standby snapshot record, autovacuum) may move
    past the replica at any moment. Create it first, then bump and settle.
    """
    from django_scalekit.cache import invalidate

    replica_name(pk)
    invalidate(Product)
    settle(replica)


def test_replica_of_is_read_from_test_mirror():
    assert primary_of("replica") == "default"
    assert primary_of("default") == "default"
    assert has_replicas("default")
    set_primary_resolver(lambda alias: None)
    try:
        assert primary_of("replica") == "replica"
        assert not has_replicas("default")
    finally:
        set_primary_resolver(None)


def test_lagging_replica_does_not_refill_the_cache(replica, queries):
    p = make_product("old")
    ready(replica, p.pk)
    assert replica_name(p.pk) == "old"
    with queries("replica") as c:
        assert replica_name(p.pk) == "old"
    assert c["replica"] == 0  # caught up: stored, then served

    with replica.paused():
        p.name = "new"
        p.save()  # commit on the primary, bump with its WAL position
        # the replica still serves the old row (routing is the router's business) ...
        assert replica_name(p.pk) == "old"
        assert stats.replica_not_stored == 1
        # ... but the cache did not keep it: the next read asks the replica again
        with queries("replica") as c:
            assert replica_name(p.pk) == "old"
        assert c["replica"] >= 1
        # and the primary's cached read is fresh
        assert qs().cached().get(pk=p.pk).name == "new"
    settle(replica)
    assert replica_name(p.pk) == "new"
    with queries("replica") as c:
        assert replica_name(p.pk) == "new"
    assert c["replica"] == 0


def test_cached_function_reading_a_lagging_replica(replica):
    p = make_product("old")
    ready(replica, p.pk)
    calls = []

    @cached(depends_on=[Product], using="replica")
    def name(pk):
        calls.append(pk)
        return Product.objects.using("replica").get(pk=pk).name

    assert name(p.pk) == "old"
    assert name(p.pk) == "old"
    assert len(calls) == 1
    with replica.paused():
        Product.objects.filter(pk=p.pk).update(name="new")
        from django_scalekit.cache import invalidate

        invalidate(Product)
        assert name(p.pk) == "old"
        assert name(p.pk) == "old"
        assert len(calls) == 3  # not stored while the replica lags
    settle(replica)
    assert name(p.pk) == "new"
    assert name(p.pk) == "new"
    assert len(calls) == 4


def test_a_router_can_answer_the_caught_up_question(replica, queries):
    from django_scalekit.cache import set_caught_up_check

    p = make_product("old")
    ready(replica, p.pk)
    asked = []

    def check(alias, lsn):
        asked.append((alias, lsn))
        return False  # e.g. the router measured too much lag

    set_caught_up_check(check)
    try:
        assert replica_name(p.pk) == "old"
        with queries("replica") as c:
            assert replica_name(p.pk) == "old"
        assert c["replica"] == 1  # not stored: the router said no
        assert asked
        assert asked[0][0] == "replica"
        set_caught_up_check(lambda alias, lsn: None)  # no opinion: the cache measures
        replica_name(p.pk)
        with queries("replica") as c:
            assert replica_name(p.pk) == "old"
        assert c["replica"] == 0
    finally:
        set_caught_up_check(None)
