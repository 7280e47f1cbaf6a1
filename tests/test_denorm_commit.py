"""Commit mode: trigger-mode exactness, with the parent row locked only while committing."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection, transaction

from django_scalekit.denorm import recount
from django_scalekit.denorm.counters import find
from django_scalekit.denorm.trigger import installed
from tests.test_denorm_support import drift, in_thread
from tests.testapp.models import Forum, Topic

pytestmark = pytest.mark.django_db(transaction=True)  # the counters move at COMMIT


def in_savepoint(fn):
    """``fn()`` in an atomic block (a savepoint when nested) that is then rolled back."""
    with transaction.atomic():
        fn()
        raise RuntimeError


def counts(forum):
    forum.refresh_from_db()
    return forum.topic_count, forum.topics_total


@pytest.fixture
def forums():
    return [Forum.objects.create(name=f"f{i}") for i in range(3)]


def test_triggers_are_installed_by_the_migration():
    for label in ("testapp.Forum.topic_count", "testapp.Forum.topics_total"):
        (counter,) = find(label)
        assert counter.mode == "commit"
        assert installed(counter, "default")


def test_orm_write_paths(forums):
    a, b, c = forums
    t = Topic.objects.create(forum=a, open=True)
    Topic.objects.create(forum=a)
    assert counts(a) == (1, 2)
    t.forum = b
    t.save()
    assert (counts(a), counts(b)) == ((0, 1), (1, 1))
    Topic.objects.filter(pk=t.pk).update(forum=c)
    assert (counts(b), counts(c)) == ((0, 0), (1, 1))
    Topic.objects.filter(forum=a).update(open=True)
    assert counts(a) == (1, 1)
    Topic.objects.filter(pk=t.pk).update(forum=None)
    assert counts(c) == (0, 0)
    Topic.objects.filter(pk=t.pk).update(forum=c)
    Topic.objects.bulk_create([Topic(forum=b, open=i % 2 == 0) for i in range(10)])
    assert counts(b) == (5, 10)
    Topic.objects.filter(forum=b, open=True).delete()
    assert counts(b) == (0, 5)
    Topic.objects.filter(title="").update(title="x")  # no count changes: nothing queued
    t.refresh_from_db()
    t.delete()
    assert counts(c) == (0, 0)
    b.delete()  # cascades to its topics
    assert drift() == {}


def test_raw_sql_writes(forums):
    a, b, _ = forums
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO testapp_topic (forum_id, open, title) "
            "SELECT %s, (i %% 2 = 0), '' FROM generate_series(1, 6) AS i",
            [a.pk],
        )
        assert counts(a) == (3, 6)
        cur.execute("UPDATE testapp_topic SET forum_id = %s WHERE open", [b.pk])
        assert (counts(a), counts(b)) == ((0, 3), (3, 3))
        cur.execute("UPDATE testapp_topic SET open = NOT open")
        assert (counts(a), counts(b)) == ((3, 3), (0, 3))
        cur.execute("DELETE FROM testapp_topic WHERE forum_id = %s", [a.pk])
        assert counts(a) == (0, 0)
    assert drift() == {}


def test_the_count_moves_at_commit_and_rollbacks_leave_it(forums):
    a, b, _ = forums
    with transaction.atomic():
        Topic.objects.create(forum=a, open=True)
        Topic.objects.create(forum=b)
        # inside the writing transaction the stored counter still shows the old value
        assert counts(a) == (0, 0)
        with pytest.raises(RuntimeError):
            in_savepoint(
                lambda: (
                    Topic.objects.create(forum=a, open=True),
                    Topic.objects.filter(forum=b).update(forum=a),
                )
            )
        Topic.objects.create(forum=a)
    assert (counts(a), counts(b)) == ((1, 2), (0, 1))

    with pytest.raises(RuntimeError):
        in_savepoint(
            lambda: (
                Topic.objects.create(forum=a, open=True),
                Topic.objects.filter(forum=a).delete(),
            )
        )
    assert (counts(a), counts(b)) == ((1, 2), (0, 1))
    assert drift() == {}


def test_set_constraints_immediate_applies_each_statement(forums):
    """With IMMEDIATE the row events fire before the statement trigger; nothing is lost."""
    a, b, _ = forums
    with transaction.atomic():
        Topic.objects.create(forum=a, open=True)  # deferred: pending
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # fires the pending sum
        assert counts(a) == (1, 1)
        Topic.objects.create(forum=a, open=True)  # applied by the statement itself
        assert counts(a) == (2, 2)
        Topic.objects.filter(forum=a).update(forum=b)
        assert (counts(a), counts(b)) == ((0, 0), (2, 2))
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
        Topic.objects.create(forum=b)
        Topic.objects.create(forum=a, open=True)
    assert (counts(a), counts(b)) == ((1, 1), (2, 3))
    # Django's TestCase checks constraints the same way at its end; a stale marker
    # only makes later statements apply at once, which is still exact
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
        Topic.objects.create(forum=a)
    assert drift() == {}


def test_a_hot_parent_is_not_locked_until_the_writer_commits(forums):
    a, *_ = forums
    inserted, release = threading.Event(), threading.Event()

    def slow_writer():
        with transaction.atomic():
            Topic.objects.create(forum=a, open=True)
            inserted.set()
            assert release.wait(20)

    t, errors, _ = in_thread(slow_writer)
    assert inserted.wait(20)
    try:
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SET LOCAL lock_timeout = '2s'")
            Topic.objects.create(forum=a, open=True)  # trigger mode would wait here
            Forum.objects.filter(pk=a.pk).update(name="renamed")  # and here
    finally:
        release.set()
        t.join(20)
    assert errors == []
    assert counts(a) == (2, 2)


def test_opposite_orders_and_moves_do_not_deadlock(forums):
    a, b, c = forums
    xs = [Topic.objects.create(forum=a, open=True) for _ in range(15)]
    ys = [Topic.objects.create(forum=b, open=True) for _ in range(15)]
    start = threading.Barrier(4)

    def mover(rows, dst):
        def run():
            start.wait(20)
            for row in rows:
                with transaction.atomic():
                    Topic.objects.filter(pk=row.pk).update(forum=dst)
                    time.sleep(0.002)

        return run

    def inserter(order):
        def run():
            start.wait(20)
            for i in range(30):
                with transaction.atomic():  # several parents, in opposite orders
                    for forum in order:
                        Topic.objects.create(forum=forum, open=i % 2 == 0)
                    time.sleep(0.001)

        return run

    threads = [
        in_thread(mover(xs, b)),
        in_thread(mover(ys, a)),
        in_thread(inserter([a, b, c])),
        in_thread(inserter([c, b, a])),
    ]
    for t, errors, _ in threads:
        t.join(60)
        assert not [e for e in errors if isinstance(e, OperationalError)], errors
        assert errors == []
    assert counts(a) == (15 + 30, 15 + 60)
    assert drift() == {}


def test_recount_and_mode_switches(forums):
    a, *_ = forums
    Topic.objects.create(forum=a, open=True)
    Forum.objects.filter(pk=a.pk).update(topic_count=7)
    assert recount(Forum.topic_count).drifted == 1
    assert drift() == {}
