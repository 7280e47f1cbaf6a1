"""Cache hit latency: ours vs a raw django-redis ``cache.get`` vs the uncached ORM vs anchors.

    python benchmarks/cache.py [--rounds 7] [--transport tcp|unix|both]

Uses DATABASE_URL/REDIS_URL (and REDIS_SOCKET_URL, a ``unix://`` URL of the same
server) when set, else starts a throw-away PostgreSQL and Redis (the test rig). Every
variant runs once over TCP and once over the server's unix socket: the round trip is
most of a hit, and the two transports show how much. Our variants and the baselines run
interleaved in one process; each anchor (django-cacheops, django-cachalot, from the
``bench`` dependency group) runs in its own subprocess on the same servers and rows,
because both patch Django globally, with its own uncached ORM baseline for the ratio.
Figures are per call, in µs: p50 of all calls and the minimum of the per-round medians.
The last two columns take each process's own ``PING`` off its hits: what the client
spends on a hit, apart from the round trip that the machine sets.
"""

from __future__ import annotations

import argparse
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


def run(variants: dict[str, dict[str, Callable[[], Any]]], rounds: int) -> dict[str, Any]:
    """variants: case -> name -> fn. Interleaved: each round runs every variant once."""
    result: dict[str, Any] = {}
    for case, fns in variants.items():
        n = CASES[case]
        for fn in fns.values():  # warm up: fill caches, open connections
            for _ in range(3):
                fn()
        samples: dict[str, list[float]] = {name: [] for name in fns}
        medians: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(rounds):
            for name, fn in fns.items():
                times = timed(fn, n)
                samples[name] += times
                medians[name].append(statistics.median(times))
        result[case] = {
            name: {"p50": statistics.median(samples[name]), "min": min(medians[name])}
            for name in fns
        }
    return result


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


def main_mode(rounds: int) -> dict[str, Any]:
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
    result = run(variants, rounds)

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

    result.update(run({"save": {"orm": plain_save, "scalekit": save}}, rounds))
    return result


def anchor_mode(mode: str, rounds: int) -> dict[str, Any]:
    from django.core.cache import cache

    from tests.testapp.models import Product

    orm = reads(Product.objects, lambda qs: qs)
    ping = cache.client.get_client().ping  # this process's own round trip
    if mode == "cacheops":
        from cacheops import invalidate_all

        invalidate_all()
        hit = reads(Product.objects, lambda qs: qs.cache())
        variants = {case: {"PING": ping, "orm": orm[case], mode: hit[case]} for case in orm}
        result = run(variants, rounds)
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
        result = run(variants, rounds)
    result.update(run({"save": {mode: save_fn()}}, rounds))
    return result


def table(results: dict[str, dict[str, Any]]) -> str:
    """p50 (min) per variant, then each hit less its own process's PING: the client's cost."""
    cols = ["PING", "orm", "raw cache.get", "scalekit", "cacheops", "cachalot"]
    lines = [
        "| case | " + " | ".join(cols) + " | scalekit / raw | anchors / scalekit "
        "| above PING: scalekit / cacheops / cachalot | anchors / scalekit, above PING |",
        "|---" * (len(cols) + 5) + "|",
    ]
    for case in CASES:
        row = results.get(case, {})
        cells = [f"{row[c]['p50']:.0f} ({row[c]['min']:.0f})" if c in row else "-" for c in cols]
        ours = row.get("scalekit", {}).get("p50")
        raw = row.get("raw cache.get", {}).get("p50")
        ratio = f"{ours / raw:.2f}x" if ours and raw else "-"
        anchors = [
            f"{row[a]['p50'] / ours:.1f}x" for a in ("cacheops", "cachalot") if a in row and ours
        ]
        above = {
            name: row[name]["p50"] - row[ping]["p50"]
            for name, ping in (
                ("scalekit", "PING"),
                ("cacheops", "cacheops PING"),
                ("cachalot", "cachalot PING"),
            )
            if name in row and ping in row
        }
        client = " / ".join(f"{above[n]:.0f}" for n in above) if "scalekit" in above else "-"
        client_ratio = " / ".join(
            f"{above[a] / above['scalekit']:.1f}x"
            for a in ("cacheops", "cachalot")
            if a in above and above.get("scalekit", 0) > 0
        )
        lines.append(
            f"| {case} | " + " | ".join(cells) + f" | {ratio} | {' / '.join(anchors) or '-'} "
            f"| {client} | {client_ratio or '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--transport", choices=["tcp", "unix", "both"], default="both")
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
            print(json.dumps(anchor_mode(args.mode, args.rounds)))
            return
        seed()
        results = main_mode(args.rounds)
        baseline_orm = {case: results[case]["orm"]["p50"] for case in results}
        for anchor in ("cacheops", "cachalot"):
            if importlib.util.find_spec(anchor) is None:
                print(f"{anchor}: not installed (pip install --group bench), skipped")
                continue
            out = subprocess.run(
                [sys.executable, __file__, "--mode", anchor, "--rounds", str(args.rounds)],
                capture_output=True,
                text=True,
                env=os.environ,
            )
            if out.returncode:
                print(f"{anchor}: failed\n{out.stderr[-2000:]}")
                continue
            for case, row in json.loads(out.stdout.strip().splitlines()[-1]).items():
                results[case][anchor] = row[anchor]
                if "PING" in row:
                    results[case][f"{anchor} PING"] = row["PING"]
                if "orm" in row:
                    print(
                        f"{anchor} process, {case}: uncached ORM p50 {row['orm']['p50']:.0f} µs "
                        f"(this process: {baseline_orm[case]:.0f})"
                    )
        print()
        print("p50 µs per call (min of round medians in parentheses)")
        print(table(results))
    finally:
        if rig is not None:
            rig.stop()


if __name__ == "__main__":
    main()
