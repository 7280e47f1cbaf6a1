"""A small shop: the models every concern's tests extend."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from django_scalekit.denorm import CounterField, CounterQuerySet, register_counter


class User(AbstractUser):
    approved_reviews = models.PositiveIntegerField(default=0)


# The functional form, for an integer column that already exists.
register_counter(User.approved_reviews, "reviews", filter=Q(approved=True))


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
    review_count = CounterField("reviews", filter=Q(approved=True, deleted_at__isnull=True))
    reviews_total = CounterField("reviews")

    def __str__(self) -> str:
        return self.name


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="reviews")
    rating = models.PositiveSmallIntegerField()
    body = models.TextField(blank=True)
    approved = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = CounterQuerySet.as_manager()

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


# Serializers: one column of each kind DRF maps, a UUID primary key and a nullable FK.


class Warehouse(models.Model):
    code = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name


class Shipment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="shipments")
    warehouse = models.ForeignKey(
        Warehouse, on_delete=models.SET_NULL, null=True, blank=True, related_name="shipments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    weight = models.FloatField(null=True, blank=True)
    day = models.DateField(null=True, blank=True)
    at = models.TimeField(null=True, blank=True)
    took = models.DurationField(null=True, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    label = models.FileField(upload_to="labels/", blank=True)
    email = models.EmailField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    cost = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    big = models.BigIntegerField(default=0)
    shipped = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"shipment {self.pk}"

    def heavy(self) -> bool:
        return (self.weight or 0) > 10


class Passport(models.Model):
    """A reverse one-to-one from Warehouse that may be missing."""

    warehouse = models.OneToOneField(Warehouse, on_delete=models.CASCADE, related_name="passport")
    number = models.CharField(max_length=20)

    def __str__(self) -> str:
        return self.number


# Denormalized counters: trigger and deferred modes.


class Board(models.Model):
    """Counted by a PostgreSQL trigger: raw SQL writes to Post keep it exact too."""

    name = models.CharField(max_length=50)
    post_count = CounterField("posts", filter=Q(published=True), mode="trigger")
    posts_total = CounterField("posts", mode="trigger")
    # Hot parents: writers queue deltas, fold() applies them.
    posts_deferred = CounterField("posts", filter=Q(published=True), mode="deferred")

    def __str__(self) -> str:
        return self.name


class Post(models.Model):
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="posts")
    published = models.BooleanField(default=False)
    title = models.CharField(max_length=100, blank=True)

    objects = CounterQuerySet.as_manager()

    def __str__(self) -> str:
        return self.title or f"post {self.pk}"


class Forum(models.Model):
    """Counted at commit: the parent row is locked only while a writer commits."""

    name = models.CharField(max_length=50)
    topic_count = CounterField("topics", filter=Q(open=True), mode="commit")
    topics_total = CounterField("topics", mode="commit")

    def __str__(self) -> str:
        return self.name


class Topic(models.Model):
    forum = models.ForeignKey(
        Forum, on_delete=models.CASCADE, related_name="topics", null=True, blank=True
    )
    open = models.BooleanField(default=False)
    title = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.title or f"topic {self.pk}"


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
