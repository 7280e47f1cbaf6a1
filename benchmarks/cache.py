"""Cache hit latency: ours vs a raw django-redis ``cache.get`` vs the uncached ORM vs anchors.

    python benchmarks/cache.py [--rounds 7] [--transport tcp|unix|both] [--warm-cpu]

Uses DATABASE_URL/REDIS_URL (and REDIS_SOCKET_URL, a ``unix://`` URL of the same
server) when set, else starts a throw-away PostgreSQL and Redis (the test rig). Every
variant runs once over TCP and once over the server's unix socket: the round trip is
most of a hit, and the two transports show how much. Each anchor (django-cacheops,
django-cachalot, from the ``bench`` dependency group) runs in a process of its own on the
same servers and rows, because both patch Django globally. The processes take turns
within each round, so every variant meets the same moments of the machine's load; the
ratios are medians of per-round ratios. Figures are per call, in µs: p50 of all calls and
the minimum of the per-round medians. The last two columns take each process's own
``PING`` off its hits: what the client spends on a hit, apart from the round trip that
the machine sets.

``--warm-cpu`` runs a busy loop in one more process for the whole run. On a virtual
machine whose cores go idle between calls, each round trip also pays for waking a core
(here a ``PING`` takes about 100 µs from idle and about 30 µs with the other core busy),
which a server under load does not; the loop keeps that cost out of every variant alike.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = {"pk get": 400, "20 rows": 300, "500 rows": 40, "save": 200}


def configure(mode: str) -> None:
    import django
    from django.conf import settings

    from tests.rig.urls import database_settings

    apps = [
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django_scalekit",
        "tests.testapp",
    ]
    extra: dict[str, Any] = {"SCALEKIT_CACHE": {}} if mode == "transport" else {}
    if mode == "cacheops":
        apps.append("cacheops")
        extra = {
            "CACHEOPS_REDIS": os.environ["REDIS_URL"],
            "CACHEOPS": {"testapp.*": {"ops": (), "timeout": 300}},
        }
    elif mode == "cachalot":
        apps.append("cachalot")
    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        AUTH_USER_MODEL="testapp.User",
        INSTALLED_APPS=apps,
        DATABASES={"default": database_settings(os.environ["DATABASE_URL"])},
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": os.environ["REDIS_URL"],
            }
        },
        **extra,
    )
    django.setup()


def create_database() -> None:
    import psycopg

    from tests.rig.urls import conninfo, database_settings

    settings_dict = database_settings(os.environ["DATABASE_URL"])
    with psycopg.connect(**conninfo(settings_dict, dbname="postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{settings_dict["NAME"]}"')


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


Variants = dict[str, dict[str, Callable[[], Any]]]  # case -> name -> fn


def warm(fns: dict[str, Callable[[], Any]]) -> None:
    for fn in fns.values():  # fill caches, open connections
        for _ in range(3):
            fn()


def one_round(case: str, fns: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
    return {name: timed(fn, CASES[case]) for name, fn in fns.items()}


def seed() -> None:
    from django.core.management import call_command

    from tests.testapp.models import Product

    call_command("migrate", verbosity=0)
    Product.objects.all().delete()
    Product.objects.bulk_create(
        Product(name=f"product {i}", price=i % 100 + 0.5) for i in range(600)
    )


def reads(objects: Any, wrap: Callable[[Any], Any]) -> dict[str, Callable[[], Any]]:
    from tests.testapp.models import Product

    pk = Product.objects.order_by("pk").values_list("pk", flat=True)[10]
    return {
        "pk get": lambda: wrap(objects.all()).get(pk=pk),
        "20 rows": lambda: list(wrap(objects.filter(active=True).order_by("pk"))[:20]),
        "500 rows": lambda: list(wrap(objects.filter(active=True).order_by("pk"))[:500]),
    }


def save_fn() -> Callable[[], Any]:
    from tests.testapp.models import Product

    product = Product.objects.order_by("pk")[5]

    def save() -> None:
        product.price += 1
        product.save()

    return save


def our_variants() -> Variants:
    from django.core.cache import cache
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from django_scalekit.cache import CachedQuerySet, invalidation
    from tests.testapp.models import Product

    ours = CachedQuerySet(model=Product)
    orm = reads(Product.objects, lambda qs: qs)
    cached = reads(ours, lambda qs: qs.cached())
    raw: dict[str, Callable[[], Any]] = {}
    for case, fn in orm.items():
        key = f"bench:{case}"
        cache.set(key, fn(), 3600)  # django-redis pickles it: the same payload as ours
        raw[case] = lambda key=key: cache.get(key)
    client = cache.client.get_client()
    variants = {
        case: {
            "PING": client.ping,  # the round trip alone: the floor of any hit
            "orm": orm[case],
            "raw cache.get": raw[case],
            "scalekit": cached[case],
        }
        for case in orm
    }
    receivers = [
        (post_save, invalidation._saved, "django_scalekit.cache.saved"),
        (post_delete, invalidation._deleted, "django_scalekit.cache.deleted"),
        (m2m_changed, invalidation._m2m, "django_scalekit.cache.m2m"),
    ]
    save = save_fn()

    def plain_save() -> None:
        for signal, _, uid in receivers:
            signal.disconnect(dispatch_uid=uid)
        try:
            save()
        finally:
            for signal, receiver, uid in receivers:
                signal.connect(receiver, dispatch_uid=uid, weak=False)

    variants["save"] = {"orm": plain_save, "scalekit": save}
    return variants


def anchor_variants(mode: str) -> Variants:
    from django.core.cache import cache

    from tests.testapp.models import Product

    orm = reads(Product.objects, lambda qs: qs)
    ping = cache.client.get_client().ping  # this process's own round trip
    if mode == "cacheops":
        from cacheops import invalidate_all

        invalidate_all()
        hit = reads(Product.objects, lambda qs: qs.cache())
        variants = {case: {"PING": ping, "orm": orm[case], mode: hit[case]} for case in orm}
    else:
        from cachalot.api import cachalot_disabled, invalidate

        invalidate()

        def uncached(fn: Callable[[], Any]) -> Callable[[], Any]:
            def call() -> Any:
                with cachalot_disabled():
                    return fn()

            return call

        variants = {
            case: {"PING": ping, "orm": uncached(orm[case]), mode: orm[case]} for case in orm
        }
    variants["save"] = {mode: save_fn()}
    return variants


def serve(mode: str) -> None:
    """An anchor's process: runs what the main process asks for, one line per request."""
    variants = anchor_variants(mode)
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        what, case = json.loads(line)
        if what == "warm":
            warm(variants[case])
            print(json.dumps("warm"), flush=True)
        else:
            print(json.dumps(one_round(case, variants[case])), flush=True)


class Anchor:
    """An anchor's process, driven round by round from the main one (both patch Django)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--mode", mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ,
        )
        self._read()  # "ready": configured and connected

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.mode}: its process ended (see its output above)")
        return json.loads(line)

    def ask(self, what: str, case: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps([what, case]) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def measure(variants: Variants, anchors: list[Anchor], rounds: int) -> dict[str, Any]:
    """Per case, every variant of every process once per round, processes taking turns,
    so that all of them meet the same moments of this machine's load."""
    result: dict[str, Any] = {}
    for case, fns in variants.items():
        warm(fns)
        for anchor in anchors:
            anchor.ask("warm", case)
        per_round: dict[str, list[list[float]]] = {}
        for _ in range(rounds):
            got = one_round(case, fns)
            for anchor in anchors:
                for name, times in anchor.ask("round", case).items():
                    got[name if name == anchor.mode else f"{anchor.mode} {name}"] = times
            for name, times in got.items():
                per_round.setdefault(name, []).append(times)
        result[case] = {
            name: {
                "p50": statistics.median(t for times in lists for t in times),
                "medians": [statistics.median(times) for times in lists],
            }
            for name, lists in per_round.items()
        }
        for row in result[case].values():
            row["min"] = min(row["medians"])
    return result


PINGS = {"scalekit": "PING", "cacheops": "cacheops PING", "cachalot": "cachalot PING"}


def ratio(row: dict[str, Any], top: str, bottom: str, above_ping: bool = False) -> str:
    """Median over the rounds of top's median / bottom's, each less its own process's
    ``PING`` when ``above_ping``."""
    names = [top, bottom] + ([PINGS[top], PINGS[bottom]] if above_ping else [])
    if not all(n in row for n in names):
        return "-"
    tops, bottoms = row[top]["medians"], row[bottom]["medians"]
    if above_ping:
        tops = [t - p for t, p in zip(tops, row[PINGS[top]]["medians"], strict=True)]
        bottoms = [b - p for b, p in zip(bottoms, row[PINGS[bottom]]["medians"], strict=True)]
    ratios = [t / b for t, b in zip(tops, bottoms, strict=True) if b > 0]
    return f"{statistics.median(ratios):.2f}x" if ratios else "-"


def table(results: dict[str, dict[str, Any]]) -> str:
    cols = ["PING", "orm", "raw cache.get", "scalekit", "cacheops", "cachalot"]
    lines = [
        "| case | "
        + " | ".join(cols)
        + " | scalekit / raw | cacheops / scalekit | cachalot / scalekit"
        + " | above PING: cacheops / scalekit | above PING: cachalot / scalekit |",
        "|---" * (len(cols) + 6) + "|",
    ]
    for case in CASES:
        row = results.get(case, {})
        cells = [f"{row[c]['p50']:.0f} ({row[c]['min']:.0f})" if c in row else "-" for c in cols]
        ratios = [
            ratio(row, "scalekit", "raw cache.get"),
            ratio(row, "cacheops", "scalekit"),
            ratio(row, "cachalot", "scalekit"),
            ratio(row, "cacheops", "scalekit", above_ping=True),
            ratio(row, "cachalot", "scalekit", above_ping=True),
        ]
        lines.append(f"| {case} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--transport", choices=["tcp", "unix", "both"], default="both")
    parser.add_argument(
        "--warm-cpu", action="store_true", help="keep a core busy: no idle wake-ups"
    )
    parser.add_argument("--mode", default="main", help=argparse.SUPPRESS)
    args = parser.parse_args()

    rig = None
    if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        from tests.rig.servers import Rig

        rig = Rig.from_environment()
        create_database()
    try:
        if args.mode == "main":
            urls = {"tcp": os.environ["REDIS_URL"], "unix": os.environ.get("REDIS_SOCKET_URL")}
            wanted = ["tcp", "unix"] if args.transport == "both" else [args.transport]
            if args.warm_cpu:
                spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                atexit.register(spin.kill)
                print("a busy loop keeps one core awake for the whole run (--warm-cpu)")
            for transport in wanted:
                if not urls[transport]:
                    print(f"{transport}: set REDIS_SOCKET_URL (unix:///path?db=0), skipped")
                    continue
                print(f"\n## Redis over {transport}: {urls[transport]}", flush=True)
                env = {**os.environ, "REDIS_URL": urls[transport]}
                command = [sys.executable, __file__, "--rounds", str(args.rounds)]
                subprocess.run([*command, "--mode", "transport"], env=env, check=True)
            return
        configure(args.mode)
        if args.mode != "transport":
            serve(args.mode)
            return
        seed()
        anchors = []
        for mode in ("cacheops", "cachalot"):
            if importlib.util.find_spec(mode) is None:
                print(f"{mode}: not installed (pip install --group bench), skipped")
            else:
                anchors.append(Anchor(mode))  # cacheops flushes the Redis database
        try:
            results = measure(our_variants(), anchors, args.rounds)
        finally:
            for anchor in anchors:
                anchor.close()
        for anchor in anchors:
            for case, row in results.items():
                if f"{anchor.mode} orm" in row:
                    print(
                        f"{anchor.mode} process, {case}: uncached ORM p50 "
                        f"{row[f'{anchor.mode} orm']['p50']:.0f} µs "
                        f"(this process: {row['orm']['p50']:.0f})"
                    )
        print()
        print(
            "p50 µs per call (min of round medians in parentheses); ratios: median over the "
            "rounds of the ratio of round medians"
        )
        print(table(results))
    finally:
        if rig is not None:
            rig.stop()


if __name__ == "__main__":
    main()
