"""The pages of the shop; the demo report times them through these functions."""

import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from rest_framework import generics

from shop.models import Product
from shop.serializers import (
    ProductSerializer,
    ProductSummarySerializer,
    ReviewSerializer,
    approved_reviews,
    product_list_queryset,
)


class ProductList(generics.ListAPIView):
    serializer_class = ProductSerializer

    def get_queryset(self) -> Any:
        return product_list_queryset()


def product_detail_data(sku: uuid.UUID) -> dict[str, Any]:
    """One product and its approved reviews: two queries on every read."""
    product = get_object_or_404(Product, sku=sku)
    reviews = approved_reviews().filter(product=product)
    return {
        **ProductSummarySerializer(product).data,
        "reviews": ReviewSerializer(reviews, many=True).data,
    }


def cached_product_detail_data(sku: uuid.UUID) -> dict[str, Any]:
    """The same page read through ``.cached()``: no query on a warm cache, fresh after writes."""
    product = get_object_or_404(Product.objects.cached(), sku=sku)
    reviews = approved_reviews().filter(product=product).cached()
    return {
        **ProductSummarySerializer(product).data,
        "reviews": ReviewSerializer(reviews, many=True).data,
    }


def product_detail(request: HttpRequest, sku: uuid.UUID) -> JsonResponse:
    return JsonResponse(product_detail_data(sku))


def cached_product_detail(request: HttpRequest, sku: uuid.UUID) -> JsonResponse:
    return JsonResponse(cached_product_detail_data(sku))
