"""Trigger mode: every write path, raw SQL included, leaves stored == real COUNT."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader

from django_scalekit.denorm import fold, recount
from django_scalekit.denorm.counters import find
from django_scalekit.denorm.trigger import CounterTrigger, installed
from tests.test_denorm_support import drift, in_thread
from tests.testapp.models import Board, Post


def in_savepoint(fn):
    with transaction.atomic():
        fn()
        raise RuntimeError


def counts(board):
    board.refresh_from_db()
    return board.post_count, board.posts_total


@pytest.fixture
def boards():
    return [Board.objects.create(name=f"b{i}") for i in range(3)]


@pytest.mark.django_db
def test_triggers_are_installed_by_the_migration():
    for label in ("testapp.Board.post_count", "testapp.Board.posts_total"):
        (counter,) = find(label)
        assert installed(counter, "default")


@pytest.mark.django_db
def test_orm_write_paths(boards):
    a, b, c = boards
    p = Post.objects.create(board=a, published=True)
    Post.objects.create(board=a)
    assert counts(a) == (1, 2)
    p.board = b
    p.save()
    assert (counts(a), counts(b)) == ((0, 1), (1, 1))
    Post.objects.filter(pk=p.pk).update(board=c)
    assert (counts(b), counts(c)) == ((0, 0), (1, 1))
    Post.objects.filter(board=a).update(published=True)
    assert counts(a) == (1, 1)
    Post.objects.bulk_create([Post(board=b, published=i % 2 == 0) for i in range(10)])
    assert counts(b) == (5, 10)
    Post.objects.filter(board=b, published=True).delete()
    assert counts(b) == (0, 5)
    p.refresh_from_db()
    p.delete()
    assert counts(c) == (0, 0)
    assert drift() == {}


@pytest.mark.django_db
def test_raw_sql_writes(boards):
    a, b, _ = boards
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO testapp_post (board_id, published, title) "
            "SELECT %s, (i %% 2 = 0), '' FROM generate_series(1, 6) AS i",
            [a.pk],
        )
        assert counts(a) == (3, 6)
        cur.execute("UPDATE testapp_post SET board_id = %s WHERE published", [b.pk])
        assert (counts(a), counts(b)) == ((0, 3), (3, 3))
        cur.execute("UPDATE testapp_post SET published = NOT published")
        assert (counts(a), counts(b)) == ((3, 3), (0, 3))
        cur.execute("DELETE FROM testapp_post WHERE board_id = %s", [a.pk])
        assert counts(a) == (0, 0)
    assert drift() == {}  # the deferred counter's queue included
    assert fold() > 0
    assert drift() == {}


@pytest.mark.django_db
def test_cascade_and_stale_copies_and_rollback(boards):
    a, b, _ = boards
    keep = Post.objects.create(board=a, published=True)
    p = Post.objects.create(board=a, published=True)
    copy1, copy2 = Post.objects.get(pk=p.pk), Post.objects.get(pk=p.pk)
    copy1.delete()
    copy2.delete()
    assert counts(a) == (1, 1)

    def create_and_move():
        with transaction.atomic():
            Post.objects.create(board=a, published=True)
            keep.board = b
            keep.save()
            raise RuntimeError

    with pytest.raises(RuntimeError):
        create_and_move()
    assert (counts(a), counts(b)) == ((1, 1), (0, 0))
    with transaction.atomic():
        with pytest.raises(RuntimeError):
            in_savepoint(Post.objects.all().delete)
        Post.objects.create(board=b)
    assert (counts(a), counts(b)) == ((1, 1), (0, 1))
    a.delete()  # cascades to its posts
    assert drift() == {}


@pytest.mark.django_db(transaction=True)
def test_opposite_moves_and_concurrent_inserts(boards):
    a, b, _ = boards
    xs = [Post.objects.create(board=a, published=True) for _ in range(20)]
    ys = [Post.objects.create(board=b, published=True) for _ in range(20)]
    start = threading.Barrier(4)

    def mover(rows, dst):
        def run():
            start.wait(20)
            for row in rows:
                with transaction.atomic():
                    Post.objects.filter(pk=row.pk).update(board=dst)
                    time.sleep(0.002)

        return run

    def inserter():
        start.wait(20)
        for i in range(40):
            with transaction.atomic():
                Post.objects.create(board=a, published=i % 2 == 0)

    threads = [
        in_thread(mover(xs, b)),
        in_thread(mover(ys, a)),
        in_thread(inserter),
        in_thread(inserter),
    ]
    for t, errors, _ in threads:
        t.join(60)
        assert errors == []
    assert counts(a) == (60, 100)
    assert drift() == {}


@pytest.mark.django_db
def test_recount_works_for_trigger_counters(boards):
    a, *_ = boards
    Post.objects.create(board=a, published=True)
    Board.objects.filter(pk=a.pk).update(post_count=7)
    assert recount(Board.post_count).drifted == 1
    assert drift() == {}


@pytest.mark.django_db(transaction=True)
def test_migration_operation_drops_and_reinstalls():
    (counter,) = find("testapp.Board.post_count")
    loader = MigrationLoader(connection)
    before = loader.project_state(("testapp", "0001_initial"))
    after = loader.project_state(("testapp", "0002_denorm"))
    op = CounterTrigger("board", "post_count")
    try:
        with connection.schema_editor() as editor:
            op.database_backwards("testapp", editor, after, before)
        assert not installed(counter, "default")
    finally:
        with connection.schema_editor() as editor:
            op.database_forwards("testapp", editor, before, after)
    assert installed(counter, "default")
    b = Board.objects.create(name="x")
    Post.objects.create(board=b, published=True)
    assert counts(b) == (1, 1)
    assert op.describe()
    assert op.deconstruct() == ("CounterTrigger", ["board", "post_count"], {})
