"""Cached querysets: what is cached, and every ORM write path invalidating it."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import Count, Prefetch, Sum
from django.test import override_settings

from django_scalekit.cache import CachedQuerySet, invalidate, stats
from tests.test_cache_helpers import make_product, qs, reset_cache
from tests.testapp.models import Product, Review, Tag, User

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, params=["default", "locmem"])
def backend(request):
    reset_cache()
    with override_settings(SCALEKIT_CACHE={"CACHE": request.param}):
        yield request.param
    reset_cache()


def test_second_read_is_served_from_the_cache(queries):
    make_product("a")
    with queries("default") as c:
        assert [p.name for p in qs().cached()] == ["a"]
    assert c["default"] == 1
    with queries("default") as c:
        assert [p.name for p in qs().cached()] == ["a"]
    assert c["default"] == 0
    assert stats.hits == 1


def test_save_invalidates(queries):
    p = make_product("a")
    assert qs().cached().get(pk=p.pk).name == "a"
    p.name = "b"
    p.save()
    assert qs().cached().get(pk=p.pk).name == "b"


def served(queries, fn):
    """(result, number of queries) of ``fn()``."""
    with queries("default") as c:
        result = fn()
    return result, c["default"]


@pytest.mark.parametrize(
    "read",
    [
        lambda: [p.name for p in qs().cached().filter(active=True).order_by("name")],
        lambda: [p.name for p in qs().cached().exclude(name="zz").order_by("-name")[1:3]],
        lambda: list(qs().cached().order_by("name").values("name", "price")),
        lambda: list(qs().cached().order_by("name").values_list("name", flat=True)),
        lambda: list(qs().cached().order_by("name").values_list("name", "active", named=True)),
        lambda: qs().cached().order_by("name").first().name,
        lambda: qs().cached().get(name="b").price,
        lambda: qs().cached().count(),
        lambda: qs().cached().filter(name="zz").exists(),
        lambda: qs().cached().filter(name="a").exists(),
        lambda: qs().cached().aggregate(total=Sum("price"), n=Count("id")),
        lambda: qs().cached().order_by("name")[1].name,
        lambda: len(qs().cached()),
    ],
)
def test_reads_are_cached_and_equal_to_the_database(queries, read):
    make_product("a", "1.00")
    make_product("b", "2.50")
    make_product("c", "4.00")
    first, n1 = served(queries, read)
    second, n2 = served(queries, read)
    assert n1 >= 1
    assert n2 == 0
    assert first == second
    make_product("d", "8.00")  # any write to the table: the next read is fresh again
    _, n3 = served(queries, read)
    assert n3 >= 1


def test_select_related_and_prefetch_related(queries):
    user = User.objects.create(username="u")
    p = make_product("a")
    t = Tag.objects.create(name="t1")
    p.tags.add(t)
    Review.objects.create(product=p, user=user, rating=5)

    def read():
        rows = qs(Review).cached().select_related("product", "user")
        return [(r.product.name, r.user.username) for r in rows]

    assert served(queries, read) == ([("a", "u")], 1)
    assert served(queries, read) == ([("a", "u")], 0)
    User.objects.filter(pk=user.pk).update(username="v")  # plain queryset: needs invalidate()
    invalidate(User)
    assert served(queries, read) == ([("a", "v")], 1)

    def tags():
        return [[t.name for t in p.tags.all()] for p in qs().cached().prefetch_related("tags")]

    assert served(queries, tags) == ([["t1"]], 2)
    assert served(queries, tags)[1] == 0
    p.tags.add(Tag.objects.create(name="t2"))  # m2m_changed
    assert sorted(served(queries, tags)[0][0]) == ["t1", "t2"]
    Tag.objects.filter(name="t2").update(name="t3")
    invalidate(Tag)
    assert sorted(served(queries, tags)[0][0]) == ["t1", "t3"]

    def reviews():
        rows = (
            qs()
            .cached()
            .prefetch_related(Prefetch("reviews", queryset=Review.objects.filter(rating__gte=3)))
        )
        return [[r.rating for r in p.reviews.all()] for p in rows]

    assert served(queries, reviews) == ([[5]], 2)
    assert served(queries, reviews) == ([[5]], 0)
    Review.objects.create(product=p, user=user, rating=4)
    assert sorted(served(queries, reviews)[0][0]) == [4, 5]


def test_not_found_is_cached_and_dropped_on_create(queries):
    with pytest.raises(Product.DoesNotExist):
        qs().cached().get(name="a")
    _, n = served(queries, lambda: qs().cached().filter(name="a").first())
    assert n == 1
    assert served(queries, lambda: qs().cached().filter(name="a").first()) == (None, 0)
    make_product("a")
    assert served(queries, lambda: qs().cached().filter(name="a").first().name) == ("a", 1)


def names():
    return sorted(p.name for p in qs().cached())


def test_every_orm_write_path_invalidates():
    user = User.objects.create(username="u")
    a = make_product("a")
    assert names() == ["a"]
    a.name = "a2"
    a.save(update_fields=["name"])
    assert names() == ["a2"]
    qs().filter(pk=a.pk).update(name="a3")
    assert names() == ["a3"]
    qs().bulk_create([Product(name="b", price=1), Product(name="c", price=1)])
    assert names() == ["a3", "b", "c"]
    objs = list(qs().filter(name__in=["b", "c"]))
    for o in objs:
        o.name = o.name.upper()
    qs().bulk_update(objs, ["name"])
    assert names() == ["B", "C", "a3"]
    qs().filter(name="C").delete()
    assert names() == ["B", "a3"]
    Product.objects.get_or_create(name="d", defaults={"price": 1})
    Product.objects.update_or_create(name="d", defaults={"price": 2})
    assert names() == ["B", "a3", "d"]
    Product.objects.get(name="d").delete()
    assert names() == ["B", "a3"]
    # cascade: deleting a product deletes its reviews
    Review.objects.create(product=a, user=user, rating=3)
    assert [r.rating for r in qs(Review).cached()] == [3]
    a.delete()
    assert list(qs(Review).cached()) == []
    # SET_NULL on delete updates rows without a signal of their own
    from tests.testapp.models import Event

    Event.objects.create(kind="k", user=user)
    assert [e.user_id for e in qs(Event).cached()] == [user.pk]
    user.delete()
    assert [e.user_id for e in qs(Event).cached()] == [None]


def test_m2m_changes_invalidate():
    p = make_product("a")
    t1, t2 = Tag.objects.create(name="t1"), Tag.objects.create(name="t2")

    def tag_names():
        return sorted(qs(Tag).cached().filter(products=p).values_list("name", flat=True))

    assert tag_names() == []
    p.tags.add(t1, t2)
    assert tag_names() == ["t1", "t2"]
    p.tags.remove(t1)
    assert tag_names() == ["t2"]
    t1.products.add(p)  # reverse side
    assert tag_names() == ["t1", "t2"]
    p.tags.set([t2])
    assert tag_names() == ["t2"]
    p.tags.clear()
    assert tag_names() == []


def _rolled_back(p, name):
    with transaction.atomic():
        p.name = name
        p.save()
        raise ZeroDivisionError


def test_transaction_bumps_on_commit_and_not_on_rollback(queries):
    p = make_product("a")
    assert names() == ["a"]
    with transaction.atomic():
        p.name = "b"
        p.save()
        # this transaction wrote the table: read from the database, store nothing
        assert served(queries, names) == (["b"], 1)
        assert served(queries, names) == (["b"], 1)
    assert names() == ["b"]
    assert served(queries, names) == (["b"], 0)

    with pytest.raises(ZeroDivisionError):
        _rolled_back(p, "c")
    # rolled back: nothing changed, the cached value is still right and still served
    assert served(queries, names) == (["b"], 0)


def test_savepoint_rollback_forgets_the_write(queries):
    p = make_product("a")
    assert names() == ["a"]
    with transaction.atomic():
        with pytest.raises(ZeroDivisionError):
            _rolled_back(p, "b")
        # the write was undone with its savepoint: the cache may serve this read
        assert served(queries, names) == (["a"], 0)
        with transaction.atomic():
            qs().filter(pk=p.pk).update(name="c")
        assert served(queries, names) == (["c"], 1)
    assert served(queries, names) == (["c"], 1)
    assert served(queries, names) == (["c"], 0)


def test_one_bump_per_committed_transaction(monkeypatch):
    from django_scalekit.cache import engine

    calls = []
    real = engine.bump
    monkeypatch.setattr(engine, "bump", lambda *a: (calls.append(a), real(*a)))
    with transaction.atomic():
        p = make_product("a")
        p.tags.add(Tag.objects.create(name="t"))
        qs().filter(pk=p.pk).update(name="b")
    assert len(calls) == 1
    assert set(calls[0][1]) == {"testapp_product", "testapp_tag", "testapp_product_tags"}


def test_invalidate_accepts_models_instances_and_lists(queries):
    p = make_product("a")
    assert names() == ["a"]
    for target in (Product, p, [Product, Tag]):
        assert served(queries, names)[1] == 0
        invalidate(target)
        assert served(queries, names)[1] == 1


def test_timeout_is_a_ttl(backend):
    make_product("a")
    names()
    from django.core.cache import caches

    cache = caches[backend]
    if hasattr(cache, "client"):
        client = cache.client.get_client(write=True)
        keys = client.keys("scalekit:*")
        assert keys
        assert all(client.pttl(k) > 0 for k in keys)
        (value_key,) = [k for k in keys if b":q:" in k]
        assert client.pttl(value_key) <= 300_000
        list(qs().cached(timeout=7).filter(active=True))
        assert any(0 < client.pttl(k) <= 7000 for k in client.keys("scalekit:q:*"))


def test_disabled_reads_the_database_and_writes_still_bump(queries, backend):
    p = make_product("a")
    assert names() == ["a"]
    with override_settings(SCALEKIT_CACHE={"CACHE": backend, "ENABLED": False}):
        assert served(queries, names) == (["a"], 1)
        p.name = "b"
        p.save()
    assert served(queries, names) == (["b"], 1)


def test_as_manager_and_mixin():
    class Base(CachedQuerySet):
        def active(self):
            return self.filter(active=True)

    manager = Base.as_manager()
    manager.model = Product
    make_product("a")
    assert [p.name for p in manager.active().cached()] == ["a"]
    assert isinstance(manager.all().cached(), Base)
    assert [p.name for p in manager.cached()] == ["a"]

    from django_scalekit.cache import CachedManager

    plain = CachedManager()
    plain.model = Product
    assert [p.name for p in plain.cached().filter(name="a")] == ["a"]
    assert isinstance(plain.all(), CachedQuerySet)


def test_select_for_update_and_iterator_are_not_cached(queries):
    make_product("a")
    with transaction.atomic():
        assert served(queries, lambda: len(qs().cached().select_for_update()))[1] == 1
        assert served(queries, lambda: len(qs().cached().select_for_update()))[1] == 1
    assert served(queries, lambda: len(list(qs().cached().iterator())))[1] == 1
    assert served(queries, lambda: len(list(qs().cached().iterator())))[1] == 1


def test_distinct_queries_never_share_a_key(queries):
    from django.db.models import F, Q, Value
    from django.db.models.functions import Upper

    user = User.objects.create(username="u")
    for i, name in enumerate(["a", "b", "c", "d"]):
        p = make_product(name, f"{i + 1}.00", active=i % 2 == 0)
        Review.objects.create(product=p, user=user, rating=i + 1)

    reads = [
        lambda q: list(q().order_by("pk").values_list("name", flat=True)),
        lambda q: list(q().filter(active=True).order_by("pk").values_list("name", flat=True)),
        lambda q: list(q().filter(active=False).order_by("pk").values_list("name", flat=True)),
        lambda q: list(q().exclude(active=True).order_by("pk").values_list("name", flat=True)),
        lambda q: list(q().order_by("-pk").values_list("name", flat=True)),
        lambda q: list(q().order_by("pk").values_list("price", flat=True)),
        lambda q: list(q().order_by("pk").values_list("name", "price")),
        lambda q: list(q().order_by("pk").values("name")),
        lambda q: list(q().order_by("pk").annotate(u=Upper("name")).values_list("u", flat=True)),
        lambda q: list(q().order_by("pk").annotate(x=Value(1)).values_list("x", flat=True)),
        lambda q: list(q().filter(price__gt=F("pk") * 0).order_by("pk").values_list("pk")),
        lambda q: list(q().filter(Q(name="a") | Q(name="b")).values_list("name", flat=True)),
        lambda q: list(q().filter(reviews__rating__gte=3).values_list("name", flat=True)),
        lambda q: list(q(Review).filter(rating__gte=3).values_list("rating", flat=True)),
        lambda q: [p.name for p in q().only("name").order_by("pk")],
        lambda q: [str(p.price) for p in q().defer("name").order_by("pk")],
        lambda q: [p.name for p in q().order_by("pk")[1:3]],
        lambda q: [p.name for p in q().order_by("pk")[2:4]],
        lambda q: q().filter(active=True).count(),
        lambda q: q().count(),
        lambda q: q().aggregate(s=Sum("price")),
        lambda q: q().filter(active=True).aggregate(s=Sum("price")),
        lambda q: q().aggregate(s=Sum("price", filter=Q(active=False))),
    ]
    truth = [fn(lambda model=Product: qs(model)) for fn in reads]
    assert len({repr(t) for t in truth}) >= 18  # mostly different answers
    for round_ in range(2):  # fill, then hit
        with queries("default") as c:
            for fn, expected in zip(reads, truth, strict=True):
                assert fn(lambda model=Product: qs(model).cached()) == expected
        if round_:
            assert c.queries("default") == []


def test_django_async_methods_read_through_the_cache():
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    p = make_product("a")

    async def reads():
        got = await qs().cached().aget(pk=p.pk)
        count = await qs().cached().acount()
        rows = [x.name async for x in qs().cached()]
        first = await qs().cached().afirst()
        await sync_to_async(connections.close_all)()  # the worker thread's connection
        return got.name, count, rows, first.name

    assert asyncio.run(reads()) == ("a", 1, ["a"], "a")
    hits = stats.hits
    assert asyncio.run(reads()) == ("a", 1, ["a"], "a")
    assert stats.hits == hits + 4


def test_acached_hits_without_the_sync_thread(monkeypatch):
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    from django_scalekit.cache import engine

    a = make_product("a")
    make_product("b")

    async def read():
        rows = await qs().cached().filter(active=True).order_by("pk").acached()
        values = await qs().order_by("-pk").values_list("name", flat=True).acached()
        await sync_to_async(connections.close_all)()
        return [r.name for r in rows], values

    assert asyncio.run(read()) == (["a", "b"], ["b", "a"])  # misses: run and stored
    hits = stats.hits

    def no_sync(*args, **kwargs):
        raise AssertionError("a hit went through the blocking path")

    monkeypatch.setattr(engine, "fetch", no_sync)
    assert asyncio.run(read()) == (["a", "b"], ["b", "a"])
    assert stats.hits == hits + 2
    monkeypatch.undo()
    a.name = "c"
    a.save()
    assert asyncio.run(read()) == (["c", "b"], ["b", "c"])  # the write is seen


def test_related_manager_rows_point_at_the_live_instance():
    user = User.objects.create(username="u")
    p = make_product("old")
    Review.objects.create(product=p, user=user, rating=5)

    def reviews(product):
        rows = qs(Review).cached().filter(product_id=product.pk)
        # what a related manager (product.reviews) adds to its queryset
        rows._known_related_objects = {Review._meta.get_field("product"): {product.pk: product}}
        return list(rows)

    assert reviews(p)[0].product.name == "old"
    p.name = "new"
    p.save()  # bumps testapp_product only: the cached reviews stay valid
    fresh = Product.objects.get(pk=p.pk)
    hits = stats.hits
    (review,) = reviews(fresh)
    assert stats.hits == hits + 1
    assert review.product is fresh
    assert review.product.name == "new"
