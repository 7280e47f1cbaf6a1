"""A small shop: the shapes whose reads and writes each scalekit concern speeds up."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from django_scalekit.cache import CachedQuerySet
from django_scalekit.denorm import CounterField, CounterQuerySet


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)
    tags = models.ManyToManyField(Tag, related_name="products", blank=True)
    # Kept equal to the product's approved reviews on every write path (signals mode).
    approved_review_count = CounterField("reviews", filter=Q(approved=True))

    objects = CachedQuerySet.as_manager()

    class Meta:
        # The "most reviewed" page reads the top of this index.
        indexes = [
            models.Index(fields=["-approved_review_count", "id"], name="shop_product_top_idx")
        ]

    def __str__(self) -> str:
        return self.name


class ReviewQuerySet(CachedQuerySet, CounterQuerySet):
    """Bulk writes both bump the cache's version of the table and keep the counters exact."""


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews"
    )
    rating = models.PositiveSmallIntegerField()
    body = models.TextField(blank=True)
    approved = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)

    objects = ReviewQuerySet.as_manager()

    class Meta:
        # The product page lists a product's reviews newest first.
        indexes = [models.Index(fields=["product", "created"])]

    def __str__(self) -> str:
        return f"{self.rating}* on product {self.product_id}"


class Event(models.Model):
    """An append-only log row: old months are dropped wholesale, never edited."""

    kind = models.CharField(max_length=50)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="events"
    )
    payload = models.JSONField(default=dict)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.kind} at {self.created:%Y-%m-%d %H:%M}"
