"""``optimize()``: a constant number of queries on real PostgreSQL, and the same output."""

from __future__ import annotations

import decimal

import pytest
from django.db import connection
from django.db.models import Prefetch
from django.test.utils import CaptureQueriesContext

from django_scalekit import serializers as sk
from tests.testapp.models import Product, Review, Shipment, Tag, User, Warehouse

pytestmark = pytest.mark.django_db


class UserS(sk.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username"]


class TagS(sk.Serializer):
    name = sk.StrField()


class ProductBrief(sk.ModelSerializer):
    tags = TagS(many=True)

    class Meta:
        model = Product
        fields = ["id", "name", "tags"]


class ReviewS(sk.ModelSerializer):
    user = UserS()  # FK
    product = ProductBrief()  # FK, then M2M below it

    class Meta:
        model = Review
        fields = ["id", "rating", "user", "product"]


class ReviewInProduct(sk.Serializer):
    rating = sk.IntField()
    author = sk.StrField(source="user.username")  # FK through a dotted source


class ProductS(sk.ModelSerializer):
    tags = TagS(many=True)  # M2M
    reviews = ReviewInProduct(many=True)  # reverse FK, with a FK inside: two levels

    class Meta:
        model = Product
        fields = ["id", "name", "price", "tags", "reviews"]


@pytest.fixture
def shop():
    users = [User.objects.create(username=f"u{i}") for i in range(4)]
    tags = [Tag.objects.create(name=f"t{i}") for i in range(4)]
    for i in range(6):
        p = Product.objects.create(name=f"p{i}", price=decimal.Decimal(i))
        p.tags.set(tags[: i % 4])
        for u in users[: i % 4 + 1]:
            Review.objects.create(product=p, user=u, rating=3, body="long text " * 50)
    return users


def run(serializer, queryset):
    return serializer(queryset, many=True).data


def count(fn):
    with CaptureQueriesContext(connection) as ctx:
        result = fn()
    return len(ctx.captured_queries), result, ctx.captured_queries


@pytest.mark.parametrize(
    ("serializer", "model", "expected"),
    [
        (ProductS, Product, 3),  # products, tags, reviews+users
        (ReviewS, Review, 2),  # reviews+users+products, tags
        (ProductBrief, Product, 2),
        (UserS, User, 1),
    ],
)
def test_constant_queries_and_same_output(shop, serializer, model, expected):
    qs = model.objects.order_by("pk")
    plain_n, plain, _ = count(lambda: run(serializer, qs.all()))
    opt_n, optimized, _ = count(lambda: run(serializer, serializer.optimize(qs.all())))
    assert optimized == plain
    assert opt_n == expected
    assert plain_n > expected or expected == 1
    # more rows, same number of queries
    p = Product.objects.create(name="late", price=1)
    p.tags.set(Tag.objects.all())
    Review.objects.create(product=p, user=shop[0], rating=1)
    again, _, _ = count(lambda: run(serializer, serializer.optimize(qs.all())))
    assert again == expected


def test_only_loads_the_columns_used(shop):
    _, _, sql = count(lambda: run(ProductS, ProductS.optimize(Product.objects.all())))
    products, _tags, reviews = (q["sql"] for q in sql)
    assert '"testapp_product"."sku"' not in products
    assert '"testapp_product"."price"' in products
    assert '"testapp_review"."body"' not in reviews  # long text never leaves the database
    assert '"testapp_user"."username"' in reviews
    assert '"testapp_user"."password"' not in reviews
    assert "JOIN" in reviews  # user joined into the prefetch query


def test_opaque_fields_keep_all_columns(shop):
    class WithMethod(sk.ModelSerializer):
        tags = TagS(many=True)
        shout = sk.MethodField()

        class Meta:
            model = Product
            fields = ["id", "tags", "shout"]

        def get_shout(self, product):
            return product.name.upper()

    n, data, sql = count(
        lambda: run(WithMethod, WithMethod.optimize(Product.objects.order_by("pk")))
    )
    assert n == 2
    assert '"testapp_product"."name"' in sql[0]["sql"]
    assert data[0]["shout"] == "P0"


def test_pk_lists_reverse_relations_and_uuid_fk(shop):
    house = Warehouse.objects.create(name="w")
    for p in Product.objects.all():
        Shipment.objects.create(product=p, warehouse=house)

    class P(sk.ModelSerializer):
        class Meta:
            model = Product
            fields = ["id", "tags", "reviews", "shipments"]

    class W(sk.ModelSerializer):
        class Meta:
            model = Warehouse
            fields = ["code", "shipments"]

    class S(sk.ModelSerializer):
        warehouse = W()

        class Meta:
            model = Shipment
            fields = ["id", "warehouse", "product"]

    for ser, model, expected in ((P, Product, 4), (W, Warehouse, 2), (S, Shipment, 2)):
        plain = run(ser, model.objects.order_by("pk"))
        n, data, _ = count(lambda s=ser, m=model: run(s, s.optimize(m.objects.order_by("pk"))))
        assert data == plain
        assert n == expected


def test_user_prefetches_and_restrictions_are_kept(shop):
    mine = Prefetch("tags", queryset=Tag.objects.order_by("-name"))
    qs = ProductS.optimize(Product.objects.order_by("pk").prefetch_related(mine))
    n, data, _ = count(lambda: run(ProductS, qs))
    assert n == 3
    assert data[3]["tags"] == [{"name": "t2"}, {"name": "t1"}, {"name": "t0"}]
    deferred = ProductS.optimize(Product.objects.defer("price"))
    assert deferred.query.deferred_loading == (frozenset({"price"}), True)
    values = Product.objects.values("id")
    assert ProductS.optimize(values) is values


def test_sparse_fields_optimize_less(shop):
    n, data, _ = count(
        lambda: (
            ProductS(
                ProductS.optimize(Product.objects.order_by("pk"), fields=["id", "tags"]),
                many=True,
                fields=["id", "tags"],
            ).data
        )
    )
    assert n == 2
    assert list(data[0]) == ["id", "tags"]
