"""Counters: insert throughput per mode, read cost, recount cost (a script, not a timed test).

    nox -s bench -- denorm   (or: python benchmarks/denorm.py [--seconds 2] [--rounds 9])

Starts the test rig's servers (or uses DATABASE_URL/REPLICA_URL/REDIS_URL), creates the
test database, then measures on the test app's Board/Post tables:

1. inserts/s with 4 writer processes (one ``Post`` per transaction), spread over 1,000
   parents and all on one hot parent, with no counter, with one counter in each mode, and
   with django-counter-field when it is installed (``nox -s bench`` installs it), and with
   a hand-written row-level trigger (``row trigger``: what a trigger written by hand costs);
2. the CPU one insert costs, in the writer's Python and in its PostgreSQL backend, per
   mode (``--part cpu``; the backend's from /proc, so only for a server on this machine);
3. reading a counter vs ``COUNT(*)`` of one parent's children, over 1,000,000 children;
4. ``recount()`` of 1,000,000 children vs one ``GROUP BY`` over the child table.

Modes are interleaved in every round, so machine noise hits all of them alike. The writers
are processes, as in a deployment (one interpreter each, no shared GIL); ``--writers
threads`` runs them as threads of one process instead, where the GIL lets one writer at a
time run Python, as in a threaded server. The cache is off (``_settings_nocache``), so a
write costs only its own statements and the counter's. A streaming replica the script
started itself is stopped first (``--replica keep`` keeps it): on this rig it would replay
every write's WAL on the same cores as the writers, which a deployment's replica does not.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import multiprocessing
import os
import queue
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HAS_COUNTER_FIELD = importlib.util.find_spec("django_counter_field") is not None
MODES = ("no counter", "signals", "trigger", "commit", "deferred", "row trigger") + (
    ("counter-field",) if HAS_COUNTER_FIELD else ()
)
WRITERS = 4


def setup() -> Any:
    """The rig (its ``postgres`` is None when the environment named the servers)."""
    from tests.rig.servers import Rig

    rig = Rig.from_environment()
    atexit.register(rig.stop)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "_settings_nocache")
    import django

    django.setup()
    from django.test.utils import setup_databases, teardown_databases

    config = setup_databases(verbosity=0, interactive=False)
    atexit.register(teardown_databases, config, verbosity=0)
    return rig


def counter_field_models() -> tuple[Any, Any]:
    """A Board/Post pair counted by django-counter-field (its ``CounterField`` and mixin)."""
    from django.db import connection, models
    from django_counter_field import CounterField, CounterMixin, connect_counter

    class CfBoard(models.Model):
        name = models.CharField(max_length=50)
        post_count = CounterField()

        class Meta:
            app_label = "testapp"

        def __str__(self) -> str:
            return self.name

    class CfPost(CounterMixin, models.Model):  # type: ignore[misc]
        board = models.ForeignKey(CfBoard, models.CASCADE, related_name="posts")
        published = models.BooleanField(default=False)
        title = models.CharField(max_length=100, blank=True)

        class Meta:
            app_label = "testapp"

        def __str__(self) -> str:
            return self.title

    with connection.schema_editor() as editor:
        editor.create_model(CfBoard)
        editor.create_model(CfPost)
    connect_counter("post_count", CfPost.board, lambda post: post.published)
    return CfBoard, CfPost


# What a user would write by hand: one UPDATE per counted row, no lock ordering (so a
# multi-row statement over several parents can deadlock with another), no moves.
ROW_TRIGGER = (
    "CREATE FUNCTION bench_row_count() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    UPDATE testapp_board SET post_count = post_count + 1 WHERE id = NEW.board_id;\n"
    "    RETURN NULL;\n"
    "END $$",
    "CREATE TRIGGER bench_row_count AFTER INSERT ON testapp_post FOR EACH ROW "
    "WHEN (NEW.published) EXECUTE FUNCTION bench_row_count()",
)


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
    (other,) = find("testapp.Board.posts_deferred")
    other.mode = "deferred"
    with connection.cursor() as cursor:
        for counter in (by_trigger, total, other):
            for sql in drop_sql(counter, "default"):
                cursor.execute(sql)
        if mode == "commit":
            other.mode = "commit"  # the same filtered counter, applied at COMMIT
        if mode in ("trigger", "commit", "deferred"):
            for sql in install_sql(by_trigger if mode == "trigger" else other, "default"):
                cursor.execute(sql)
        cursor.execute("DROP TRIGGER IF EXISTS bench_row_count ON testapp_post")
        cursor.execute("DROP FUNCTION IF EXISTS bench_row_count()")
        if mode == "row trigger":
            for sql in ROW_TRIGGER:
                cursor.execute(sql)
    uid = f"scalekit_denorm:{Post._meta.label}"
    for signal in (pre_save, post_save, pre_delete, post_delete):
        signal.disconnect(sender=Post, dispatch_uid=uid)
    if mode == "signals":
        other.mode = "signals"  # the same filtered counter, kept by the receivers
        receivers.connect(Post)


def _writer(model: Any, boards: list[int], seed: int, seconds: float, start: Any, out: Any) -> None:
    from django.db import connection, transaction

    rnd = random.Random(seed)
    connection.ensure_connection()
    start.wait()
    stop = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop:
        with transaction.atomic():
            model.objects.create(board_id=rnd.choice(boards), published=True)
        n += 1
    connection.close()  # a thread's own connection; a process exits anyway
    out.put(n)


def insert_rate(model: Any, boards: list[int], seconds: float, threads: bool = False) -> float:
    """Inserts/s of ``WRITERS`` processes (forked copies of this one), or of threads."""
    from django.db import connections

    from django_scalekit.denorm import fold

    connections.close_all()  # each writer opens its own
    writers: list[Any]
    if threads:
        start: Any = threading.Barrier(WRITERS)
        out: Any = queue.Queue()
        writers = [
            threading.Thread(target=_writer, args=(model, boards, i, seconds, start, out))
            for i in range(WRITERS)
        ]
    else:
        ctx = multiprocessing.get_context("fork")
        start, out = ctx.Barrier(WRITERS), ctx.Queue()
        writers = [
            ctx.Process(target=_writer, args=(model, boards, i, seconds, start, out))
            for i in range(WRITERS)
        ]
    for w in writers:
        w.start()
    done = sum(out.get() for _ in writers)
    for w in writers:
        w.join()
    fold()  # deferred mode's queue, folded outside the timed window (a Celery beat task)
    return done / seconds


def _backend_cpu(pid: int) -> float | None:
    """Seconds of CPU a local PostgreSQL backend has used (None: not on this machine)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_insert(model: Any, boards: list[int], n: int, seed: int) -> tuple[float, ...]:
    """One writer: (wall, Python CPU, backend CPU) per insert in µs (backend: nan if remote).

    CPU time does not depend on how the writers share the cores, so it shows what a mode
    costs where the throughput ratios show what a machine makes of that cost.
    """
    from django.db import connection, transaction

    from django_scalekit.denorm import fold

    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    rnd = random.Random(seed)

    def insert(count: int) -> None:
        for _ in range(count):
            with transaction.atomic():
                model.objects.create(board_id=rnd.choice(boards), published=True)

    insert(200)  # the backend's plan and catalog caches
    backend, cpu, wall = _backend_cpu(pid), time.process_time(), time.perf_counter()
    insert(n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = _backend_cpu(pid)
    used = after - backend if after is not None and backend is not None else float("nan")
    connection.close()
    fold()  # deferred mode's queue, outside the measurement
    return wall / n * 1e6, cpu / n * 1e6, used / n * 1e6


def timed(fn: object, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - began)
    return samples


def report_recount(
    group: list[float], fixing: list[float], clean: list[float], children: int
) -> None:
    base = statistics.median(group)
    print(f"\nRecount vs one GROUP BY over {children:,} children (s, {len(group)} rounds)")
    for name, samples in (
        ("GROUP BY", group),
        ("recount, all drifted", fixing),
        ("recount, none drifted", clean),
    ):
        med = statistics.median(samples)
        print(f"{name:24} min {min(samples):.3f}  median {med:.3f}  ratio {med / base:.2f}")


def report_cpu(
    writers: dict[str, tuple[Any, list[int]]],
    counted: tuple[str, ...],
    rounds: int,
    inserts: int,
) -> None:
    """CPU per insert of one writer over spread parents, modes interleaved per round."""
    shown = ("no counter", *counted)
    samples: dict[str, list[tuple[float, ...]]] = {mode: [] for mode in shown}
    for r in range(rounds):
        for mode in shown[r % len(shown) :] + shown[: r % len(shown)]:
            use("no counter" if mode == "counter-field" else mode)
            model, keys = writers[mode]
            samples[mode].append(cpu_per_insert(model, keys, inserts, r))
    use("no counter")
    base = statistics.median(s[1] + s[2] for s in samples["no counter"])
    print(
        f"\nCPU per insert, one writer, spread parents, µs ({rounds} rounds of {inserts:,} "
        "inserts, medians; total vs none: what CPU-bound writers would keep)"
    )
    print(f"{'mode':14} {'wall':>6} {'Python':>7} {'backend':>8} {'total':>6} {'vs none':>8}")
    for mode in shown:
        wall, py, pg = (statistics.median(s[i] for s in samples[mode]) for i in range(3))
        total = statistics.median(s[1] + s[2] for s in samples[mode])
        print(f"{mode:14} {wall:6.0f} {py:7.0f} {pg:8.0f} {total:6.0f} {base / total:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--children", type=int, default=1_000_000)
    parser.add_argument("--inserts", type=int, default=3000, help="per CPU measurement")
    parser.add_argument(
        "--shape", choices=("spread", "hot"), action="append", help="insert cases (default: both)"
    )
    parser.add_argument(
        "--mode", choices=MODES[1:], action="append", help="counted modes (default: all)"
    )
    parser.add_argument(
        "--writers",
        choices=("processes", "threads"),
        default="processes",
        help="writers as processes (as in a deployment) or as threads of one process",
    )
    parser.add_argument(
        "--replica",
        choices=("stop", "keep"),
        default="stop",
        help="stop the streaming replica the rig started, for the whole run (default), or keep it",
    )
    parser.add_argument(
        "--part",
        choices=("inserts", "cpu", "recount", "reads"),
        action="append",
        help="parts to run (default: all)",
    )
    args = parser.parse_args()
    parts = set(args.part or ("inserts", "cpu", "recount", "reads"))
    threads = args.writers == "threads"
    rig = setup()
    if args.replica == "stop" and rig.postgres is not None:
        # In a deployment the replica replays the WAL on its own machine; here it would
        # replay it on the primary's two cores, taxing each write by its WAL volume.
        rig.postgres.stop_replica()

    from django.db import connection

    from django_scalekit.denorm import recount
    from tests.testapp.models import Board, Post

    boards = [Board.objects.create(name=f"b{i}").pk for i in range(1000)]
    shapes = {"spread (1,000 parents)": boards, "hot (one parent)": boards[:1]}
    shapes = {k: v for k, v in shapes.items() if not args.shape or k.split()[0] in args.shape}
    models: dict[str, tuple[Any, dict[str, list[int]]]] = {mode: (Post, shapes) for mode in MODES}
    spread: dict[str, tuple[Any, list[int]]] = {mode: (Post, boards) for mode in MODES}
    if HAS_COUNTER_FIELD:
        CfBoard, CfPost = counter_field_models()
        cf_boards = [CfBoard.objects.create(name=f"b{i}").pk for i in range(1000)]
        models["counter-field"] = (
            CfPost,
            {"spread (1,000 parents)": cf_boards, "hot (one parent)": cf_boards[:1]},
        )
        spread["counter-field"] = (CfPost, cf_boards)
    else:
        print("django-counter-field is not installed: no column for it (see docs/denorm.md)")
    rates: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    loads = [os.getloadavg()[0]]
    counted = tuple(m for m in MODES[1:] if not args.mode or m in args.mode)
    shown = ("no counter", *counted)
    for r in range(args.rounds if "inserts" in parts else 0):
        # Each round brackets the counters (in a rotating order) between two no-counter
        # windows, and each ratio is taken against that round's own baseline: the load
        # of this shared machine drifts within seconds, so rounds are compared, not runs.
        order = counted[r % len(counted) :] + counted[: r % len(counted)]
        for shape in shapes:
            got: dict[str, float] = {}
            for mode in ("no counter", *order):
                use("no counter" if mode == "counter-field" else mode)
                model, keys = models[mode]
                got[mode] = insert_rate(model, keys[shape], args.seconds, threads)
            model, keys = models["no counter"]
            use("no counter")
            rate = insert_rate(model, keys[shape], args.seconds, threads)
            base = (got["no counter"] + rate) / 2
            for mode, rate in got.items():
                rates.setdefault((shape, mode), []).append(rate)
                ratios.setdefault((shape, mode), []).append(rate / base)
        loads.append(os.getloadavg()[0])

    if "inserts" in parts:
        print(
            f"\nInserts/s, {WRITERS} writer {args.writers}, one insert per transaction "
            f"({args.rounds} rounds of {args.seconds:g} s; 1-minute load average "
            f"{min(loads):.1f}-{max(loads):.1f}, median {statistics.median(loads):.1f})"
        )
        print(
            f"{'':24} {'mode':14} {'median/s':>9} {'vs none':>8} {'rounds':>11}  "
            "(vs none: median of the per-round ratios)"
        )
        for shape in shapes:
            for mode in shown:
                rs = ratios[(shape, mode)]
                print(
                    f"{shape:24} {mode:14} {statistics.median(rates[(shape, mode)]):9.0f} "
                    f"{statistics.median(rs):8.2f} {min(rs):5.2f}-{max(rs):<5.2f}"
                )
        # Same-round ratios: ours against what it replaces.
        for ours, theirs in (("signals", "counter-field"), ("trigger", "row trigger")):
            if not {ours, theirs} <= set(shown):
                continue
            for shape in shapes:
                pairs = zip(rates[(shape, ours)], rates[(shape, theirs)], strict=True)
                per_round = [a / b for a, b in pairs]
                print(
                    f"{shape:24} {ours} / {theirs} {statistics.median(per_round):.2f} "
                    f"({min(per_round):.2f}-{max(per_round):.2f})"
                )

    if "cpu" in parts:
        report_cpu(spread, counted, args.rounds, args.inserts)
    if not parts & {"recount", "reads"}:
        return
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

        def drift_all() -> None:
            cursor.execute("UPDATE testapp_board SET post_count = 0")

        # Interleaved: GROUP BY, recount with every parent drifted, recount with none.
        group: list[float] = []
        fixing: list[float] = []
        clean: list[float] = []
        for _ in range(args.rounds if "recount" in parts else 0):
            group += timed(group_by, 1)
            drift_all()
            fixing += timed(lambda: recount(Board.post_count), 1)
            clean += timed(lambda: recount(Board.post_count), 1)
    if group:
        report_recount(group, fixing, clean, args.children)
    if "reads" not in parts:
        return
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
