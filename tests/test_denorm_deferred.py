"""Deferred mode: a trigger queues the deltas of every write, fold() applies them exactly once."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
import traceback

import pytest
from django.db import connection, connections, transaction

from django_scalekit.denorm import fold, pending, recount
from django_scalekit.denorm.counters import find
from django_scalekit.denorm.trigger import installed
from tests.test_denorm_support import drift, in_thread
from tests.testapp.models import Board, Post


def stored(board):
    board.refresh_from_db()
    return board.posts_deferred


@pytest.fixture
def boards():
    return [Board.objects.create(name=f"b{i}") for i in range(3)]


@pytest.mark.django_db
def test_writes_queue_deltas_and_fold_applies_them(boards):
    a, b, c = boards
    p = Post.objects.create(board=a, published=True)
    Post.objects.create(board=a, published=False)
    assert stored(a) == 0  # not yet folded
    assert pending(Board.posts_deferred, a.pk) == 1
    assert drift() == {}  # stored + pending is exact at every moment
    p.board = b
    p.save()
    Post.objects.filter(board=a).update(published=True)
    Post.objects.bulk_create([Post(board=c, published=True) for _ in range(5)])
    Post.objects.filter(pk__in=Post.objects.filter(board=c).values("pk")[:2]).delete()
    assert drift() == {}
    assert fold(Board.posts_deferred) > 0
    assert (stored(a), stored(b), stored(c)) == (1, 1, 3)
    assert pending(Board.posts_deferred, a.pk) == 0
    assert drift() == {}
    assert fold() == 0  # nothing left


@pytest.mark.django_db
def test_the_queue_trigger_is_installed_and_an_insert_costs_no_extra_statement(boards, queries):
    (counter,) = find("testapp.Board.posts_deferred")
    assert installed(counter, "default")
    with queries("default") as c:
        Post.objects.create(board=boards[0], published=True)
    assert [q.split()[0] for q in c.queries("default")] == ["INSERT"]
    assert pending(Board.posts_deferred, boards[0].pk) == 1


@pytest.mark.django_db
def test_rollback_queues_nothing(boards):
    a, *_ = boards

    def create_and_fail():
        with transaction.atomic():
            Post.objects.create(board=a, published=True)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        create_and_fail()
    assert pending(Board.posts_deferred, a.pk) == 0


@pytest.mark.django_db
def test_recount_clears_the_queue_of_its_batch(boards):
    a, b, _ = boards
    for _ in range(3):
        Post.objects.create(board=a, published=True)
    Board.objects.filter(pk=b.pk).update(posts_deferred=9)
    dry = recount(Board.posts_deferred, dry_run=True)
    assert [row[0] for row in dry.rows] == [b.pk]  # a's queue makes it exact
    assert recount(Board.posts_deferred).drifted == 2
    assert (stored(a), stored(b)) == (3, 0)
    assert pending(Board.posts_deferred, a.pk) == 0
    assert fold() == 0
    assert drift() == {}


@pytest.mark.django_db(transaction=True)
def test_eight_writers_on_one_hot_parent_with_folds_running(boards):
    hot, *_ = boards
    start = threading.Barrier(8)
    stop = threading.Event()

    def writer(n):
        def run():
            start.wait(20)
            for i in range(25):
                with transaction.atomic():
                    post = Post.objects.create(board=hot, published=(i + n) % 2 == 0)
                    if i % 5 == 0:
                        post.delete()

        return run

    def folder():
        while not stop.is_set():
            fold(Board.posts_deferred, batch_size=7)

    tf, ef, _ = in_thread(folder)
    writers = [in_thread(writer(n)) for n in range(8)]
    for t, errors, _ in writers:
        t.join(60)
        assert errors == []
    stop.set()
    tf.join(20)
    assert ef == []
    fold()
    assert stored(hot) == Post.objects.filter(board=hot, published=True).count()
    assert drift() == {}


@pytest.mark.django_db(transaction=True)
def test_a_folder_killed_mid_batch_loses_nothing(boards):
    hot, *_ = boards
    for i in range(40):
        Post.objects.create(board=hot, published=i % 4 != 0)
    reached, go = threading.Event(), threading.Event()
    pids = []

    def doomed_folder():
        with connections["default"].cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pids.append(cur.fetchone()[0])
        # Pause after the fold statement ran, before its transaction commits.
        with transaction.atomic():
            fold(Board.posts_deferred, batch_size=15)
            reached.set()
            go.wait(20)

    t, errors, _ = in_thread(doomed_folder)
    assert reached.wait(20)
    with connection.cursor() as cur:  # the worker dies: its backend goes away
        cur.execute("SELECT pg_terminate_backend(%s)", [pids[0]])
    go.set()
    t.join(20)
    assert errors  # the dead folder's commit failed
    assert stored(hot) == 0
    assert pending(Board.posts_deferred, hot.pk) == 30
    assert fold(Board.posts_deferred, batch_size=15) == 30  # one +1 per published post
    assert stored(hot) == 30
    assert drift() == {}


@pytest.mark.django_db(transaction=True)
def test_eight_writer_processes_and_folder_processes_killed_mid_batch(boards):
    """Folders die by SIGKILL (a worker's process killed) after their fold statement ran,
    before it committed, while 8 writer processes write under one parent."""
    hot, *_ = boards
    ctx = multiprocessing.get_context("fork")
    connections.close_all()  # children must not share the parent's sockets
    start = ctx.Barrier(9)

    def writer(seed):
        rnd = random.Random(seed)
        start.wait(20)
        for i in range(60):
            with transaction.atomic():
                post = Post.objects.create(board_id=hot.pk, published=rnd.random() < 0.7)
                if i % 4 == 0:
                    Post.objects.filter(pk=post.pk).update(published=not post.published)
                if i % 5 == 0:
                    post.delete()

    def doomed_folder(sender):
        with transaction.atomic():
            sender.send(fold(Board.posts_deferred, batch_size=10))
            time.sleep(60)  # killed here, holding its uncommitted batch

    writers = [ctx.Process(target=_child, args=(writer, n), daemon=True) for n in range(8)]
    for w in writers:
        w.start()
    start.wait(20)
    killed = while_writing = 0
    while killed < 5:
        receiver, sender = ctx.Pipe(duplex=False)
        folder = ctx.Process(target=_child, args=(doomed_folder, sender), daemon=True)
        folder.start()
        assert receiver.poll(30), "the folder never reached its batch"
        if receiver.recv():  # it folded something, uncommitted
            killed += 1
            while_writing += any(w.is_alive() for w in writers)
        os.kill(folder.pid, signal.SIGKILL)
        folder.join(10)
    assert while_writing > 0
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    fold()  # what the next beat run does: the killed batches were never applied
    assert stored(hot) == Post.objects.filter(board=hot, published=True).count()
    assert pending(Board.posts_deferred, hot.pk) == 0
    assert drift() == {}


def _child(fn, arg):
    """A forked child's body: leave through ``os._exit`` so no exit handler of pytest runs."""
    code = 1
    try:
        fn(arg)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        connections.close_all()
        os._exit(code)


@pytest.mark.django_db(transaction=True)
def test_celery_fold_task(celery_worker, boards):
    from django_scalekit.denorm.tasks import fold_task

    a, *_ = boards
    Post.objects.create(board=a, published=True)
    assert fold_task.delay().get(timeout=20) == 1
    assert stored(a) == 1


@pytest.mark.django_db(transaction=True)
def test_autocommit_writes_queue_deltas_too(boards):
    a, b, _ = boards
    p = Post.objects.create(board=a, published=True)
    p.board = b
    p.save()
    Post.objects.filter(pk=p.pk).update(published=False)
    Post.objects.create(board=a, published=True).delete()
    assert drift() == {}
    fold()
    assert (stored(a), stored(b)) == (0, 0)
    assert drift() == {}
