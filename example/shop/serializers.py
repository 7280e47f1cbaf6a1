"""The product list twice: plain DRF (the baseline) and ``django_scalekit.serializers``."""

from django.db.models import Prefetch, QuerySet
from rest_framework import serializers

from django_scalekit import serializers as sk
from shop.models import Product, Review, Tag


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "name"]


class ReviewSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Review
        fields = ["id", "author", "rating", "body", "created"]


class ProductSerializer(serializers.ModelSerializer):
    """A catalogue entry with its tags and approved reviews.

    ``reviews`` reads the ``approved_reviews`` list that ``product_list_queryset`` prefetches,
    so serializing any number of products costs three queries.
    """

    tags = TagSerializer(many=True, read_only=True)
    reviews = ReviewSerializer(many=True, read_only=True, source="approved_reviews")

    class Meta:
        model = Product
        fields = ["sku", "name", "price", "active", "created", "tags", "reviews"]


class ProductSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["sku", "name", "price", "active", "created"]


def approved_reviews() -> QuerySet[Review]:
    """A product page's reviews: approved only, newest first, with their authors."""
    return Review.objects.filter(approved=True).select_related("user").order_by("-created", "pk")


def product_list_queryset() -> QuerySet[Product]:
    """The active catalogue as a careful DRF user writes it: prefetches, no N+1."""
    return (
        Product.objects.filter(active=True)
        .order_by("pk")
        .prefetch_related(
            "tags", Prefetch("reviews", queryset=approved_reviews(), to_attr="approved_reviews")
        )
    )


# --- the same list through django_scalekit.serializers ----------------------------------


class FastTagSerializer(sk.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "name"]


class FastReviewSerializer(sk.ModelSerializer):
    author = sk.StrField(source="user.username")

    class Meta:
        model = Review
        fields = ["id", "author", "rating", "body", "created"]


class FastProductSerializer(sk.ModelSerializer):
    """``ProductSerializer``'s output, compiled; ``optimize()`` derives the tags prefetch."""

    tags = FastTagSerializer(many=True)
    reviews = FastReviewSerializer(many=True, source="approved_reviews")

    class Meta:
        model = Product
        fields = ["sku", "name", "price", "active", "created", "tags", "reviews"]


def fast_product_list_queryset() -> QuerySet[Product]:
    """The same catalogue: the filtered reviews are spelled out, ``optimize()`` adds the rest."""
    reviews = Prefetch("reviews", queryset=approved_reviews(), to_attr="approved_reviews")
    return FastProductSerializer.optimize(
        Product.objects.filter(active=True).order_by("pk").prefetch_related(reviews)
    )
