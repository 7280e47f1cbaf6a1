"""Ours as ``serializer_class`` of DRF generic views, through the test client."""

from __future__ import annotations

import decimal

import pytest
from rest_framework.test import APIClient

from django_scalekit.serializers import ReadOnlyError
from tests.testapp.models import Product, Review, Tag, User

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_serializers")]


@pytest.fixture
def shop():
    users = [User.objects.create(username=f"u{i}") for i in range(3)]
    tags = [Tag.objects.create(name=f"t{i}") for i in range(3)]
    products = []
    for i in range(5):
        p = Product.objects.create(name=f"p{i}", price=decimal.Decimal(i) / 4)
        p.tags.set(tags[: i % 3 + 1])
        for u in users[: i % 3 + 1]:
            Review.objects.create(product=p, user=u, rating=i % 5 + 1, body="b")
        products.append(p)
    return products


@pytest.fixture
def client():
    return APIClient()


def test_paginated_list(shop, client):
    response = client.get("/products/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5
    assert body["next"].endswith("/products/?page=2")
    first = body["results"][0]
    assert list(first) == ["id", "sku", "name", "price", "created", "tags", "reviews", "path"]
    assert first["price"] == "0.00"
    assert first["created"].endswith("Z")
    assert first["tags"] == [{"id": shop[0].tags.get().pk, "name": "t0"}]
    assert first["reviews"][0]["user"]["username"] == "u0"
    assert first["path"] == "/products/"  # the request reaches method fields


def test_retrieve(shop, client):
    response = client.get(f"/products/{shop[1].pk}/")
    assert response.status_code == 200
    assert response.json()["name"] == "p1"
    assert client.get("/products/999999/").status_code == 404


def test_request_reaches_method_fields_of_nested_serializers(shop, client):
    user = User.objects.get(username="u1")
    client.force_authenticate(user)
    reviews = client.get(f"/products/{shop[1].pk}/").json()["reviews"]
    assert {r["user"]["username"]: r["mine"] for r in reviews} == {"u0": False, "u1": True}


def test_data_is_drf_return_types(shop, rf):
    from django.contrib.auth.models import AnonymousUser
    from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

    from tests.urls_serializers import ProductSerializer

    request = rf.get("/x/")
    request.user = AnonymousUser()
    ctx = {"request": request}
    one = ProductSerializer(shop[0], context=ctx)
    assert isinstance(one.data, ReturnDict)
    assert one.data.serializer is one
    many = ProductSerializer(Product.objects.all(), many=True, context=ctx)
    assert isinstance(many.data, ReturnList)
    assert len(many.data) == 5


def test_browsable_api_renders(shop, client):
    for url in ("/products/", f"/products/{shop[0].pk}/"):
        response = client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 200
        assert b"p0" in response.content


def test_writes_fail_with_a_clear_error(shop, client):
    with pytest.raises(ReadOnlyError, match=r"read-only .* rest_framework serializer"):
        client.post("/writable/", {"name": "x"}, format="json")
    with pytest.raises(ReadOnlyError, match="is_valid"):
        client.put(f"/writable/{shop[0].pk}/", {"name": "x"}, format="json")
    assert Product.objects.filter(name="x").count() == 0


def test_sparse_fieldsets(shop, client):
    body = client.get("/products/?fields=id,name").json()
    assert [list(r) for r in body["results"]] == [["id", "name"], ["id", "name"]]
    bad = client.get("/products/?fields=id,nope")
    assert bad.status_code == 400
    assert "nope" in bad.json()["fields"][0]
    assert "price" in bad.json()["fields"][0]


def test_list_runs_a_constant_number_of_queries(shop, client, django_assert_num_queries):
    # count, products, tags, reviews with their users
    with django_assert_num_queries(4):
        client.get("/products/")
    Product.objects.create(name="more", price=1)
    with django_assert_num_queries(4):
        client.get("/products/?page=2")
    with django_assert_num_queries(2):  # count + products: nothing else is needed
        client.get("/products/?fields=id,name")


def test_without_the_mixin_output_is_the_same_but_queries_grow(shop, client, queries):
    with queries("default") as optimized:
        a = client.get("/products/").json()["results"]
    with queries("default") as plain:
        b = client.get("/plain/").json()[:2]
    assert a == [dict(r, path="/products/") for r in b]
    assert plain["default"] > optimized["default"]


def test_end_to_end_same_json_as_drf(shop, client, django_assert_max_num_queries):
    ours = client.get("/reviews/ours/").json()
    with django_assert_max_num_queries(3):
        client.get("/reviews/ours/")
    theirs = client.get("/reviews/drf/").json()
    assert ours == theirs
    assert len(ours) == Review.objects.count()


def test_openapi_components_describe_every_field():
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from tests.urls_serializers import ProductViewSet

    view = ProductViewSet()
    view.action = "list"
    view.request = Request(APIRequestFactory().get("/products/"))
    view.format_kwarg = None
    schema = view.schema
    components = schema.get_components("/products/", "GET")
    product = components["Product"]["properties"]
    assert product["id"]["type"] == "integer"
    assert product["sku"] == {"type": "string", "format": "uuid", "readOnly": True}
    assert product["price"]["type"] == "string"
    assert product["price"]["format"] == "decimal"
    assert product["created"]["format"] == "date-time"
    assert product["tags"]["type"] == "array"
    assert product["tags"]["items"]["properties"]["name"]["type"] == "string"
    review = product["reviews"]["items"]["properties"]
    assert list(review) == ["id", "rating", "created", "user", "mine"]
    assert review["rating"]["type"] == "integer"
    assert review["user"]["properties"]["username"]["type"] == "string"


def test_orjson_renderer_writes_what_drf_writes(shop, client):
    import datetime
    import json
    import uuid

    from django.utils.translation import gettext_lazy
    from rest_framework.renderers import JSONRenderer

    from django_scalekit.serializers.drf import ORJSONRenderer

    data = {
        "products": client.get("/products/").json(),
        "decimal": decimal.Decimal("1.50"),
        "lazy": gettext_lazy("Not found."),
        "when": datetime.datetime(2024, 1, 1, 1, tzinfo=datetime.UTC),
        "id": uuid.UUID(int=3),
        "n": {1: "int keys"},
    }
    ours = ORJSONRenderer().render(data)
    theirs = JSONRenderer().render(data)
    assert isinstance(ours, bytes)
    assert json.loads(ours) == json.loads(theirs)
    assert ORJSONRenderer().render(None) == b""
    pretty = ORJSONRenderer().render({"a": 1}, "application/json; indent=4")
    assert pretty == b'{\n  "a": 1\n}'


def test_sparse_fieldsets_reach_into_nested_serializers(shop, client, django_assert_num_queries):
    with django_assert_num_queries(3):  # count, products, reviews: no tags, no user join
        body = client.get("/products/?fields=id,reviews.rating,reviews.id").json()
    first = body["results"][0]
    assert list(first) == ["id", "reviews"]
    assert all(list(r) == ["id", "rating"] for r in first["reviews"])
    bad = client.get("/products/?fields=reviews.nope,tags.name,name.x")
    assert bad.status_code == 400
    message = bad.json()["fields"][0]
    assert "name.x" in message
    assert "reviews.nope" in message
    assert "tags.name," not in message
