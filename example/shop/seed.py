"""Deterministic demo data: the same seed gives the same shop, so reports compare run to run."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from django_scalekit.cache import invalidate
from shop.models import Event, Product, Review, Tag
from shop.progress import Progress

# The seeded shop's "now": fixed, so that dates (and the month the partitioning section
# drops) do not depend on the day the demo runs. Events cover the year before it.
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
EVENT_SPAN = timedelta(days=366)
OLDEST_MONTH = (EPOCH - EVENT_SPAN, datetime(2024, 2, 1, tzinfo=UTC))

BATCH_SIZE = 2000
USERNAME_PREFIX = "demo-"

ADJECTIVES = (
    "agile",
    "bold",
    "brisk",
    "calm",
    "clever",
    "cosy",
    "crisp",
    "eager",
    "fancy",
    "gentle",
    "grand",
    "handy",
    "jolly",
    "keen",
)
NOUNS = (
    "anchor",
    "basket",
    "candle",
    "drum",
    "easel",
    "fiddle",
    "globe",
    "hammock",
    "kettle",
    "lantern",
    "mug",
    "pillow",
)
TAGS = (
    "audio",
    "books",
    "camping",
    "coffee",
    "cycling",
    "design",
    "garden",
    "gifts",
    "hiking",
    "home",
    "kids",
    "kitchen",
    "lighting",
    "music",
    "office",
    "outdoor",
    "pets",
    "photo",
    "running",
    "sale",
    "sleep",
    "sport",
    "tea",
    "tools",
    "toys",
    "travel",
    "vintage",
    "wellness",
    "winter",
    "yoga",
)
SENTENCES = (
    "Does what it says.",
    "Arrived quickly and well packed.",
    "Smaller than I expected.",
    "Would buy again.",
    "The colour is lovely.",
    "Broke after a week.",
    "Great value for the price.",
    "My kids love it.",
)
EVENT_KINDS = ("page_view", "search", "add_to_cart", "checkout")
EVENT_WEIGHTS = (70, 15, 10, 5)


@dataclass(frozen=True)
class Sizes:
    products: int
    reviews_per_product: int
    events: int
    users: int = 200


ProgressFactory = Callable[[str, int], Progress]


def progress_to(stream: TextIO) -> ProgressFactory:
    return lambda label, total: Progress(label, total, stream)


def wipe() -> None:
    """Remove the previous run's rows, children first, one ``DELETE`` per table.

    Plain SQL: every row goes, so there is no counter to keep (the products go with their
    reviews) and no reason to load rows for the signals that django_scalekit listens to.
    The cache is told with ``invalidate()``, which waits for the seeding transaction.
    """
    models = [Event, Review, Product.tags.through, Product, Tag]
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
    invalidate(models)
    get_user_model().objects.filter(username__startswith=USERNAME_PREFIX).delete()


def _batches(total: int) -> Iterator[int]:
    """Sizes of the successive batches that make up ``total`` rows."""
    for start in range(0, total, BATCH_SIZE):
        yield min(BATCH_SIZE, total - start)


def _insert(
    label: str,
    model: Any,
    total: int,
    make: Callable[[], Any],
    progress: ProgressFactory,
) -> None:
    """bulk_create ``total`` rows built by ``make``, one batch in memory at a time."""
    with progress(label, total) as bar:
        for size in _batches(total):
            model.objects.bulk_create([make() for _ in range(size)])
            bar.advance(size)


def _ids(model: Any) -> list[int]:
    return list(model.objects.order_by("pk").values_list("pk", flat=True))


def _moment(rng: random.Random, span: timedelta) -> datetime:
    return EPOCH - timedelta(seconds=rng.random() * span.total_seconds())


def seed(sizes: Sizes, rng_seed: int, progress: ProgressFactory) -> dict[str, int]:
    """Wipe and refill the shop; returns the row count of each table."""
    rng = random.Random(rng_seed)
    user_model = get_user_model()
    with transaction.atomic():
        wipe()
        user_numbers, product_numbers = itertools.count(1), itertools.count(1)

        def make_user() -> Any:
            n = next(user_numbers)
            # "!" marks an unusable password: demo accounts cannot log in.
            return user_model(
                username=f"{USERNAME_PREFIX}{n:05d}",
                email=f"{USERNAME_PREFIX}{n:05d}@example.com",
                password="!",
                date_joined=_moment(rng, timedelta(days=3 * 365)),
            )

        _insert("users", user_model, sizes.users, make_user, progress)
        user_ids = list(
            user_model.objects.filter(username__startswith=USERNAME_PREFIX)
            .order_by("pk")
            .values_list("pk", flat=True)
        )

        Tag.objects.bulk_create([Tag(name=name) for name in TAGS])
        tag_ids = _ids(Tag)

        def make_product() -> Product:
            n = next(product_numbers)
            return Product(
                sku=uuid.UUID(int=rng.getrandbits(128), version=4),
                name=f"{rng.choice(ADJECTIVES).title()} {rng.choice(NOUNS)} #{n}",
                price=Decimal(rng.randint(199, 49_999)).scaleb(-2),
                active=rng.random() < 0.9,
                created=_moment(rng, timedelta(days=2 * 365)),
            )

        _insert("products", Product, sizes.products, make_product, progress)
        product_ids = _ids(Product)
        # Events name products by SKU: ids differ from run to run, the SKUs do not.
        product_skus = list(Product.objects.order_by("pk").values_list("sku", flat=True))

        through = Product.tags.through
        links = [
            through(product_id=product_id, tag_id=tag_id)
            for product_id in product_ids
            for tag_id in rng.sample(tag_ids, rng.randint(0, 4))
        ]
        with progress("product tags", len(links)) as bar:
            for start in range(0, len(links), BATCH_SIZE):
                chunk = links[start : start + BATCH_SIZE]
                through.objects.bulk_create(chunk)
                bar.advance(len(chunk))

        review_targets = (
            product_id for product_id in product_ids for _ in range(sizes.reviews_per_product)
        )

        def make_review() -> Review:
            return Review(
                product_id=next(review_targets),
                user_id=rng.choice(user_ids),
                rating=rng.randint(1, 5),
                body=" ".join(rng.sample(SENTENCES, rng.randint(1, 3))),
                approved=rng.random() < 0.7,
                created=_moment(rng, timedelta(days=365)),
            )

        _insert(
            "reviews", Review, len(product_ids) * sizes.reviews_per_product, make_review, progress
        )

        def make_event() -> Event:
            kind = rng.choices(EVENT_KINDS, EVENT_WEIGHTS)[0]
            return Event(
                kind=kind,
                user_id=rng.choice(user_ids) if rng.random() < 0.7 else None,
                payload={
                    "path": f"/products/{rng.choice(product_skus)}/",
                    "ms": rng.randint(5, 900),
                },
                created=_moment(rng, EVENT_SPAN),
            )

        _insert("events", Event, sizes.events, make_event, progress)

    analyze()
    return {
        "users": len(user_ids),
        "tags": len(tag_ids),
        "products": len(product_ids),
        "product tags": len(links),
        "reviews": Review.objects.count(),
        "events": Event.objects.count(),
    }


def analyze() -> None:
    """Refresh the planner's statistics so the first measurement uses the plans of the data."""
    tables = [model._meta.db_table for model in (Tag, Product, Review, Event)]
    tables.append(Product.tags.through._meta.db_table)
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
