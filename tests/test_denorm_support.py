"""Shared helpers for the counter tests: the real counts, computed independently."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, connections
from django.db.models import Count, Q
from django.db.models.expressions import RawSQL

from tests.testapp.models import Board, Forum, Product, User


def drift() -> dict[str, dict[int, tuple[int, int]]]:
    """Counters whose stored value differs from a real COUNT: {counter: {pk: (stored, real)}}."""
    out: dict[str, dict[int, tuple[int, int]]] = {}

    def add(name: str, rows: Any) -> None:
        bad = {pk: (stored, real) for pk, stored, real in rows if stored != real}
        if bad:
            out[name] = bad

    approved = Q(reviews__approved=True, reviews__deleted_at__isnull=True)
    add(
        "Product.review_count",
        Product.objects.annotate(real=Count("reviews", filter=approved)).values_list(
            "pk", "review_count", "real"
        ),
    )
    add(
        "Product.reviews_total",
        Product.objects.annotate(real=Count("reviews")).values_list("pk", "reviews_total", "real"),
    )
    add(
        "User.approved_reviews",
        User.objects.annotate(real=Count("reviews", filter=Q(reviews__approved=True))).values_list(
            "pk", "approved_reviews", "real"
        ),
    )
    add(
        "Board.post_count",
        Board.objects.annotate(real=Count("posts", filter=Q(posts__published=True))).values_list(
            "pk", "post_count", "real"
        ),
    )
    queued = RawSQL(
        "SELECT COALESCE(SUM(delta), 0) FROM scalekit_counter_delta d "
        "WHERE d.counter = 'testapp.Board.posts_deferred' "
        'AND d.parent_key = "testapp_board"."id"::text',
        [],
    )
    pending = dict(Board.objects.annotate(pending=queued).values_list("pk", "pending"))
    add(
        "Board.posts_deferred (stored + pending)",
        [
            (pk, stored + pending[pk], real)
            for pk, stored, real in Board.objects.annotate(
                real=Count("posts", filter=Q(posts__published=True))
            ).values_list("pk", "posts_deferred", "real")
        ],
    )
    add(
        "Board.posts_total",
        Board.objects.annotate(real=Count("posts")).values_list("pk", "posts_total", "real"),
    )
    # commit mode: exact once the writing transaction has committed
    add(
        "Forum.topic_count",
        Forum.objects.annotate(real=Count("topics", filter=Q(topics__open=True))).values_list(
            "pk", "topic_count", "real"
        ),
    )
    add(
        "Forum.topics_total",
        Forum.objects.annotate(real=Count("topics")).values_list("pk", "topics_total", "real"),
    )
    return out


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[BaseException], list[Any]]:
    """Run ``fn`` in a thread with its own connection; errors and results are collected."""
    errors: list[BaseException] = []
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(fn())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors, results


def in_processes(fn: Callable[[int], Any], seeds: list[int], timeout: float) -> list[Any]:
    """``fn(seed)`` in one forked process per seed, all at once; their results, in order.

    Each child opens its own connections. It leaves through ``os._exit`` so that no
    exit handler of the test process (the rig stopping its servers) runs in it. An
    exception in a child fails the caller with its text.
    """
    import multiprocessing
    import os
    import traceback

    ctx = multiprocessing.get_context("fork")
    connections.close_all()  # a child must not share the parent's sockets
    pipes = [ctx.Pipe(duplex=False) for _ in seeds]

    def child(seed: int, sender: Any) -> None:
        code = 0
        try:
            sender.send((True, fn(seed)))  # synchronous: done before os._exit
        except BaseException:
            sender.send((False, traceback.format_exc()))
            code = 1
        finally:
            connections.close_all()
            os._exit(code)

    procs = [
        ctx.Process(target=child, args=(seed, sender), daemon=True)
        for seed, (_, sender) in zip(seeds, pipes, strict=True)
    ]
    for proc in procs:
        proc.start()
    results = []
    deadline = time.monotonic() + timeout
    for seed, (receiver, _), proc in zip(seeds, pipes, procs, strict=True):
        assert receiver.poll(max(0.0, deadline - time.monotonic())), f"writer {seed} hung"
        ok, value = receiver.recv()
        assert ok, f"writer {seed} failed:\n{value}"
        results.append(value)
        proc.join(30)
    return results


@contextmanager
def pause_before(
    matches: Callable[[str], bool], reached: threading.Event, go: threading.Event
) -> Iterator[None]:
    """In this thread, stop before the first statement ``matches`` accepts, until ``go``."""
    done = False

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal done
        if not done and matches(sql):
            done = True
            reached.set()
            assert go.wait(20), "never released"
        return execute(sql, params, many, context)

    with connections["default"].execute_wrapper(wrapper):
        yield
