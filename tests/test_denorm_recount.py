"""Recount: set-based batches that fix drift, honour the filter and never lose a write."""

from __future__ import annotations

import io
import threading
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from django_scalekit.denorm import recount
from tests.test_denorm_support import drift, in_thread, pause_before
from tests.testapp.models import Product, Review, User


def make_shop(n_products=5):
    u = User.objects.create(username="u")
    products = [Product.objects.create(name=f"p{i}", price=1) for i in range(n_products)]
    for i, p in enumerate(products[:-1]):  # the last one has no reviews
        for j in range(i + 1):
            Review.objects.create(product=p, user=u, rating=1, approved=j % 2 == 0)
    return u, products


def inject_drift(products):
    with connection.cursor() as c:
        c.execute(
            'UPDATE "testapp_product" SET "review_count" = 99 WHERE "id" IN (%s, %s)',
            [products[0].pk, products[-1].pk],
        )


def stored(products):
    return [p.review_count for p in Product.objects.filter(pk__in=[p.pk for p in products])]


@pytest.mark.django_db
def test_recount_fixes_drift_honours_the_filter_and_zeroes_childless_parents():
    _, products = make_shop()
    inject_drift(products)
    assert set(drift()) == {"Product.review_count"}
    result = recount(Product.review_count, batch_size=2)
    assert result.drifted == 2
    assert result.rows == [(products[0].pk, 99, 1), (products[-1].pk, 99, 0)]
    assert (result.parents, result.batches) == (5, 3)
    assert drift() == {}
    assert recount(Product.review_count).drifted == 0


@pytest.mark.django_db
def test_dry_run_reports_and_changes_nothing():
    _, products = make_shop()
    inject_drift(products)
    before = stored(products)
    result = recount("testapp.Product.review_count", dry_run=True)
    assert result.dry_run
    assert result.drifted == 2
    assert stored(products) == before


@pytest.mark.django_db
def test_one_count_per_batch_and_an_update_only_where_drifted(queries):
    _, products = make_shop(6)
    inject_drift(products)  # the first and the last product: batches 1 and 3 of 3
    with queries("default") as c:
        result = recount(Product.review_count, batch_size=2)
    counts = [q for q in c.queries("default") if "GROUP BY" in q]
    updates = [q for q in c.queries("default") if q.startswith("UPDATE")]
    assert len(counts) == result.batches == 3
    assert all(q.startswith("SELECT") for q in counts)
    assert len(updates) == 2
    assert all("GROUP BY" not in q for q in updates)
    with queries("default") as c:
        assert recount(Product.review_count, batch_size=2).drifted == 0
    assert not [q for q in c.queries("default") if q.startswith("UPDATE")]


@pytest.mark.django_db
def test_command_recounts_all_or_named_counters():
    _, products = make_shop()
    inject_drift(products)
    out = io.StringIO()
    call_command("scalekit_recount", "testapp.Product.review_count", "--dry-run", stdout=out)
    assert "would fix 2 drifted" in out.getvalue()
    assert f"{products[0].pk}: stored 99, real 1" in out.getvalue()
    assert drift() != {}
    out = io.StringIO()
    call_command("scalekit_recount", stdout=out)
    assert "testapp.Product.review_count: 5 parents in 1 batches, fixed 2 drifted" in out.getvalue()
    assert "testapp.User.approved_reviews" in out.getvalue()
    assert drift() == {}


@pytest.mark.django_db
def test_command_names_the_counters_when_a_label_is_wrong():
    with pytest.raises(CommandError, match=r"testapp\.Product\.review_count"):
        call_command("scalekit_recount", "testapp.Product.nope")


@pytest.mark.django_db(transaction=True)
def test_celery_task_recounts(celery_worker):
    from django_scalekit.denorm.tasks import recount_task

    _, products = make_shop()
    inject_drift(products)
    result = recount_task.delay("testapp.Product.review_count", batch_size=2).get(timeout=20)
    assert result["drifted"] == 2
    assert drift() == {}


@pytest.mark.django_db(transaction=True)
def test_recount_waits_for_a_writer_that_already_incremented():
    u, products = make_shop(2)
    p = products[0]
    incremented, go = threading.Event(), threading.Event()

    def writer():
        with transaction.atomic():
            Review.objects.create(product=p, user=u, rating=1, approved=True)
            incremented.set()  # counter +1 and review row, both uncommitted
            assert go.wait(20)

    tw, ew, _ = in_thread(writer)
    assert incremented.wait(20)
    tr, er, results = in_thread(lambda: recount(Product.review_count))
    time.sleep(0.3)
    assert tr.is_alive(), "recount must wait for the writer's row lock on the parent"
    go.set()
    tw.join(20)
    tr.join(20)
    assert ew == er == []
    assert results[0].drifted == 0
    assert drift() == {}


@pytest.mark.django_db(transaction=True)
def test_recount_between_a_writers_insert_and_its_increment():
    u, products = make_shop(2)
    p = products[0]
    reached, go = threading.Event(), threading.Event()

    def writer():
        is_increment = lambda sql: sql.lstrip().startswith('UPDATE "testapp_product"')  # noqa: E731
        with transaction.atomic(), pause_before(is_increment, reached, go):
            Review.objects.create(product=p, user=u, rating=1, approved=True)

    tw, ew, _ = in_thread(writer)
    assert reached.wait(20)  # the review row exists, uncommitted; the counter is not yet +1
    result = recount(Product.review_count)  # counts without the row; the +1 comes after
    go.set()
    tw.join(20)
    assert ew == []
    assert result.drifted == 0
    assert drift() == {}


@pytest.mark.django_db(transaction=True)
def test_recount_running_during_random_writes_loses_nothing():
    u, products = make_shop(4)
    stop = threading.Event()

    def writer(n):
        def run():
            i = 0
            while not stop.is_set():
                i += 1
                # One write per transaction, as with ATOMIC_REQUESTS. (In autocommit,
                # save() commits the row before its counter: see the docs.)
                with transaction.atomic():
                    r = Review.objects.create(
                        product=products[(n + i) % 4], user=u, rating=1, approved=i % 2 == 0
                    )
                if i % 3 == 0:
                    Review.objects.filter(pk=r.pk).update(product=products[i % 4])
                if i % 5 == 0:
                    r.delete()

        return run

    writers = [in_thread(writer(n)) for n in range(4)]
    for _ in range(15):
        recount(Product.review_count, batch_size=2)
        recount(Product.reviews_total, batch_size=3)
    stop.set()
    for t, errors, _ in writers:
        t.join(20)
        assert errors == []
    assert drift() == {}


@pytest.mark.django_db(transaction=True)
def test_recount_one_million_children():
    u = User.objects.create(username="big")
    with connection.cursor() as c:
        c.execute(
            'INSERT INTO "testapp_product" (sku, name, price, active, created, review_count, '
            "reviews_total) SELECT gen_random_uuid(), 'p' || i, 1, true, now(), 0, 0 "
            "FROM generate_series(1, 10000) AS i"
        )
        c.execute(
            'INSERT INTO "testapp_review" (product_id, user_id, rating, body, approved, created) '
            "SELECT p.id, %s, 1, '', (i %% 7 = 0), now() FROM generate_series(1, 1000000) AS i "
            "JOIN \"testapp_product\" p ON p.name = 'p' || (i %% 9000 + 1)",
            [u.pk],
        )
        c.execute("ANALYZE testapp_review")
    started = time.monotonic()
    result = recount(Product.review_count, batch_size=1000)
    assert result.batches == 10
    assert result.drifted == 9000  # every parent with reviews; 1000 have none and stay 0
    assert drift().get("Product.review_count") is None
    assert Product.objects.filter(review_count=0).count() == 1000
    again = recount(Product.review_count, batch_size=1000)
    assert again.drifted == 0
    assert time.monotonic() - started < 120
