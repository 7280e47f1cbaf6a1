"""The before/after report: one section per django_scalekit subpackage.

Each section measures the shop with plain Django/DRF ("before") and, once the subpackage
exists, with it ("after"). A subpackage plugs its figure in by adding one function here::

    @after("cache")
    def cache_after(run: Run) -> Measurement:
        ...  # the same page, read through django_scalekit.cache
        return Measurement("django_scalekit.cache", [Metric("queries per read", q), ...])

The after metrics are matched to the before ones by label; the ratio is before / after.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Count, F, Q
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from shop.models import Event, Product, Review
from shop.seed import EPOCH, OLDEST_MONTH, USERNAME_PREFIX
from shop.serializers import (
    FastProductSerializer,
    ProductSerializer,
    fast_product_list_queryset,
    product_list_queryset,
)
from shop.views import (
    cached_product_detail,
    cached_product_detail_data,
    product_detail,
    product_detail_data,
)

TOP_PAGE = 50  # products on the "most reviewed" page
HOT_PRODUCTS = 20  # distinct product pages in the repeated-read workload
SERIALIZING_ONLY = "ms serializing loaded rows"


@dataclass(frozen=True)
class Run:
    """How hard to measure: each timing is the median of ``repeats`` runs."""

    repeats: int = 5
    reads: int = 200  # product pages read per cache/routers timing


@dataclass(frozen=True)
class Metric:
    label: str
    value: float
    compare: bool = True  # False for context figures (rows touched): no ratio


@dataclass(frozen=True)
class Measurement:
    subject: str  # what was measured, in a few words
    metrics: list[Metric]

    def get(self, label: str) -> Metric | None:
        return next((m for m in self.metrics if m.label == label), None)


Measure: TypeAlias = Callable[[Run], Measurement]


@dataclass
class Section:
    """One table of the report; ``measure_after`` stays None until its subpackage exists."""

    name: str  # the django_scalekit subpackage
    measure_before: Measure
    measure_after: Measure | None = None
    needs_postgres: bool = False
    needs_replica: bool = False

    def skip_reason(self) -> str | None:
        """Why this section cannot run on the configured databases, or None."""
        postgres = connection.vendor == "postgresql"
        if self.needs_replica and not (postgres and replica_aliases()):
            return "needs PostgreSQL with a replica, skipped"
        if self.needs_postgres and not postgres:
            return "needs PostgreSQL, skipped"
        return None

    def before(self, run: Run) -> Measurement:
        return self.measure_before(run)

    def after(self, run: Run) -> Measurement | None:
        return self.measure_after(run) if self.measure_after else None


SECTIONS: dict[str, Section] = {}


def section(
    name: str, *, needs_postgres: bool = False, needs_replica: bool = False
) -> Callable[[Measure], Measure]:
    """Register ``name``'s "before" measurement (sections print in registration order)."""

    def register(measure: Measure) -> Measure:
        SECTIONS[name] = Section(name, measure, None, needs_postgres, needs_replica)
        return measure

    return register


def after(name: str) -> Callable[[Measure], Measure]:
    """Register the "after" measurement of an existing section."""

    def register(measure: Measure) -> Measure:
        SECTIONS[name].measure_after = measure
        return measure

    return register


# --- measuring helpers ------------------------------------------------------------------


def replica_aliases() -> list[str]:
    return [alias for alias in connections if alias != DEFAULT_DB_ALIAS]


@contextmanager
def count_queries(*aliases: str) -> Iterator[dict[str, CaptureQueriesContext]]:
    """Capture the queries sent to each alias (default: the primary only)."""
    with ExitStack() as stack:
        yield {
            alias: stack.enter_context(CaptureQueriesContext(connections[alias]))
            for alias in aliases or (DEFAULT_DB_ALIAS,)
        }


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def statement_count(captured: CaptureQueriesContext) -> int:
    """Queries that did work: BEGIN, ROLLBACK and savepoints are not counted."""
    return sum(1 for q in captured.captured_queries if not q["sql"].startswith(TRANSACTION_CONTROL))


def timed(fn: Callable[[], Any], repeats: int) -> tuple[int, float]:
    """Queries of one warm-up call, then the median milliseconds of ``repeats`` calls.

    Timed calls run without query capture, whose bookkeeping would be counted otherwise.
    """
    with count_queries() as captured:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statement_count(captured[DEFAULT_DB_ALIAS]), statistics.median(times) * 1000


def ms_label(run: Run, what: str = "ms") -> str:
    return f"{what} (median of {run.repeats})"


def hot_skus() -> list[Any]:
    return list(Product.objects.order_by("pk").values_list("sku", flat=True)[:HOT_PRODUCTS])


def read_pages(
    skus: list[Any], reads: int, view: Callable[[Any, Any], Any] = product_detail
) -> Callable[[], None]:
    """A workload of ``reads`` product-page views spread over ``skus``."""
    factory = RequestFactory()
    requests = [(factory.get(f"/products/{sku}/"), sku) for sku in skus]

    def go() -> None:
        for i in range(reads):
            request, sku = requests[i % len(requests)]
            view(request, sku)

    return go


# --- the sections -----------------------------------------------------------------------


@section("serializers")
def serializers_before(run: Run) -> Measurement:
    count = product_list_queryset().count()
    queries, ms = timed(
        lambda: ProductSerializer(product_list_queryset(), many=True).data, run.repeats
    )
    rows = list(product_list_queryset())
    _, ms_serializing = timed(lambda: ProductSerializer(rows, many=True).data, run.repeats)
    return Measurement(
        f"DRF ModelSerializer: list of {count:,} active products with tags and approved reviews",
        [
            Metric("queries", queries),
            Metric(ms_label(run), ms),
            Metric(ms_label(run, SERIALIZING_ONLY), ms_serializing),
        ],
    )


@after("serializers")
def serializers_after(run: Run) -> Measurement:
    renderer = JSONRenderer()
    drf = renderer.render(ProductSerializer(product_list_queryset(), many=True).data)
    ours = renderer.render(FastProductSerializer(fast_product_list_queryset(), many=True).data)
    queries, ms = timed(
        lambda: FastProductSerializer(fast_product_list_queryset(), many=True).data, run.repeats
    )
    rows = list(fast_product_list_queryset())
    _, ms_serializing = timed(lambda: FastProductSerializer(rows, many=True).data, run.repeats)
    return Measurement(
        "django_scalekit.serializers ModelSerializer + optimize(); "
        f"JSON equal to DRF's: {'yes' if ours == drf else 'NO'}",
        [
            Metric("queries", queries),
            Metric(ms_label(run), ms),
            Metric(ms_label(run, SERIALIZING_ONLY), ms_serializing),
        ],
    )


@section("cache")
def cache_before(run: Run) -> Measurement:
    skus = hot_skus()
    queries, ms = timed(read_pages(skus, run.reads), run.repeats)
    return Measurement(
        f"product page (product + approved reviews), {run.reads} reads over "
        f"{min(len(skus), run.reads)} products",
        [
            Metric("queries per read", queries / run.reads),
            Metric(ms_label(run, "ms per read"), ms / run.reads),
        ],
    )


@after("cache")
def cache_after(run: Run) -> Measurement:
    skus = hot_skus()
    go = read_pages(skus, run.reads, cached_product_detail)
    go()  # warm the cache: the figures are those of hits
    queries, ms = timed(go, run.repeats)
    same = all(cached_product_detail_data(sku) == product_detail_data(sku) for sku in skus)
    fresh = fresh_after_write(skus[0])
    return Measurement(
        "the same reads through .cached() on a warm cache; "
        f"pages equal to uncached: {'yes' if same else 'NO'}; fresh after write: {fresh}",
        [
            Metric("queries per read", queries / run.reads),
            Metric(ms_label(run, "ms per read"), ms / run.reads),
        ],
    )


def fresh_after_write(sku: Any) -> str:
    """Approve a new review of a cached page; "yes" if the next cached read shows it."""
    product = Product.objects.get(sku=sku)
    cached_product_detail_data(sku)  # cached before the write
    with transaction.atomic():
        review = Review.objects.create(
            product=product,
            user=get_user_model().objects.filter(username__startswith=USERNAME_PREFIX).first(),
            rating=5,
            body="Written by the demo.",
            approved=True,
        )
    try:
        page = cached_product_detail_data(sku)
        fresh = review.pk in {r["id"] for r in page["reviews"]}
        return "yes" if fresh and page == product_detail_data(sku) else "NO"
    finally:
        review.delete()


def top_reviewed_page() -> list[Product]:
    return list(
        Product.objects.annotate(
            approved_count=Count("reviews", filter=Q(reviews__approved=True))
        ).order_by("-approved_count", "pk")[:TOP_PAGE]
    )


@section("denorm")
def denorm_before(run: Run) -> Measurement:
    queries, ms = timed(top_reviewed_page, run.repeats)
    return Measurement(
        f"top-{TOP_PAGE} page by approved-review COUNT(), aggregated on every read",
        [Metric("queries", queries), Metric(ms_label(run), ms)],
    )


def top_counter_page() -> list[Product]:
    return list(Product.objects.order_by("-approved_review_count", "pk")[:TOP_PAGE])


@after("denorm")
def denorm_after(run: Run) -> Measurement:
    real = Product.objects.annotate(real=Count("reviews", filter=Q(reviews__approved=True)))
    drifted = real.exclude(approved_review_count=F("real")).count()
    same_page = [p.pk for p in top_counter_page()] == [p.pk for p in top_reviewed_page()]
    queries, ms = timed(top_counter_page, run.repeats)
    return Measurement(
        "django_scalekit.denorm CounterField, ordered by the stored counter (indexed); "
        f"counters equal COUNT(): {'yes' if not drifted else f'NO, {drifted} differ'}, "
        f"same page: {'yes' if same_page else 'NO'}",
        [Metric("queries", queries), Metric(ms_label(run), ms)],
    )


@section("partitioning", needs_postgres=True)
def partitioning_before(run: Run) -> Measurement:
    start, end = OLDEST_MONTH
    month = Event.objects.filter(created__gte=start, created__lt=end)
    rows = month.count()

    table = connection.ops.quote_name(Event._meta.db_table)
    sql = f"DELETE FROM {table} WHERE created >= %s AND created < %s"

    def drop_month() -> None:
        # One DELETE statement, as plain Django sends it when nothing listens to deletes
        # (the cache's receivers would make QuerySet.delete() load the rows first).
        # Rolled back, so every repeat deletes the same rows.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [start, end])
            transaction.set_rollback(True)

    queries, ms = timed(drop_month, run.repeats)
    return Measurement(
        f"deleting one month of events ({start:%B %Y}): DELETE filtered on created",
        [
            Metric("rows deleted", rows, compare=False),
            Metric("queries", queries),
            Metric(ms_label(run), ms),
        ],
    )


PARTITIONED_EVENTS = "shop_event_by_month"  # the events again, in a partitioned table


@after("partitioning")
def partitioning_after(run: Run) -> Measurement:
    """The same month, dropped as a partition by ``maintain()`` once it is past retention.

    A copy of the events in a table partitioned by month (made here and dropped at the
    end, so SQLite migrations stay as they are): ``maintain()`` creates the partitions, and
    each repeat refills the oldest month before timing the run that drops it.
    """
    from django_scalekit.partitioning import maintain

    start, end = OLDEST_MONTH
    months = (EPOCH.year - start.year) * 12 + EPOCH.month - start.month
    events, table = (
        connection.ops.quote_name(t) for t in (Event._meta.db_table, PARTITIONED_EVENTS)
    )
    build = {"interval": "month", "premake": months, "timezone": "UTC", "key": "created"}
    expire = {**build, "premake": 0, "retention": f"{months - 1} months", "on_expire": "drop"}

    def refill() -> None:
        maintain(table=PARTITIONED_EVENTS, options=build, now=start)  # recreates the month
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} SELECT * FROM {events} WHERE created >= %s AND created < %s",
                [start, end],
            )
            cursor.execute(f"ANALYZE {table}")

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
        cursor.execute(
            f"CREATE TABLE {table} (LIKE {events} INCLUDING DEFAULTS) PARTITION BY RANGE (created)"
        )
    try:
        maintain(table=PARTITIONED_EVENTS, options=build, now=start)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} SELECT * FROM {events} WHERE created >= %s", [start]
            )
        times, queries, dropped, rows = [], 0, [], 0
        for i in range(run.repeats + 1):
            if i:
                refill()
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT count(*) FROM {table} WHERE created >= %s AND created < %s",
                    [start, end],
                )
                (rows,) = cursor.fetchone()
            with count_queries() as captured:
                began = time.perf_counter()
                result = maintain(
                    table=PARTITIONED_EVENTS, options=expire, now=EPOCH, allow_drop=True
                )
                elapsed = time.perf_counter() - began
            if i == 0:  # the warm-up, counted as the before one is
                queries = statement_count(captured[DEFAULT_DB_ALIAS])
                dropped = [step.name for step in result.applied if step.action == "drop"]
            else:
                times.append(elapsed)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    return Measurement(
        f"django_scalekit.partitioning maintain(): the month dropped as a partition "
        f"({', '.join(dropped) or 'nothing dropped'}) of a monthly partitioned copy",
        [
            Metric("rows deleted", rows, compare=False),
            Metric("queries", queries),
            Metric(ms_label(run), statistics.median(times) * 1000),
        ],
    )


@section("routers", needs_postgres=True, needs_replica=True)
def routers_before(run: Run) -> Measurement:
    replicas = replica_aliases()
    go = read_pages(hot_skus(), run.reads)
    with count_queries(DEFAULT_DB_ALIAS, *replicas) as captured:
        go()
    _, ms = timed(go, run.repeats)
    on_replicas = sum(statement_count(captured[alias]) for alias in replicas)
    return Measurement(
        f"{run.reads} product-page reads, replicas configured: {', '.join(replicas)}",
        [
            Metric(
                "queries on the primary", statement_count(captured[DEFAULT_DB_ALIAS]), compare=False
            ),
            Metric("queries on replicas", on_replicas, compare=False),
            Metric(ms_label(run, "ms per read"), ms / run.reads),
        ],
    )


# --- running and printing ---------------------------------------------------------------


@dataclass
class Result:
    section: Section
    before: Measurement | None = None
    after: Measurement | None = None
    skipped: str | None = None
    seconds: float = 0.0


def run_report(run: Run, on_section: Callable[[str], None] | None = None) -> list[Result]:
    results = []
    for sec in SECTIONS.values():
        if on_section:
            on_section(sec.name)
        started = time.perf_counter()
        reason = sec.skip_reason()
        if reason:
            result = Result(sec, skipped=reason)
        else:
            result = Result(sec, before=sec.before(run), after=sec.after(run))
        result.seconds = time.perf_counter() - started
        results.append(result)
    return results


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.2f}"


def _ratio(before: Metric, after: Metric | None, dash: str, times: str) -> str:
    if after is None:
        return dash
    if not before.compare or not after.value or not before.value:
        return ""
    return f"{before.value / after.value:.1f}{times}"


def render(results: list[Result], *, unicode: bool = True) -> str:
    """The report as aligned text tables, one per section."""
    dash, times = ("\u2014", "\u00d7") if unicode else ("-", "x")  # em dash, times sign
    lines = []
    for result in results:
        name = result.section.name
        if result.skipped or result.before is None:
            lines += [f"{name}: {result.skipped}", ""]
            continue
        lines.append(f"{name}: {result.before.subject}")
        rows = [("metric", "before", "after", "ratio")]
        for metric in result.before.metrics:
            other = result.after.get(metric.label) if result.after else None
            rows.append(
                (
                    metric.label,
                    _number(metric.value),
                    _number(other.value) if other else dash,
                    _ratio(metric, other, dash, times),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for i, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  " + " | ".join(cells).rstrip())
            if i == 0:
                lines.append("  " + "-+-".join("-" * w for w in widths))
        note = result.after.subject if result.after else "not built yet"
        lines += [f"  after: {note}", ""]
    return "\n".join(lines).rstrip() + "\n"
