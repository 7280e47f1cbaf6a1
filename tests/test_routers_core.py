"""Where reads and writes go: primary, replica, transactions, use_primary, contexts, threads."""

# ruff: noqa: F811  (fixtures imported from test_routers_support)

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
from collections import Counter

import pytest
from asgiref.sync import sync_to_async
from django.db import connections, router, transaction
from django.test import TestCase, override_settings

from django_scalekit.routers import may_use_replica, read_alias, use_primary
from django_scalekit.routers.state import current_state, reset_state
from django_scalekit.routers.testing import served_by, wait_for_replicas
from tests.test_routers_support import (  # noqa: F401
    BOTH,
    ROUTER,
    THREE,
    close_async_connections,
    forget_router,
    routed,
    second_replica,
)
from tests.testapp.models import Product, Review, Tag, User

pytestmark = BOTH


def fresh_request() -> None:
    """What the start of a request does: a new routing state."""
    reset_state()


def test_reads_go_to_the_replica_and_writes_to_the_primary(routed):
    routed()
    with served_by("default", "replica") as served:
        assert list(Tag.objects.all()) == []
        Tag.objects.create(name="a")
    assert served.aliases == ["replica", "default"]


def test_without_replicas_everything_uses_the_primary(routed):
    routed(REPLICAS={})
    with served_by("default", "replica") as served:
        list(Tag.objects.all())
    assert served.aliases == ["default"]


def test_no_stale_read_after_a_create_in_the_same_request(routed, replica):
    routed()
    replica.pause()  # the replica never sees these rows until resumed
    stale = 0
    for i in range(1000):
        if i % 10 == 0:
            fresh_request()
        Tag.objects.create(name=f"t{i}")
        stale += not Tag.objects.filter(name=f"t{i}").exists()
    assert stale == 0


def test_a_write_pins_only_its_own_request(routed, replica):
    routed()
    Tag.objects.create(name="x")
    assert Tag.objects.all().db == "default"
    fresh_request()
    assert Tag.objects.all().db == "replica"


def test_sticky_off_keeps_reads_on_the_replica_after_a_write(routed):
    routed(STICKY=False)
    Tag.objects.create(name="x")
    assert Tag.objects.all().db == "replica"


def test_reads_inside_atomic_see_the_uncommitted_row(routed, replica):
    routed()
    user = User.objects.create(username="u")
    fresh_request()
    with transaction.atomic():
        product = Product.objects.create(name="Lamp", price="1.00")
        fresh_request()  # even without the write pin: the open transaction decides
        with served_by("default", "replica") as served:
            assert Product.objects.filter(pk=product.pk).exists()
            # ForeignKey validation reads the target: it must see the new row.
            Review(product=product, user=user, rating=5).full_clean()
        assert set(served.aliases) == {"default"}
    fresh_request()
    replica.wait()
    assert Product.objects.all().db == "replica"


def test_fk_validation_outside_atomic_after_a_write_sees_the_row(routed, replica):
    routed()
    replica.pause()
    user = User.objects.create(username="u")
    product = Product.objects.create(name="Lamp", price="1.00")
    Review(product=product, user=user, rating=5).full_clean()


@pytest.mark.parametrize(
    "operation",
    [
        lambda: list(Tag.objects.select_for_update().filter(name="a")),
        lambda: Tag.objects.get_or_create(name="a"),
        lambda: Tag.objects.update_or_create(name="a", defaults={"name": "a"}),
        lambda: Tag.objects.filter(name="a").update(name="b"),
        lambda: Tag.objects.filter(name="a").delete(),
    ],
    ids=["select_for_update", "get_or_create", "update_or_create", "update", "delete"],
)
def test_locking_and_writing_querysets_use_the_primary(routed, operation):
    routed()
    Tag.objects.create(name="a")
    fresh_request()
    with served_by("default", "replica") as served, transaction.atomic():
        operation()
    assert served.count("replica") == 0
    assert served.count("default") >= 1


def test_get_or_create_finds_a_row_the_replica_has_not_replayed(routed, replica):
    routed()
    replica.pause()
    Tag.objects.create(name="a")
    fresh_request()
    _, created = Tag.objects.get_or_create(name="a")
    assert not created


def test_use_primary_nests_and_restores_the_outer_setting(routed):
    routed()
    assert Tag.objects.all().db == "replica"
    outer = use_primary()
    with outer:
        assert Tag.objects.all().db == "default"
        with use_primary():
            assert Tag.objects.all().db == "default"
        assert Tag.objects.all().db == "default"  # the inner exit left the outer on
        with outer:  # re-entering the same object
            assert Tag.objects.all().db == "default"
        assert Tag.objects.all().db == "default"
    assert Tag.objects.all().db == "replica"


def test_use_primary_restores_after_an_exception(routed):
    routed()
    with pytest.raises(RuntimeError), use_primary():
        raise RuntimeError
    assert Tag.objects.all().db == "replica"


def test_use_primary_as_decorator_sync_and_async(routed):
    routed()

    @use_primary
    def bare() -> str:
        return Tag.objects.all().db

    @use_primary()
    def called() -> str:
        return Tag.objects.all().db

    @use_primary
    async def coroutine() -> str:
        return await sync_to_async(lambda: Tag.objects.all().db)()

    async def main() -> str:
        try:
            return await coroutine()
        finally:
            await close_async_connections()

    assert bare() == called() == "default"
    assert asyncio.run(main()) == "default"
    assert Tag.objects.all().db == "replica"


def test_threads_have_their_own_state(routed, replica):
    routed()
    Tag.objects.create(name="pinned-here")  # pins this thread's context only
    seen: dict[str, str] = {}

    def read(key: str) -> None:
        seen[key] = Tag.objects.all().db
        connections.close_all()

    plain = threading.Thread(target=read, args=("plain",))
    copied = threading.Thread(target=contextvars.copy_context().run, args=(read, "copied"))
    for t in (plain, copied):
        t.start()
        t.join()
    assert seen == {"plain": "replica", "copied": "default"}
    assert Tag.objects.all().db == "default"


def test_two_threads_interleaved_write_and_read(routed):
    """Thread A writes between B's two reads: B is never pinned by A."""
    routed()
    a_wrote, b_read_once = threading.Event(), threading.Event()
    b_aliases: list[str] = []

    def writer() -> None:
        b_read_once.wait(5)
        Tag.objects.create(name="a")
        a_wrote.set()
        connections.close_all()

    def reader() -> None:
        b_aliases.append(Tag.objects.all().db)
        b_read_once.set()
        a_wrote.wait(5)
        b_aliases.append(Tag.objects.all().db)
        connections.close_all()

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b_aliases == ["replica", "replica"]


def test_async_tasks_do_not_share_pins(routed):
    routed()

    async def writer(started: asyncio.Event, done: asyncio.Event) -> str:
        started.set()
        await Tag.objects.acreate(name="w")
        done.set()
        return await sync_to_async(lambda: Tag.objects.all().db)()

    async def reader(started: asyncio.Event, done: asyncio.Event) -> str:
        await started.wait()
        await done.wait()
        return await sync_to_async(lambda: Tag.objects.all().db)()

    async def main() -> list[str]:
        started, done = asyncio.Event(), asyncio.Event()
        try:
            return list(await asyncio.gather(writer(started, done), reader(started, done)))
        finally:
            await close_async_connections()

    assert asyncio.run(main()) == ["default", "replica"]


@THREE
def test_weighted_choice_is_fixed_for_a_request(routed, second_replica):
    routed(REPLICAS={"replica": 1, second_replica: 3})
    random.seed(1)  # the choice uses the random module: make the counts repeatable
    picks: Counter[str] = Counter()
    for _ in range(400):
        fresh_request()
        first = Tag.objects.all().db
        assert all(Tag.objects.all().db == first for _ in range(5))
        picks[first] += 1
    assert set(picks) == {"replica", "replica2"}
    assert 2.0 < picks["replica2"] / picks["replica"] < 4.5
    connections[second_replica].close()


def test_allow_migrate_only_on_the_primary_and_relations_across(routed):
    routed()
    assert router.allow_migrate("default", "testapp", model_name="tag")
    assert not router.allow_migrate("replica", "testapp", model_name="tag")
    a = Tag.objects.create(name="a")
    b = Tag(name="b")
    b._state.db = "replica"
    assert router.allow_relation(a, b)


def test_read_alias_and_may_use_replica(routed):
    assert read_alias(Tag) == "default"
    assert not may_use_replica()
    routed()
    assert read_alias() == "replica"
    assert may_use_replica(Tag)
    with use_primary():
        assert read_alias(Tag) == "default"
        assert not may_use_replica()
    current_state().pinned = True
    assert not may_use_replica()


class TestCaseWithTheRouter(TestCase):
    """Django's TestCase wraps each test in atomic(): every read sees its own rows."""

    databases = {"default", "replica"}

    @override_settings(DATABASE_ROUTERS=[ROUTER], SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}})
    def test_rows_created_in_the_test_are_read_back(self):
        forget_router()
        try:
            user = User.objects.create(username="tc")
            product = Product.objects.create(name="Lamp", price="2.00")
            reset_state()
            Review(product=product, user=user, rating=3).full_clean()
            assert Product.objects.get(pk=product.pk).name == "Lamp"
        finally:
            forget_router()


def test_stress_threads_writing_and_reading(routed, replica):
    """Random writes and reads in 6 threads: each sees its own writes, none is pinned by another."""
    routed(MAX_LAG_SECONDS=3600)
    replica.pause()
    errors: list[str] = []
    aliases: list[str] = []

    def worker(n: int) -> None:
        rng = random.Random(n)
        try:
            for i in range(60):
                reset_state()
                if rng.random() < 0.5:
                    Tag.objects.create(name=f"{n}-{i}")
                    if not Tag.objects.filter(name=f"{n}-{i}").exists():
                        errors.append(f"stale read of {n}-{i}")
                else:
                    aliases.append(Tag.objects.all().db)
                    if current_state().pinned:
                        errors.append(f"thread {n} pinned without writing")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # A read may still use the primary while another thread's poll runs long (under load).
    assert aliases.count("replica") >= 0.8 * len(aliases)


def test_wait_for_replicas_makes_new_rows_visible_on_the_replica(routed):
    routed()
    Tag.objects.create(name="soon")
    wait_for_replicas()
    assert Tag.objects.using("replica").filter(name="soon").exists()


def test_migrations_are_allowed_on_the_primary_only(routed):
    routed()
    assert router.allow_migrate_model("default", Tag)
    assert not router.allow_migrate_model("replica", Tag)
    assert router.allow_migrate("other", "testapp") is True  # no router has an opinion


def test_routing_from_an_event_loop_does_no_blocking_io(routed):
    """``aiterator()`` asks for ``qs.db`` on the event loop: no connect, no poll there."""
    routed()
    Tag.objects.create(name="x")
    routed()  # forget health: a read would now poll and connect

    async def main() -> list[str]:
        try:
            return [t.name async for t in Tag.objects.all().aiterator()]
        finally:
            await close_async_connections()

    assert asyncio.run(main()) == ["x"]
