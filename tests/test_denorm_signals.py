"""Signals mode: after every write path the stored counter equals a real COUNT."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from tests.test_denorm_support import drift
from tests.testapp.models import Product, Review, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    users = [User.objects.create(username=f"u{i}") for i in range(3)]
    products = [Product.objects.create(name=f"p{i}", price=1) for i in range(3)]
    return users, products


def counts(product):
    product.refresh_from_db()
    return product.review_count, product.reviews_total


def test_create_counts_only_rows_matching_the_filter(shop):
    (u, *_), (p, *_) = shop
    Review.objects.create(product=p, user=u, rating=5, approved=True)
    Review.objects.create(product=p, user=u, rating=1, approved=False)
    assert counts(p) == (1, 2)
    u.refresh_from_db()
    assert u.approved_reviews == 1
    assert drift() == {}


def test_delete_instance_and_cascades(shop):
    (u, u2, _), (p, p2, _) = shop
    r = Review.objects.create(product=p, user=u, rating=5, approved=True)
    Review.objects.create(product=p, user=u2, rating=5, approved=True)
    Review.objects.create(product=p2, user=u, rating=5, approved=True)
    r.delete()
    assert counts(p) == (1, 1)
    assert drift() == {}
    p.delete()  # cascade: u2 loses its approved review
    u2.refresh_from_db()
    assert u2.approved_reviews == 0
    u.delete()  # cascade: p2 loses its review
    assert counts(p2) == (0, 0)
    assert drift() == {}


def test_move_via_save_and_via_queryset_update(shop):
    (u, *_), (a, b, c) = shop
    r = Review.objects.create(product=a, user=u, rating=5, approved=True)
    r.product = b
    r.save()
    assert (counts(a), counts(b)) == ((0, 0), (1, 1))
    Review.objects.filter(pk=r.pk).update(product=c)
    assert (counts(b), counts(c)) == ((0, 0), (1, 1))
    c.reviews.update(product=a)  # the related manager uses the same queryset
    assert counts(a) == (1, 1)
    assert drift() == {}


def test_filter_fields_changing_approve_unapprove_soft_delete(shop):
    (u, *_), (p, *_) = shop
    r = Review.objects.create(product=p, user=u, rating=5)
    assert counts(p) == (0, 1)
    r.approved = True
    r.save()
    assert counts(p) == (1, 1)
    r.approved = False
    r.save(update_fields=["approved"])
    assert counts(p) == (0, 1)
    Review.objects.filter(pk=r.pk).update(approved=True)
    assert counts(p) == (1, 1)
    r.refresh_from_db()
    r.deleted_at = timezone.now()
    r.save()
    assert counts(p) == (0, 1)
    Review.objects.filter(pk=r.pk).update(deleted_at=None)
    assert counts(p) == (1, 1)
    Review.objects.filter(product=p).update(deleted_at=timezone.now())
    assert counts(p) == (0, 1)
    assert drift() == {}


def test_bulk_create_update_bulk_update_delete(shop):
    users, (a, b, _) = shop
    made = Review.objects.bulk_create(
        [
            Review(product=a if i % 2 else b, user=users[i % 3], rating=3, approved=i % 3 == 0)
            for i in range(30)
        ]
    )
    assert drift() == {}
    assert counts(a)[1] == 15
    Review.objects.filter(product=a).update(approved=True)
    assert counts(a) == (15, 15)
    for r in made[:10]:
        r.product = a
        r.approved = False
    Review.objects.bulk_update(made[:10], ["product", "approved"])
    assert drift() == {}
    deleted, _ = Review.objects.filter(product=a, approved=True).delete()
    assert deleted > 0
    assert drift() == {}
    Review.objects.all().delete()
    assert counts(a) == counts(b) == (0, 0)
    assert drift() == {}


def test_bulk_create_with_conflict_handling_is_refused(shop):
    from django.db import NotSupportedError

    (u, *_), (p, *_) = shop
    with pytest.raises(NotSupportedError, match="ignore_conflicts"):
        Review.objects.bulk_create([Review(product=p, user=u, rating=1)], ignore_conflicts=True)
    assert Review.objects.count() == 0


def test_save_without_counted_fields_costs_no_extra_query(shop, queries):
    (u, *_), (p, *_) = shop
    r = Review.objects.create(product=p, user=u, rating=5, approved=True)
    with queries("default") as c:
        r.body = "edited"
        r.save(update_fields=["body"])
    assert c["default"] == 1
    with queries("default") as c:
        Review.objects.filter(pk=r.pk).update(body="again")
    assert c["default"] == 1


def test_update_of_unrelated_fields_keeps_counts(shop):
    (u, *_), (p, *_) = shop
    Review.objects.create(product=p, user=u, rating=5, approved=True)
    Review.objects.update(rating=1)
    r = Review.objects.get()
    r.rating = 2
    r.save()
    assert counts(p) == (1, 1)


def test_two_stale_copies_delete_the_same_row_once(shop):
    (u, *_), (p, *_) = shop
    Review.objects.create(product=p, user=u, rating=5, approved=True)
    r = Review.objects.create(product=p, user=u, rating=5, approved=True)
    copy1, copy2 = Review.objects.get(pk=r.pk), Review.objects.get(pk=r.pk)
    copy1.delete()
    copy2.delete()  # the row is gone: nothing to decrement
    assert counts(p) == (1, 1)
    assert drift() == {}


def test_stale_copy_saved_over_a_moved_child_moves_it_back(shop):
    (u, *_), (a, b, _) = shop
    r = Review.objects.create(product=a, user=u, rating=5, approved=True)
    stale = Review.objects.get(pk=r.pk)
    r.product = b
    r.save()
    stale.rating = 4
    stale.save()  # writes product=a again
    assert (counts(a), counts(b)) == ((1, 1), (0, 0))
    stale.approved = False
    stale.product = b
    r.delete()
    stale.save()  # the row is gone: Django inserts it again, unapproved, under b
    assert (counts(a), counts(b)) == ((0, 0), (0, 1))
    assert drift() == {}


def test_rollback_of_outer_transaction_and_of_savepoint(shop):
    (u, *_), (p, p2, _) = shop
    Review.objects.create(product=p, user=u, rating=5, approved=True)

    def create_and_move():
        with transaction.atomic():
            Review.objects.create(product=p, user=u, rating=5, approved=True)
            Review.objects.filter(product=p).update(product=p2)
            raise RuntimeError

    def delete_and_create():
        with transaction.atomic():
            Review.objects.all().delete()
            Review.objects.create(product=p2, user=u, rating=5, approved=True)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        create_and_move()
    assert (counts(p), counts(p2)) == ((1, 1), (0, 0))
    with transaction.atomic():
        Review.objects.create(product=p, user=u, rating=5, approved=True)
        with pytest.raises(RuntimeError):
            delete_and_create()  # rolls back to the savepoint
    assert (counts(p), counts(p2)) == ((2, 2), (0, 0))
    assert drift() == {}


def test_loaddata_style_raw_saves_are_left_to_the_fixture(shop):
    (u, *_), (p, *_) = shop
    r = Review(product=p, user=u, rating=1, approved=True)
    r.save_base(raw=True)
    assert counts(p) == (0, 0)  # fixtures carry their own counter values


@pytest.mark.django_db(transaction=True)
def test_every_path_in_autocommit_mode():
    """Outside a transaction: no row locks are taken, each write is still counted once."""
    u = User.objects.create(username="auto")
    a = Product.objects.create(name="a", price=1)
    b = Product.objects.create(name="b", price=1)
    r = Review.objects.create(product=a, user=u, rating=5)
    r.approved = True
    r.save()
    r.product = b
    r.save()
    Review.objects.bulk_create([Review(product=a, user=u, rating=1, approved=True)] * 1)
    Review.objects.filter(product=a).update(product=b)
    assert (counts(a), counts(b)) == ((0, 0), (2, 2))
    Review.objects.filter(pk=r.pk).delete()
    Review.objects.get().delete()
    assert counts(b) == (0, 0)
    assert drift() == {}


def test_register_counter_needs_a_model_field():
    from django_scalekit.denorm import register_counter

    with pytest.raises(TypeError, match=r"Product\.n_reviews"):
        register_counter("testapp.Product.n", "reviews")
