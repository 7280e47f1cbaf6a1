"""Partitioned vs unpartitioned events: one-month aggregate, a query not on the key, retention.

Same data in four tables (unpartitioned / monthly partitions, rows in time order / in random
physical order), built by ``django_scalekit.partitioning.maintain``. Queries are timed in
interleaved rounds; removing a month is timed once per table (it is destructive) with the
WAL it wrote.

    .nox/tests-django5-2/bin/python benchmarks/partitioning.py [ROWS]   # default 2,000,000
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable

from _env import interleaved, setup, table

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
MONTH = ("2025-06-01", "2025-07-01")


def main() -> None:
    setup()
    from django.db import connection

    from django_scalekit.partitioning import maintain

    def sql(statement: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(statement, params or [])
            return cursor.fetchall() if cursor.description else []

    columns = (
        "id bigint NOT NULL, created_at timestamptz NOT NULL, kind int NOT NULL, "
        "amount float8 NOT NULL, payload text NOT NULL"
    )
    source = (
        "SELECT i, timestamptz '2025-01-01 00:00+00' + (i * (interval '365 days' / %s)), "
        "(i * 7919) %% 100, (i %% 1000) / 10.0, repeat('x', 60) "
        "FROM generate_series(0::bigint, %s - 1) AS i"
    )
    started = time.perf_counter()
    for order in ("ord", "rnd"):
        plain, part = f"bench_plain_{order}", f"bench_part_{order}"
        sql(f"DROP TABLE IF EXISTS {plain}, {part} CASCADE")
        sql(f"CREATE TABLE {plain} ({columns})")
        sql(f"CREATE TABLE {part} ({columns}) PARTITION BY RANGE (created_at)")
        for month in range(1, 13):
            maintain(
                table=part,
                options={"interval": "month", "premake": 0},
                now=dt.datetime(2025, month, 15, tzinfo=dt.UTC),
            )
        ordering = "ORDER BY random()" if order == "rnd" else ""
        for name in (plain, part):
            sql(f"INSERT INTO {name} {source} {ordering}", [ROWS, ROWS])
            sql(f"CREATE INDEX ON {name} (created_at)")
            sql(f"CREATE INDEX ON {name} (id)")
            sql(f"VACUUM ANALYZE {name}")
    print(
        f"{ROWS:,} rows per table, 12 monthly partitions; loaded in "
        f"{time.perf_counter() - started:.1f} s\n"
    )

    def runner(query: str, params: list[object]) -> Callable[[], object]:
        return lambda: sql(query, params)

    month_sum = "SELECT sum(amount) FROM {} WHERE created_at >= %s AND created_at < %s"
    queries = {
        "one-month sum": (month_sum, list(MONTH)),
        "count by kind (not the key, scan)": ("SELECT count(*) FROM {} WHERE kind = 7", []),
        "lookup by id (not the key, index)": ("SELECT amount FROM {} WHERE id = %s", [ROWS // 3]),
    }
    for title, (query, params) in queries.items():
        candidates = {
            f"{kind} {order}": runner(query.format(f"bench_{kind}_{order}"), params)
            for order in ("ord", "rnd")
            for kind in ("plain", "part")
        }
        for fn in candidates.values():
            fn()  # warm the cache
        rounds = 15 if "id" in title else 7
        print(f"{title} (rows in time order 'ord' / random physical order 'rnd')")
        print(table(interleaved(candidates, rounds=rounds), baseline="plain ord"))
        print()

    def wal() -> int:
        return int(sql("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")[0][0])

    print("remove January (one month of twelve)")
    print(f"{'':28}  {'seconds':>8}  {'WAL MB':>8}  {'+ VACUUM s':>10}")
    for order in ("ord", "rnd"):
        lsn, start = wal(), time.perf_counter()
        deleted = sql(
            f"WITH d AS (DELETE FROM bench_plain_{order} WHERE created_at < '2025-02-01' "
            "RETURNING 1) SELECT count(*) FROM d"
        )[0][0]
        took, written = time.perf_counter() - start, wal() - lsn
        vacuum = time.perf_counter()
        sql(f"VACUUM bench_plain_{order}")
        print(
            f"{'DELETE ' + order + f' ({deleted:,} rows)':28}  {took:8.3f}  "
            f"{written / 1e6:8.1f}  {time.perf_counter() - vacuum:10.3f}"
        )
    for order, on_expire in (("ord", "detach"), ("rnd", "drop")):
        lsn, start = wal(), time.perf_counter()
        result = maintain(
            table=f"bench_part_{order}",
            options={
                "interval": "month",
                "premake": 0,
                "retention": "10 months",
                "on_expire": on_expire,
            },
            now=dt.datetime(2025, 12, 15, tzinfo=dt.UTC),
            allow_drop=True,
        )
        took, written = time.perf_counter() - start, wal() - lsn
        assert [s.action for s in result.applied] == [on_expire], result.applied
        print(
            f"{on_expire.upper() + ' partition ' + order:28}  {took:8.3f}  "
            f"{written / 1e6:8.3f}  {'-':>10}"
        )
    for order in ("ord", "rnd"):
        sql(f"DROP TABLE IF EXISTS bench_plain_{order}, bench_part_{order} CASCADE")
    sql("DROP TABLE IF EXISTS bench_part_ord_p202501")  # the detached one


if __name__ == "__main__":
    main()
