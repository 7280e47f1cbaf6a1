"""Recorded queryset calls: the same SQL as Django builds, and hits that build none."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import FieldError
from django.db.models import Q, QuerySet
from django.db.models.sql import Query

from django_scalekit.cache import CachedQuerySet, stats
from tests.test_cache_helpers import make_product, qs, reset_cache
from tests.testapp.models import Product, Review, Tag, User

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def clean():
    reset_cache()
    yield
    reset_cache()


CHAINS = [
    lambda q: q.filter(pk=3),
    lambda q: q.filter(name="a", active=True).exclude(price__gt=Decimal("2.5")),
    lambda q: q.filter(Q(name="a") | ~Q(name__in=["b", "c"]), active=False),
    lambda q: q.filter(pk__in={3, 1, 2}).order_by("-name", "pk"),
    lambda q: q.filter(created__gte=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    lambda q: q.filter(sku=uuid.UUID(int=7)).order_by(),
    lambda q: q.order_by("name")[2:5],
    lambda q: q.order_by("name")[3:],
    lambda q: q.filter(active=True)[:20],
    lambda q: q.values("name", "price").filter(active=True),
    lambda q: q.values_list("name", flat=True).order_by("name"),
    lambda q: q.values_list("name", "price", named=True),
    lambda q: q.model.objects.none() if False else q.filter(tags__name="t"),
]


@pytest.mark.parametrize("build", CHAINS)
def test_recorded_calls_build_the_same_sql_as_django(build):
    ours = build(qs())
    assert ours._scalekit_ops  # recorded, nothing built yet
    theirs = build(QuerySet(model=Product))
    assert str(ours.query) == str(theirs.query)
    assert ours._scalekit_ops is None
    assert list(ours) == list(theirs)


def test_reviews_by_instance_and_select_related_build_the_same_sql():
    user = User.objects.create(username="u")
    p = make_product("a")
    Review.objects.create(product=p, user=user, rating=4)
    for build in (
        lambda q: q.filter(product=p).select_related("product", "user"),
        lambda q: q.filter(product__in=[p]).select_related(None),
        lambda q: q.select_related("user").filter(rating__gte=2),
    ):
        ours, theirs = build(qs(Review)), build(QuerySet(model=Review))
        assert str(ours.query) == str(theirs.query)
        assert [r.pk for r in ours] == [r.pk for r in theirs]


def test_a_hit_builds_no_query(monkeypatch):
    p = make_product("a")
    make_product("b")
    reads = [
        lambda: qs().cached().get(pk=p.pk),
        lambda: list(qs().cached().filter(active=True).order_by("pk")[:20]),
        lambda: qs().cached().filter(name="b").first(),
        lambda: qs().cached().filter(active=True).count(),
        lambda: qs().cached().filter(name="zz").exists(),
        lambda: list(qs().cached().values_list("name", flat=True)),
        lambda: qs().cached().order_by("name")[1],
    ]
    first = [read() for read in reads]
    built = []
    monkeypatch.setattr(Query, "chain", lambda self, *a, **k: built.append(1) or 1 / 0)
    hits = stats.hits
    assert [read() for read in reads] == first
    assert stats.hits == hits + len(reads)
    assert built == []


def test_get_and_first_behave_like_django():
    with pytest.raises(Product.DoesNotExist, match="Product matching query does not exist"):
        qs().cached().get(name="nobody")
    make_product("a")
    make_product("a")
    with pytest.raises(Product.MultipleObjectsReturned, match="it returned 2!"):
        qs().cached().get(name="a")
    assert qs().cached().filter(name="b").first() is None
    last = make_product("c")
    assert qs().cached().order_by("-pk").first() == last
    assert qs().cached().first() == QuerySet(model=Product).first()
    with pytest.raises(TypeError, match="Cannot filter a query once a slice has been taken"):
        qs()[:2].filter(name="a")
    with pytest.raises(TypeError, match="Cannot reorder a query once a slice has been taken"):
        qs()[:2].order_by("name")


def test_values_are_taken_when_the_call_is_made():
    a, b = make_product("a"), make_product("b")
    ids = [a.pk]
    rows = qs().cached().filter(pk__in=ids)
    ids.append(b.pk)  # Django has built its filter already; so have we, in effect
    assert [p.name for p in rows] == ["a"]
    assert [p.name for p in qs().cached().filter(pk__in=ids).order_by("pk")] == ["a", "b"]


def test_equal_looking_values_do_not_share_a_key():
    make_product("1")
    make_product("True")
    reads = {
        "name str": lambda: list(qs().cached().filter(name="1").values_list("name", flat=True)),
        "name bool": lambda: list(qs().cached().filter(name="True").values_list("name", flat=True)),
        "active": lambda: list(qs().cached().filter(active=True).values_list("name", flat=True)),
        "excluded": lambda: list(qs().cached().exclude(name="1").values_list("name", flat=True)),
    }
    truth = {k: fn() for k, fn in reads.items()}
    assert truth["name str"] == ["1"]
    assert truth["excluded"] == ["True"]
    assert {k: fn() for k, fn in reads.items()} == truth


def test_argument_errors_still_surface():
    with pytest.raises(FieldError):
        list(qs().cached().filter(no_such_field=1))
    with pytest.raises(TypeError, match="invalid"):
        qs().filter(_connector="OR")
    with pytest.raises(ValueError, match="Negative indexing"):
        qs()[-1]


class Weird(str):
    """A str subclass: its repr is not known to be stable, so it is not recorded."""


def test_what_cannot_be_recorded_still_works(queries):
    tag = Tag.objects.create(name="t")
    p = make_product("a")
    p.tags.add(tag)

    for build in (
        lambda q: q.filter(name=Weird("a")),
        lambda q: q.filter(name__in=(n for n in ["a"])),
        lambda q: q.order_by("name")[::1],
        lambda q: q.prefetch_related("tags").filter(name="a"),
        lambda q: q.filter(tags=tag),
    ):
        ours = build(qs().cached())
        assert [x.name for x in ours] == ["a"]
        with queries("default") as c:
            assert [x.name for x in build(qs().cached())] == ["a"]
        assert c["default"] == 0, build


def test_clone_copies_what_django_copies():
    plain = QuerySet(model=Product)._clone()
    ours = qs()._clone()
    assert ours._scalekit_ops == ()
    assert set(vars(plain)) | {"_scalekit_ops", "_scalekit_on", "_scalekit_timeout"} == set(
        vars(ours)
    )


def test_related_manager_querysets_fall_back_to_the_built_query():
    user = User.objects.create(username="u")
    p = make_product("a")
    Review.objects.create(product=p, user=user, rating=4)

    class Reviews(CachedQuerySet):
        pass

    manager = Reviews.as_manager()
    manager.model = Review
    rows = manager.filter(product=p).cached()
    assert [r.rating for r in rows] == [4]
    assert [r.rating for r in manager.filter(product=p).cached()] == [4]
