"""Counters: insert throughput per mode, read cost, recount cost (a script, not a timed test).

    .nox/tests-django5-2/bin/python benchmarks/denorm.py [--seconds 2] [--rounds 3]

Starts the test rig's servers (or uses DATABASE_URL/REPLICA_URL/REDIS_URL), creates the
test database, then measures on the test app's Board/Post tables:

1. inserts/s with 4 writer threads (one ``Post`` per transaction), spread over 1,000 parents
   and all on one hot parent, with no counter and with one counter in each mode;
2. reading a counter vs ``COUNT(*)`` of one parent's children, over 1,000,000 children;
3. ``recount()`` of 1,000,000 children vs one ``GROUP BY`` over the child table.

Modes are interleaved in every round, so machine noise hits all of them alike.
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODES = ("no counter", "signals", "trigger", "deferred")


def setup() -> None:
    from tests.rig.servers import Rig

    rig = Rig.from_environment()
    atexit.register(rig.stop)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.test.utils import setup_databases, teardown_databases

    config = setup_databases(verbosity=0, interactive=False)
    atexit.register(teardown_databases, config, verbosity=0)


def use(mode: str) -> None:
    """Leave exactly one counter on Post active: the one ``mode`` names."""
    from django.db import connection
    from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

    from django_scalekit.denorm import receivers
    from django_scalekit.denorm.counters import find
    from django_scalekit.denorm.trigger import drop_sql, install_sql
    from tests.testapp.models import Post

    (by_trigger,) = find("testapp.Board.post_count")
    (total,) = find("testapp.Board.posts_total")
    (python_side,) = find("testapp.Board.posts_deferred")
    with connection.cursor() as cursor:
        for counter in (by_trigger, total):
            for sql in drop_sql(counter, "default"):
                cursor.execute(sql)
        if mode == "trigger":
            for sql in install_sql(by_trigger, "default"):
                cursor.execute(sql)
    uid = f"scalekit_denorm:{Post._meta.label}"
    for signal in (pre_save, post_save, pre_delete, post_delete):
        signal.disconnect(sender=Post, dispatch_uid=uid)
    if mode in ("signals", "deferred"):
        python_side.mode = mode
        receivers.connect(Post)


def insert_rate(boards: list[int], seconds: float, threads: int = 4) -> float:
    from django.db import connection, transaction

    from django_scalekit.denorm import fold
    from tests.testapp.models import Post

    done = [0] * threads
    stop = time.monotonic() + seconds
    start = threading.Barrier(threads)

    def writer(i: int) -> None:
        rnd = random.Random(i)
        start.wait()
        n = 0
        while time.monotonic() < stop:
            with transaction.atomic():
                Post.objects.create(board_id=rnd.choice(boards), published=True)
            n += 1
        done[i] = n
        connection.close()

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    began = time.monotonic()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.monotonic() - began
    fold()  # deferred mode's queue, folded outside the timed window (a Celery beat task)
    return sum(done) / elapsed


def timed(fn: object, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - began)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--children", type=int, default=1_000_000)
    args = parser.parse_args()
    setup()

    from django.db import connection

    from django_scalekit.denorm import recount
    from tests.testapp.models import Board, Post

    boards = [Board.objects.create(name=f"b{i}").pk for i in range(1000)]
    shapes = {"spread (1,000 parents)": boards, "hot (one parent)": boards[:1]}
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for shape, keys in shapes.items():
            for mode in MODES:
                use(mode)
                rates.setdefault((shape, mode), []).append(insert_rate(keys, args.seconds))

    print(f"\nInserts/s, 4 threads, one insert per transaction ({args.rounds} rounds)")
    print(f"{'':24} {'mode':12} {'min':>8} {'median':>8} {'vs none':>8}")
    for shape in shapes:
        base = statistics.median(rates[(shape, "no counter")])
        for mode in MODES:
            samples = rates[(shape, mode)]
            med = statistics.median(samples)
            print(f"{shape:24} {mode:12} {min(samples):8.0f} {med:8.0f} {med / base:8.2f}")

    # Read and recount cost over a large child table.
    use("no counter")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE testapp_post")
        cursor.execute("UPDATE testapp_board SET post_count = 0, posts_total = 0")
        cursor.execute(
            "INSERT INTO testapp_post (board_id, published, title) "
            "SELECT b.id, (i %% 4 <> 0), '' FROM generate_series(1, %s) AS i "
            "JOIN testapp_board b ON b.name = 'b' || (i %% 1000)",
            [args.children],
        )
        cursor.execute("ANALYZE testapp_post")
        cursor.execute("ANALYZE testapp_board")

        def group_by() -> None:
            cursor.execute(
                "SELECT board_id, COUNT(*) FROM testapp_post WHERE published GROUP BY board_id"
            )
            cursor.fetchall()

        group = timed(group_by, 3)
    recounts = timed(lambda: recount(Board.post_count), 3)
    print(f"\nRecount vs one GROUP BY over {args.children:,} children (seconds, 3 runs)")
    print(f"{'GROUP BY':24} min {min(group):.3f}  median {statistics.median(group):.3f}")
    ratio = statistics.median(recounts) / statistics.median(group)
    print(
        f"{'recount(batch 1000)':24} min {min(recounts):.3f}  median "
        f"{statistics.median(recounts):.3f}  ratio {ratio:.2f}"
    )

    rnd = random.Random(0)
    counter_reads = timed(
        lambda: Board.objects.values_list("post_count", flat=True).get(pk=rnd.choice(boards)),
        500,
    )
    count_reads = timed(
        lambda: Post.objects.filter(board_id=rnd.choice(boards), published=True).count(), 500
    )
    # One parent owning half of the children: what a hot page pays for COUNT(*).
    hot = boards[0]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_post SET board_id = %s WHERE id %% 2 = 0", [hot])
        cursor.execute("ANALYZE testapp_post")
    hot_counter = timed(lambda: Board.objects.values_list("post_count", flat=True).get(pk=hot), 50)
    hot_count = timed(lambda: Post.objects.filter(board_id=hot, published=True).count(), 20)
    print(f"\nReading one parent's count over {args.children:,} children, µs")
    for name, samples in (
        ("counter, 1,000 children", counter_reads),
        ("COUNT, 1,000 children", count_reads),
        (f"counter, {args.children // 2:,} children", hot_counter),
        (f"COUNT, {args.children // 2:,} children", hot_count),
    ):
        print(
            f"{name:24} min {min(samples) * 1e6:8.0f}  median "
            f"{statistics.median(samples) * 1e6:8.0f}"
        )


if __name__ == "__main__":
    main()
