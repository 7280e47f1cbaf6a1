"""OpenAPI: DRF's schema endpoint and drf-spectacular describe our serializers' output."""

from __future__ import annotations

import json
import warnings

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_serializers")]


def props(schema, name):
    return schema["components"]["schemas"][name]["properties"]


def test_drf_schema_endpoint():
    response = APIClient().get("/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert set(schema["paths"]) == {"/products/", "/products/{id}/", "/reviews/ours/"}
    product = props(schema, "Product")
    assert product["sku"]["format"] == "uuid"
    assert product["price"]["format"] == "decimal"
    assert product["reviews"]["type"] == "array"
    listing = schema["paths"]["/products/"]["get"]["responses"]["200"]["content"]
    paged = listing["application/json"]["schema"]["properties"]
    assert paged["results"]["items"]["$ref"] == "#/components/schemas/Product"
    review = props(schema, "OurReview")
    assert review["tags"]["type"] == "array"
    assert review["product"]["type"] == "integer"  # the FK key, as ModelSerializer writes it


def test_drf_spectacular():
    from drf_spectacular.generators import SchemaGenerator

    import django_scalekit.serializers.spectacular  # noqa: F401 - registers the extension

    with (
        override_settings(
            REST_FRAMEWORK={"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
        ),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("error")
        from tests import urls_serializers

        generator = SchemaGenerator(patterns=urls_serializers.optimized)
        schema = generator.get_schema(request=None, public=True)
    schemas = schema["components"]["schemas"]
    product = schemas["Product"]["properties"]
    assert product["id"]["type"] == "integer"
    assert product["sku"] == {"type": "string", "format": "uuid", "readOnly": True}
    assert product["price"]["format"] == "decimal"
    assert product["created"]["format"] == "date-time"
    assert product["tags"]["items"]["$ref"] == "#/components/schemas/Tag"
    assert product["reviews"]["items"]["$ref"] == "#/components/schemas/Review"
    assert schemas["Review"]["properties"]["user"]["allOf"][0]["$ref"].endswith("/User") or (
        schemas["Review"]["properties"]["user"].get("$ref", "").endswith("/User")
    )
    assert "PaginatedProductList" in schemas
    assert schemas["Tag"]["properties"]["name"]["type"] == "string"


def test_spectacular_extension_registers_when_installed():
    from django.test import modify_settings
    from drf_spectacular.extensions import OpenApiSerializerExtension

    from django_scalekit.serializers import drf as integration
    from tests.urls_serializers import ProductSerializer

    with modify_settings(INSTALLED_APPS={"append": "drf_spectacular"}):
        integration._register_spectacular()
    match = OpenApiSerializerExtension.get_match(ProductSerializer())
    assert type(match).__name__ == "SerializerExtension"
