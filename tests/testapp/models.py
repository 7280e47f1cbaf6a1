"""A small shop: the models every concern's tests extend."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    pass


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.UUIDField(default=uuid.uuid4, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)
    tags = models.ManyToManyField(Tag, related_name="products", blank=True)

    def __str__(self) -> str:
        return self.name


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="reviews")
    rating = models.PositiveSmallIntegerField()
    body = models.TextField(blank=True)
    approved = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["product", "created"])]

    def __str__(self) -> str:
        return f"{self.rating}* on {self.product_id}"


class Event(models.Model):
    """An append-only log row; the partitioning tests turn its kind into a partitioned table."""

    kind = models.CharField(max_length=50)
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="events")
    payload = models.JSONField(default=dict)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.kind} at {self.created:%Y-%m-%d %H:%M}"


class Metric(models.Model):
    """A range-partitioned table (by ``created``); migration 0002 creates its parent.

    PostgreSQL wants the partition key in every unique key, hence the composite key.
    """

    pk = models.CompositePrimaryKey("uid", "created")
    uid = models.UUIDField(default=uuid.uuid4)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    name = models.CharField(max_length=50)
    value = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value} at {self.created:%Y-%m-%d %H:%M}"
