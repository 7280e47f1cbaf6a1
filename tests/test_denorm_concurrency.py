"""Signals mode under concurrent transactions: exact interleavings, then a random stress run."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from tests.test_denorm_support import drift, in_processes, in_thread, pause_before
from tests.testapp.models import Product, Review, User

pytestmark = pytest.mark.django_db(transaction=True)


def parent_write(sql: str) -> bool:
    """The first statement that touches a product row's counter (lock or update)."""
    sql = sql.lstrip()
    return sql.startswith('UPDATE "testapp_product"') or (
        sql.startswith("SELECT") and 'FROM "testapp_product"' in sql and "FOR NO KEY UPDATE" in sql
    )


@pytest.fixture
def shop():
    users = [User.objects.create(username=f"u{i}") for i in range(4)]
    products = [Product.objects.create(name=f"p{i}", price=1) for i in range(4)]
    return users, products


def test_two_stale_copies_deleting_concurrently_decrement_once(shop):
    (u, *_), (p, *_) = shop
    Review.objects.create(product=p, user=u, rating=5, approved=True)
    r = Review.objects.create(product=p, user=u, rating=5, approved=True)
    copy1, copy2 = Review.objects.get(pk=r.pk), Review.objects.get(pk=r.pk)
    deleted, go = threading.Event(), threading.Event()

    def first():
        with transaction.atomic():
            copy1.delete()
            deleted.set()
            assert go.wait(20)

    t1, e1, _ = in_thread(first)
    assert deleted.wait(20)
    t2, e2, _ = in_thread(copy2.delete)
    time.sleep(0.3)
    assert t2.is_alive(), "the second delete should wait for the first one's row lock"
    go.set()
    t1.join(20)
    t2.join(20)
    assert e1 == e2 == []
    p.refresh_from_db()
    assert (p.review_count, p.reviews_total) == (1, 1)
    assert drift() == {}


@pytest.mark.parametrize("path", ["save", "queryset"])
def test_opposite_moves_at_the_same_time_do_not_deadlock(shop, path):
    users, (a, b, c, d) = shop
    x = [Review.objects.create(product=a, user=users[0], rating=1, approved=True) for _ in range(2)]
    y = [Review.objects.create(product=b, user=users[1], rating=1, approved=True) for _ in range(2)]
    Review.objects.create(product=c, user=users[2], rating=1, approved=True)
    Review.objects.create(product=d, user=users[3], rating=1, approved=True)
    reached = [threading.Event(), threading.Event()]
    go = threading.Event()

    def move(i, rows, src, dst):
        def run():
            with transaction.atomic(), pause_before(parent_write, reached[i], go):
                if path == "save":
                    row = Review.objects.get(pk=rows[0].pk)
                    row.product = dst
                    row.save()
                else:  # three parents: takes the set-based lock path
                    Review.objects.filter(product__in=src).update(product=dst)

        return run

    t1, e1, _ = in_thread(move(0, x, [a, c], b))  # A -> B
    t2, e2, _ = in_thread(move(1, y, [b, d], a))  # B -> A
    # Both children are moved (and hold their foreign key locks) before either
    # adjusts a parent: the interleaving in which a bad lock order deadlocks.
    assert reached[0].wait(20)
    assert reached[1].wait(20)
    go.set()
    t1.join(30)
    t2.join(30)
    assert e1 == e2 == []
    assert drift() == {}


def test_eight_concurrent_transactions_on_one_parent(shop):
    users, (p, *_) = shop
    start = threading.Barrier(8)

    def writer(n):
        def run():
            start.wait(20)
            for i in range(10):
                with transaction.atomic():
                    Review.objects.create(
                        product=p, user=users[n % 4], rating=1, approved=(i + n) % 2 == 0
                    )
                    time.sleep(0.001)

        return run

    threads = [in_thread(writer(n)) for n in range(8)]
    for t, errors, _ in threads:
        t.join(60)
        assert errors == []
    p.refresh_from_db()
    assert p.reviews_total == 80
    assert p.review_count == 40
    assert drift() == {}


OPS = int(os.environ.get("SCALEKIT_DENORM_STRESS_OPS", "10000"))


def test_random_stress_zero_drift(shop):
    """8 writer processes, random creates/deletes/moves/approvals over every write path."""
    users, products = shop
    per_writer = OPS // 8

    def writer(seed):
        rnd = random.Random(seed)
        deadlocks = 0
        for _ in range(per_writer):
            try:
                with transaction.atomic():
                    _random_op(rnd, users, products)
            except OperationalError as exc:  # pragma: no cover - would fail the test
                if "deadlock" not in str(exc):
                    raise
                deadlocks += 1
            except DatabaseError as exc:
                # Another writer deleted the row this one was saving: Django's own
                # outcome for that race, and the transaction rolls back.
                if "did not affect any rows" not in str(exc):
                    raise
        return deadlocks

    assert sum(in_processes(writer, list(range(8)), timeout=900)) == 0
    assert drift() == {}
    assert Review.objects.exists()
    connection.close()


def _random_op(rnd, users, products):
    op = rnd.random()
    bounds = Review.objects.aggregate(lo=Min("pk"), hi=Max("pk"))
    ids = []
    if bounds["lo"] is not None:
        start = rnd.randint(bounds["lo"], bounds["hi"])
        ids = list(
            Review.objects.filter(pk__gte=start).order_by("pk").values_list("pk", flat=True)[:3]
        )
    if op < 0.30 or not ids:
        Review.objects.create(
            product=rnd.choice(products),
            user=rnd.choice(users),
            rating=1,
            approved=rnd.random() < 0.5,
        )
    elif op < 0.40:
        Review.objects.bulk_create(
            [
                Review(product=rnd.choice(products), user=rnd.choice(users), rating=2)
                for _ in range(3)
            ]
        )
    elif op < 0.50:
        for r in Review.objects.select_for_update().filter(pk=ids[0]):
            r.delete()
    elif op < 0.55:
        Review.objects.filter(pk__in=ids).delete()
    elif op < 0.70:
        for r in Review.objects.select_for_update().filter(pk=ids[0]):
            r.product = rnd.choice(products)
            r.approved = rnd.random() < 0.5
            r.save()
    elif op < 0.80:
        Review.objects.filter(pk__in=ids).update(product=rnd.choice(products))
    elif op < 0.90:
        Review.objects.filter(pk__in=ids).update(approved=rnd.random() < 0.5)
    elif op < 0.95:
        for r in Review.objects.select_for_update().filter(pk=ids[0]):
            r.deleted_at = None if r.deleted_at else timezone.now()
            r.save(update_fields=["deleted_at"])
    else:
        Review.objects.filter(pk__in=ids).update(user=rnd.choice(users), approved=True)


def test_random_stress_trigger_and_deferred_zero_drift():
    """8 writers on Post (trigger and deferred counters on Board), raw SQL included, with
    fold() running all along."""
    from django_scalekit.denorm import fold
    from tests.testapp.models import Board, Post

    boards = [Board.objects.create(name=f"b{i}") for i in range(4)]
    per_thread = OPS // 8
    stop = threading.Event()

    def writer(seed):
        return _writer(seed, per_thread, lambda rnd: _random_post_op(rnd, boards, Post))

    def folder():
        while not stop.is_set():
            fold(batch_size=50)
            time.sleep(0.01)

    tf, ef, _ = in_thread(folder)
    threads = [in_thread(writer(seed)) for seed in range(8)]
    for t, errors, _ in threads:
        t.join(600)
        assert errors == []
    stop.set()
    tf.join(20)
    assert ef == []
    assert drift() == {}
    fold()
    assert drift() == {}
    assert Post.objects.exists()


def _random_post_op(rnd, boards, Post):
    _random_child_op(rnd, boards, Post, "board", "published")


def _random_child_op(rnd, parents, Child, fk, flag):
    """One random write to ``Child`` (its foreign key ``fk``, counted flag ``flag``)."""
    parent = rnd.choice(parents)
    table = Child._meta.db_table
    bounds = Child.objects.aggregate(lo=Min("pk"), hi=Max("pk"))
    pk = rnd.randint(bounds["lo"], bounds["hi"]) if bounds["lo"] is not None else None
    rows = Child.objects.select_for_update().filter(pk__gte=pk or 0).order_by("pk")[:1]
    op = rnd.random()
    if op < 0.3 or pk is None:
        Child.objects.create(**{fk: parent, flag: rnd.random() < 0.5})
    elif op < 0.4:
        Child.objects.bulk_create([Child(**{fk: parent, flag: True}) for _ in range(3)])
    elif op < 0.5:
        for row in rows:
            row.delete()
    elif op < 0.6:
        for row in rows:
            setattr(row, fk, parent)
            setattr(row, flag, not getattr(row, flag))
            row.save()
    elif op < 0.7:
        Child.objects.filter(pk__gte=pk, pk__lt=pk + 3).update(**{fk: parent})
    elif op < 0.8:
        Child.objects.filter(pk__gte=pk, pk__lt=pk + 3).delete()
    elif op < 0.9:
        # Other programs' writes: the triggers see them.
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {table} ({fk}_id, {flag}, title) VALUES (%s, %s, '')",
                [parent.pk, rnd.random() < 0.5],
            )
    else:
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {table} SET {fk}_id = %s, {flag} = NOT {flag} WHERE id = %s",
                [parent.pk, pk],
            )


def test_random_stress_commit_mode_zero_drift():
    """8 writers on Topic (two commit-mode counters on Forum). Each transaction makes one
    random write, then inserts under two random parents, so transactions touch several
    parents in several statements, in random orders: no deadlock (the parents are locked
    at commit, in key order), and zero drift once they are done. More random writes per
    transaction would deadlock on the child rows they lock, counters or not."""
    from tests.testapp.models import Forum, Topic

    forums = [Forum.objects.create(name=f"f{i}") for i in range(4)]

    def transaction_body(rnd):
        _random_child_op(rnd, forums, Topic, "forum", "open")
        for forum in rnd.sample(forums, 2):
            Topic.objects.create(forum=forum, open=rnd.random() < 0.5)

    threads = [in_thread(_writer(seed, OPS // 8 // 3, transaction_body)) for seed in range(8)]
    for t, errors, _ in threads:
        t.join(600)
        assert errors == []
    assert drift() == {}
    assert Topic.objects.exists()


def _writer(seed, transactions, body):
    """A thread body: ``transactions`` atomic blocks each running ``body(rnd)``; a row
    deleted by another writer under a save is not an error."""

    def run():
        rnd = random.Random(seed)
        for _ in range(transactions):
            try:
                with transaction.atomic():
                    body(rnd)
            except DatabaseError as exc:
                if "did not affect any rows" not in str(exc):
                    raise

    return run
