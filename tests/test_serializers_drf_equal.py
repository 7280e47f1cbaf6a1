"""The JSON users receive does not change when a DRF ModelSerializer is swapped for ours."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
import zoneinfo

import pytest
from django.utils import timezone
from rest_framework import serializers as drf
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory

from django_scalekit import serializers as sk
from tests.testapp.models import Passport, Product, Review, Shipment, Tag, User, Warehouse

pytestmark = pytest.mark.django_db


def as_json(data):
    return json.loads(JSONRenderer().render(data))


def pair(model, fields=None, exclude=None, **declared):
    meta_attrs = {"model": model}
    if fields is not None:
        meta_attrs["fields"] = fields
    if exclude is not None:
        meta_attrs["exclude"] = exclude
    ours = type("Ours", (sk.ModelSerializer,), {"Meta": type("Meta", (), meta_attrs)})
    theirs = type("Theirs", (drf.ModelSerializer,), {"Meta": type("Meta", (), meta_attrs)})
    return ours, theirs


def assert_same(ours, theirs, instance, many=False, context=None):
    kwargs = {"context": context} if context is not None else {}
    a = ours(instance, many=many, **kwargs).data
    b = theirs(instance, many=many, **kwargs).data
    assert as_json(a) == as_json(b)
    # ours is JSON-ready already: no encoder needed
    assert json.loads(json.dumps(a)) == as_json(b)
    return a


@pytest.fixture
def shop():
    user = User.objects.create(username="ann", email="ann@example.com")
    tags = [Tag.objects.create(name=n) for n in ("red", "blue")]
    product = Product.objects.create(
        name="Lamp", price=decimal.Decimal("19.5"), created=timezone.now()
    )
    product.tags.set(tags)
    Product.objects.create(name="Bare", price=decimal.Decimal("0"))
    Review.objects.create(product=product, user=user, rating=4, body="ok")
    Review.objects.create(product=product, user=user, rating=5)
    house = Warehouse.objects.create(name="north")
    Passport.objects.create(warehouse=house, number="P-1")
    Warehouse.objects.create(name="south")  # no passport: a missing reverse one-to-one
    Shipment.objects.create(
        product=product,
        warehouse=house,
        status="sent",
        weight=12.25,
        day=datetime.date(2024, 2, 29),
        at=datetime.time(13, 5, 7, 120),
        took=datetime.timedelta(days=1, seconds=5, microseconds=7),
        meta={"a": [1, 2], "b": None},
        label="labels/one.pdf",
        email="x@example.com",
        ip="10.0.0.1",
        cost=decimal.Decimal("1.5"),
        big=2**40,
        shipped=datetime.datetime(2024, 3, 1, 12, 0, 0, 5, tzinfo=datetime.UTC),
    )
    Shipment.objects.create(product=product)
    return product


@pytest.mark.parametrize(
    ("model", "fields", "exclude"),
    [
        (Product, "__all__", None),
        (Review, "__all__", None),
        (Shipment, "__all__", None),
        (Warehouse, "__all__", None),
        (User, "__all__", None),
        (Product, ["name", "id", "tags", "price"], None),
        (Shipment, None, ["meta", "label"]),
        (Product, ["id", "reviews", "shipments"], None),  # reverse relations named explicitly
        (Warehouse, ["code", "shipments"], None),
        (Warehouse, ["code", "passport"], None),
        (Passport, "__all__", None),
        (Shipment, ["id", "heavy", "warehouse"], None),  # a model method, a UUID FK
    ],
)
def test_model_serializer_output_matches_drf(shop, model, fields, exclude):
    ours, theirs = pair(model, fields, exclude)
    qs = model.objects.order_by("pk")
    data = assert_same(ours, theirs, qs, many=True)
    assert data
    assert_same(ours, theirs, qs.first())
    assert list(ours(qs.first()).data) == list(theirs(qs.first()).data)  # key order too
    assert as_json(ours(ours.optimize(qs), many=True).data) == as_json(data)


def test_file_url_is_absolute_with_a_request(shop):
    ours, theirs = pair(Shipment, ["id", "label"])
    request = APIRequestFactory().get("/shipments/")
    from rest_framework.request import Request

    ctx = {"request": Request(request)}
    data = assert_same(ours, theirs, Shipment.objects.order_by("pk"), many=True, context=ctx)
    assert data[0]["label"] == "http://testserver/labels/one.pdf"
    assert data[1]["label"] is None


def test_datetimes_follow_the_active_time_zone_as_in_drf(shop):
    ours, theirs = pair(Product, ["id", "created"])
    with timezone.override(zoneinfo.ZoneInfo("Asia/Kolkata")):
        data = assert_same(ours, theirs, Product.objects.order_by("pk"), many=True)
    assert data[0]["created"].endswith("+05:30")
    utc = assert_same(ours, theirs, Product.objects.order_by("pk"), many=True)
    assert utc[0]["created"].endswith("Z")


def test_unsaved_values_are_converted_like_drf():
    product = Product(
        id=7, sku=uuid.UUID(int=5), name="x", price=decimal.Decimal("2.456"), created=None
    )
    ours, theirs = pair(Product, ["id", "sku", "name", "price", "created"])
    data = assert_same(ours, theirs, product)
    assert data == {
        "id": 7,
        "sku": "00000000-0000-0000-0000-000000000005",
        "name": "x",
        "price": "2.46",
        "created": None,
    }


def test_nested_declared_serializers_match_drf(shop):
    class OurTag(sk.ModelSerializer):
        class Meta:
            model = Tag
            fields = ["id", "name"]

    class OurReview(sk.ModelSerializer):
        class Meta:
            model = Review
            fields = ["id", "rating", "created", "user"]

    class Ours(sk.ModelSerializer):
        tags = OurTag(many=True)
        reviews = OurReview(many=True)

        class Meta:
            model = Product
            fields = ["id", "name", "price", "tags", "reviews"]

    class TheirTag(drf.ModelSerializer):
        class Meta:
            model = Tag
            fields = ["id", "name"]

    class TheirReview(drf.ModelSerializer):
        class Meta:
            model = Review
            fields = ["id", "rating", "created", "user"]

    class Theirs(drf.ModelSerializer):
        tags = TheirTag(many=True)
        reviews = TheirReview(many=True)

        class Meta:
            model = Product
            fields = ["id", "name", "price", "tags", "reviews"]

    data = assert_same(Ours, Theirs, Product.objects.order_by("pk"), many=True)
    assert len(data[0]["reviews"]) == 2
    assert data[1]["tags"] == []


@pytest.mark.parametrize("coerce", [True, False])
def test_decimal_setting_matches_drf_setting(shop, settings, coerce):
    settings.SCALEKIT_SERIALIZERS = {"COERCE_DECIMAL_TO_STRING": coerce}
    settings.REST_FRAMEWORK = {"COERCE_DECIMAL_TO_STRING": coerce}
    ours, theirs = pair(Product, ["id", "price"])
    data = assert_same(ours, theirs, Product.objects.order_by("pk"), many=True)
    assert data[0]["price"] == ("19.50" if coerce else 19.5)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (Review, "__all__"),
        (Shipment, ["id", "product", "warehouse"]),
        (Warehouse, ["code", "shipments", "passport"]),
    ],
)
def test_meta_depth_matches_drf(shop, model, fields, depth):
    meta = {"model": model, "fields": fields, "depth": depth}
    ours = type("Ours", (sk.ModelSerializer,), {"Meta": type("Meta", (), meta)})
    theirs = type("Theirs", (drf.ModelSerializer,), {"Meta": type("Meta", (), meta)})
    qs = model.objects.order_by("pk")
    data = assert_same(ours, theirs, qs, many=True)
    assert data
    # and optimize() keeps the same output in a constant number of queries
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        optimized = ours(ours.optimize(qs), many=True).data
    assert as_json(optimized) == as_json(data)
    assert len(ctx.captured_queries) <= 6


def test_random_field_subsets_match_drf(shop):
    import random

    rng = random.Random(11)
    for model in (Product, Review, Shipment, Warehouse, User):
        names = [f.name for f in model._meta.get_fields() if not f.auto_created or f.concrete]
        names += [r.get_accessor_name() for r in model._meta.related_objects if r.related_name]
        for _ in range(6):
            fields = rng.sample(names, rng.randint(1, len(names)))
            ours, theirs = pair(model, fields)
            data = assert_same(ours, theirs, model.objects.order_by("pk"), many=True)
            assert all(list(row) == fields for row in data)
            optimized = ours.optimize(model.objects.order_by("pk"))
            assert as_json(ours(optimized, many=True).data) == as_json(data)
