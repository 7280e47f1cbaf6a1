"""Views for the serializer tests: ours as ``serializer_class`` of DRF generic views."""

from __future__ import annotations

from django.urls import include, path
from rest_framework import generics, pagination, routers, viewsets
from rest_framework import serializers as drf
from rest_framework.renderers import JSONOpenAPIRenderer
from rest_framework.schemas import get_schema_view

from django_scalekit import serializers as sk
from django_scalekit.serializers.drf import OptimizeMixin
from tests.testapp.models import Product, Review, Tag, User


class UserSerializer(sk.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username"]


class TagSerializer(sk.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "name"]


class ReviewSerializer(sk.ModelSerializer):
    user = UserSerializer()
    mine = sk.MethodField()

    class Meta:
        model = Review
        fields = ["id", "rating", "created", "user", "mine"]

    def get_mine(self, review):
        request = self.context.get("request")
        return request is not None and request.user.pk == review.user_id


class ProductSerializer(sk.ModelSerializer):
    tags = TagSerializer(many=True)
    reviews = ReviewSerializer(many=True)
    path = sk.MethodField()

    class Meta:
        model = Product
        fields = ["id", "sku", "name", "price", "created", "tags", "reviews", "path"]

    def get_path(self, product):
        return self.context["request"].path


class Pages(pagination.PageNumberPagination):
    page_size = 2


class ProductViewSet(OptimizeMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Product.objects.order_by("pk")
    serializer_class = ProductSerializer
    pagination_class = Pages


class WritableProductViewSet(viewsets.ModelViewSet):
    queryset = Product.objects.order_by("pk")
    serializer_class = ProductSerializer


class PlainProductList(generics.ListAPIView):
    """Ours without the mixin: correct output, but N+1 queries."""

    queryset = Product.objects.order_by("pk")
    serializer_class = ProductSerializer


# DRF's own, for the end-to-end comparison.


class DRFUser(drf.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username"]


class DRFTag(drf.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "name"]


class DRFReview(drf.ModelSerializer):
    user = DRFUser()
    product = drf.PrimaryKeyRelatedField(read_only=True)
    tags = DRFTag(many=True, source="product.tags")

    class Meta:
        model = Review
        fields = ["id", "rating", "body", "created", "user", "product", "tags"]


class OurReview(sk.ModelSerializer):
    user = UserSerializer()
    tags = TagSerializer(many=True, source="product.tags")

    class Meta:
        model = Review
        fields = ["id", "rating", "body", "created", "user", "product", "tags"]


class DRFReviewList(generics.ListAPIView):
    queryset = Review.objects.order_by("pk")
    serializer_class = DRFReview


class DRFReviewListPrefetched(generics.ListAPIView):
    """DRF as a careful user tunes it by hand."""

    queryset = (
        Review.objects.order_by("pk")
        .select_related("user", "product")
        .prefetch_related("product__tags")
    )
    serializer_class = DRFReview


class OurReviewList(OptimizeMixin, generics.ListAPIView):
    queryset = Review.objects.order_by("pk")
    serializer_class = OurReview


router = routers.SimpleRouter()
router.register("products", ProductViewSet)
router.register("writable", WritableProductViewSet, basename="writable")

optimized = [
    path("products/", ProductViewSet.as_view({"get": "list"})),
    path("products/<int:pk>/", ProductViewSet.as_view({"get": "retrieve"})),
    path("reviews/ours/", OurReviewList.as_view()),
]

schema_view = get_schema_view(
    title="shop", version="1", patterns=optimized, renderer_classes=[JSONOpenAPIRenderer]
)

urlpatterns = [
    path("", include(router.urls)),
    path("schema/", schema_view),
    path("plain/", PlainProductList.as_view()),
    path("reviews/drf/", DRFReviewList.as_view()),
    path("reviews/drf-prefetched/", DRFReviewListPrefetched.as_view()),
    path("reviews/ours/", OurReviewList.as_view()),
]
