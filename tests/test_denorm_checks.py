"""System checks for declared counters, by id; and the field's migration round trip."""

from __future__ import annotations

import pytest
from django.core import checks
from django.db import models
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.test.utils import isolate_apps

from django_scalekit.denorm import CounterField, CounterQuerySet
from django_scalekit.denorm.checks import check_counter, check_counters, check_modes
from django_scalekit.denorm.counters import Counter, all_counters, find
from tests.testapp.models import Board, Event, Product, Review, User


def ids(errors: list[checks.CheckMessage]) -> list[str]:
    return [e.id for e in errors]


def review_counter(**kwargs):
    defaults = dict(
        parent=Product,
        field_name="review_count",
        relation="reviews",
        child=Review,
        fk=Review._meta.get_field("product"),
    )
    return Counter(**{**defaults, **kwargs})


def test_the_test_apps_counters_pass_and_are_wired():
    assert check_counters() == []
    labels = {c.label for c in all_counters()}
    assert {
        "testapp.Product.review_count",
        "testapp.Product.reviews_total",
        "testapp.User.approved_reviews",
        "testapp.Board.post_count",
    } <= labels
    (user_counter,) = find("testapp.User.approved_reviews")
    assert user_counter.child is Review
    assert user_counter.fk is Review._meta.get_field("user")


def test_registered_with_django():
    assert check_counters in checks.registry.registry.get_checks()


def test_e031_relation_that_does_not_exist():
    errors = check_counter(Counter(parent=Product, field_name="review_count", relation="revues"))
    assert ids(errors) == ["django_scalekit.E031"]
    assert "reviews" in errors[0].hint  # names the relations that exist


@pytest.mark.parametrize(
    ("q", "says"),
    [
        (Q(product__active=True), "follows a relation"),
        (Q(stars=5), "not valid on testapp.Review"),
        (Q(pk__in=User.objects.values("pk")), "query on another table"),
        (Q(rating__in=RawSQL('SELECT "id" FROM "testapp_user"', [])), "reads other rows"),
    ],
)
def test_e032_filter_on_another_model_or_unknown_field(q, says):
    errors = check_counter(review_counter(filter=q))
    assert ids(errors) == ["django_scalekit.E032"]
    assert says in errors[0].msg


def test_e033_child_manager_without_counter_queryset():
    counter = Counter(
        parent=User,
        field_name="approved_reviews",
        relation="events",
        child=Event,
        fk=Event._meta.get_field("user"),
        mode="signals",
    )
    errors = check_counter(counter)
    assert ids(errors) == ["django_scalekit.E033"]
    assert "CounterQuerySet.as_manager()" in errors[0].hint


def test_e034_unknown_mode():
    assert ids(check_counter(review_counter(mode="eventually"))) == ["django_scalekit.E034"]


def test_e038_trigger_and_commit_counters_of_one_parent_and_child():
    trigger = review_counter(mode="trigger")
    errors = check_modes([trigger, review_counter(field_name="reviews_total", mode="commit")])
    assert ids(errors) == ["django_scalekit.E038"]
    assert "testapp.Product" in errors[0].msg
    assert "same mode" in (errors[0].hint or "")
    deferred = review_counter(field_name="reviews_total", mode="deferred")
    assert check_modes([trigger, deferred]) == []


def test_e037_not_an_integer_column():
    errors = check_counter(review_counter(field_name="name"))
    assert ids(errors) == ["django_scalekit.E037"]


@isolate_apps("tests.testapp")
def test_e036_on_delete_that_moves_children_without_signals():
    class Shelf(models.Model):
        n = CounterField("books")

        class Meta:
            app_label = "testapp"

        def __str__(self) -> str:
            return "shelf"

    class Book(models.Model):
        shelf = models.ForeignKey(
            Shelf, on_delete=models.SET_DEFAULT, default=1, related_name="books"
        )
        objects = CounterQuerySet.as_manager()

        class Meta:
            app_label = "testapp"

        def __str__(self) -> str:
            return "book"

    counter = Counter(
        parent=Shelf, field_name="n", relation="books", child=Book, fk=Book._meta.get_field("shelf")
    )
    assert ids(check_counter(counter)) == ["django_scalekit.E036"]
    # Models of isolated registries are never wired to the real one.
    assert all(c.parent is not Shelf for c in all_counters())


def test_field_deconstructs_for_migrations():
    field = Product._meta.get_field("review_count")
    _name, path, args, kwargs = field.deconstruct()
    assert path == "django_scalekit.denorm.CounterField"
    assert args == ["reviews"]
    assert kwargs == {"filter": Q(approved=True, deleted_at__isnull=True)}
    clone = CounterField(*args, **kwargs)
    assert (clone.relation, clone.filter, clone.mode, clone.default) == (
        "reviews",
        field.filter,
        "signals",
        0,
    )
    assert Board._meta.get_field("post_count").deconstruct()[3]["mode"] == "trigger"


@pytest.mark.django_db
def test_no_missing_migrations():
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("makemigrations", "testapp", "--check", "--dry-run", stdout=out)
