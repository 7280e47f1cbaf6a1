"""Partitioned vs unpartitioned events: one-month aggregate, queries not on the key, retention.

Same data in four tables (unpartitioned / monthly partitions, rows in time order / in random
physical order), generated in SQL and partitioned by ``django_scalekit.partitioning.maintain``.
Queries are timed in interleaved rounds. Removing a month is destructive, so it is repeated
on consecutive months (January, February, ...) and each removal starts after a CHECKPOINT
(the WAL then includes the full-page images a monthly job pays in production).

    .nox/tests-django5-2/bin/python benchmarks/partitioning.py --rows 10000000
    .nox/tests-django5-2/bin/python benchmarks/partitioning.py          # 2,000,000: quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from collections.abc import Callable

from _env import interleaved, setup

MONTH = ("2025-06-01", "2025-07-01")
ORDERS = ("ord", "rnd")


def spread(samples: list[float], scale: float = 1.0, digits: int = 3) -> str:
    """``median (min-max)`` of ``samples`` times ``scale``."""
    lo, med, hi = (x * scale for x in (min(samples), statistics.median(samples), max(samples)))
    return f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows per table")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved query rounds")
    parser.add_argument("--removals", type=int, default=3, help="months removed per method")
    args = parser.parse_args()
    rows = args.rows
    own_server = not os.environ.get("DATABASE_URL")
    setup()
    from django.db import connection

    from django_scalekit.partitioning import maintain

    def sql(statement: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(statement, params or [])
            return cursor.fetchall() if cursor.description else []

    if own_server:
        # The test rig turns full-page writes off for speed; production keeps them on, and
        # they are most of what a DELETE writes right after a checkpoint.
        sql("ALTER SYSTEM SET full_page_writes = on")
        sql("SELECT pg_reload_conf()")
        time.sleep(0.5)
    version = sql("SHOW server_version")[0][0]
    fpw = sql("SHOW full_page_writes")[0][0]
    print(f"PostgreSQL {version}, full_page_writes={fpw}, {os.cpu_count()} CPUs; {load()}")

    columns = (
        "id bigint NOT NULL, created_at timestamptz NOT NULL, kind int NOT NULL, "
        "amount float8 NOT NULL, payload text NOT NULL"
    )
    started = time.perf_counter()
    for order in ORDERS:
        sql(f"DROP TABLE IF EXISTS bench_plain_{order}, bench_part_{order} CASCADE")
        sql(f"CREATE TABLE bench_plain_{order} ({columns})")
        sql(f"CREATE TABLE bench_part_{order} ({columns}) PARTITION BY RANGE (created_at)")
        for month in range(1, 13):
            maintain(
                table=f"bench_part_{order}",
                options={"interval": "month", "premake": 0},
                now=dt.datetime(2025, month, 15, tzinfo=dt.UTC),
            )
    # Rows spread evenly over 2025; the random order is one sort, copied as it is stored.
    sql(
        "INSERT INTO bench_plain_ord SELECT i, "
        "timestamptz '2025-01-01 00:00+00' + (i * (interval '365 days' / %s)), "
        "(i * 7919) %% 100, (i %% 1000) / 10.0, repeat('x', 60) "
        "FROM generate_series(0::bigint, %s - 1) AS i",
        [rows, rows],
    )
    sql("INSERT INTO bench_plain_rnd SELECT * FROM bench_plain_ord ORDER BY random()")
    for order in ORDERS:
        sql(f"INSERT INTO bench_part_{order} SELECT * FROM bench_plain_{order}")
    for order in ORDERS:
        for kind in ("plain", "part"):
            name = f"bench_{kind}_{order}"
            sql(f"CREATE INDEX ON {name} (created_at)")
            sql(f"CREATE INDEX ON {name} (id)")
            sql(f"VACUUM ANALYZE {name}")
    size = sql("SELECT pg_total_relation_size('bench_plain_ord')")[0][0]
    print(
        f"{rows:,} rows per table ({size / 1e9:.2f} GB with indexes), 12 monthly partitions; "
        f"loaded in {time.perf_counter() - started:.0f} s; {load()}\n"
    )

    def runner(query: str, params: list[object]) -> Callable[[], object]:
        return lambda: sql(query, params)

    queries = {
        "one-month sum": (
            "SELECT sum(amount) FROM {} WHERE created_at >= %s AND created_at < %s",
            list(MONTH),
        ),
        "count by kind (not the key, scan)": ("SELECT count(*) FROM {} WHERE kind = 7", []),
        "lookup by id (not the key, index)": ("SELECT amount FROM {} WHERE id = %s", [rows // 3]),
    }
    print("queries: median (min-max) ms of interleaved rounds; ratio of medians to 'plain ord'")
    for title, (query, params) in queries.items():
        candidates = {
            f"{kind} {order}": runner(query.format(f"bench_{kind}_{order}"), params)
            for order in ORDERS
            for kind in ("plain", "part")
        }
        for fn in candidates.values():
            fn()  # warm the cache
        rounds = args.rounds * 15 if "id" in title else args.rounds  # ~1 ms each: many
        times = interleaved(candidates, rounds=rounds)
        base = statistics.median(times["plain ord"])
        print(f"{title} ({rounds} rounds; {load()})")
        for name, samples in times.items():
            ratio = statistics.median(samples) / base
            print(f"  {name:10}  {spread(samples, 1e3):>30}  {ratio:5.2f}")
    print()

    def wal() -> int:
        return int(sql("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")[0][0])

    def measured(fn: Callable[[], object]) -> tuple[float, int, object]:
        sql("CHECKPOINT")
        lsn, start = wal(), time.perf_counter()
        out = fn()
        return time.perf_counter() - start, wal() - lsn, out

    # method -> list of (seconds, WAL bytes, VACUUM seconds, VACUUM WAL bytes, rows)
    removals: dict[str, list[tuple[float, int, float, int, int]]] = {}
    for n in range(args.removals):
        lower, upper = dt.date(2025, n + 1, 1), dt.date(2025, n + 2, 1)
        for order in ORDERS:
            took, written, deleted = measured(
                lambda order=order, lower=lower, upper=upper: sql(
                    f"WITH d AS (DELETE FROM bench_plain_{order} WHERE created_at >= %s "
                    "AND created_at < %s RETURNING 1) SELECT count(*) FROM d",
                    [lower, upper],
                )[0][0]
            )
            vacuum, vacuum_wal, _ = measured(lambda order=order: sql(f"VACUUM bench_plain_{order}"))
            removals.setdefault(f"DELETE, rows in {order}", []).append(
                (took, written, vacuum, vacuum_wal, int(deleted))  # type: ignore[call-overload]
            )
        for order, on_expire in (("ord", "detach"), ("rnd", "drop")):
            # Retention shortened by a month each round: exactly the next month expires.
            took, written, result = measured(
                lambda order=order, on_expire=on_expire, n=n: maintain(
                    table=f"bench_part_{order}",
                    options={
                        "interval": "month",
                        "premake": 0,
                        "retention": f"{10 - n} months",
                        "on_expire": on_expire,
                    },
                    now=dt.datetime(2025, 12, 15, tzinfo=dt.UTC),
                    allow_drop=True,
                )
            )
            (step,) = result.applied  # type: ignore[attr-defined]
            assert (step.action, step.lower.month) == (on_expire, n + 1), step
            removals.setdefault(f"maintain: {on_expire}", []).append(
                (took, written, 0.0, 0, step.rows)
            )
    print(f"remove one month, {args.removals} consecutive months; median (min-max); {load()}")
    heads = f"{'rows':>9}  {'seconds':>22}  {'WAL MB':>24}  {'VACUUM s':>22}  VACUUM WAL MB"
    print(f"  {'':20}  {heads}")
    for method, samples in removals.items():
        secs, wals, vacs, vac_wals, counts = (list(col) for col in zip(*samples, strict=True))
        vacuum = "-" if method.startswith("maintain") else spread(vacs)
        vacuum_wal = "-" if method.startswith("maintain") else spread(vac_wals, 1e-6, 1)
        print(
            f"  {method:20}  {int(statistics.median(counts)):9,}  {spread(secs):>22}  "
            f"{spread(wals, 1e-6, 3):>24}  {vacuum:>22}  {vacuum_wal}"
        )
    for order in ORDERS:
        sql(f"DROP TABLE IF EXISTS bench_plain_{order}, bench_part_{order} CASCADE")
    for n in range(args.removals):
        sql(f"DROP TABLE IF EXISTS bench_part_ord_p2025{n + 1:02}")  # the detached ones


if __name__ == "__main__":
    main()
