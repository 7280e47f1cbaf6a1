"""Randomised, time-bounded: writers and readers on versioned rows, zero stale reads.

Each writer owns some rows and writes increasing versions through every write path
(save, update, bulk_update, in or out of atomic blocks; some roll back, whole or to a
savepoint). A reader notes the last version whose write *returned* before its read
started; the cached read must show that version or a later one, and never a
rolled-back one.
"""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Max
from django.test import override_settings

from django_scalekit.cache import stats
from tests.test_cache_helpers import make_product, qs, reset_cache, start
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db(transaction=True)

SECONDS = 2.5
ROWS = 6


@pytest.fixture(autouse=True, params=["default", "locmem"])
def backend(request):
    reset_cache()
    with override_settings(SCALEKIT_CACHE={"CACHE": request.param}):
        yield request.param
    reset_cache()


def test_no_stale_read_under_concurrent_writes():
    pks = [make_product(f"p{i}", "0").pk for i in range(ROWS)]
    committed = dict.fromkeys(pks, 0)  # pk -> last version whose write returned
    stop = time.monotonic() + SECONDS
    hard_stop = stop + 20  # a loaded machine gets more time to reach enough reads
    stale: list[str] = []
    reads = [0]

    def running() -> bool:
        now = time.monotonic()
        return now < stop or (reads[0] <= 100 and now < hard_stop)

    def write(rng: random.Random, pk: int, version: int) -> None:
        how = rng.randrange(5)
        if how == 0:
            p = Product.objects.get(pk=pk)
            p.price = Decimal(version)
            p.save()
        elif how == 1:
            qs().filter(pk=pk).update(price=version)
        elif how == 2:
            with transaction.atomic():
                qs().filter(pk=pk).update(price=version)
                if rng.random() < 0.3:
                    qs().filter(pk=pk).update(price=version)  # twice in one transaction
        elif how == 3:
            p = Product.objects.get(pk=pk)
            p.price = Decimal(version)
            qs().bulk_update([p], ["price"])
        else:
            with transaction.atomic():
                p = Product.objects.select_for_update().get(pk=pk)
                p.price = Decimal(version)
                p.save()
        committed[pk] = version

    rolled_back: set[tuple[int, int]] = set()

    class Rollback(Exception):
        pass

    def writer(seed: int, mine: list[int]) -> None:
        rng = random.Random(seed)
        versions = dict.fromkeys(mine, 0)
        while running():
            pk = rng.choice(mine)
            versions[pk] += 1
            if rng.random() < 0.15:
                # a write that never commits (whole transaction or savepoint): never seen
                rolled_back.add((pk, versions[pk]))
                try:
                    with transaction.atomic():
                        if rng.random() < 0.5:  # the savepoint rolls back, the rest commits
                            try:
                                with transaction.atomic():
                                    qs().filter(pk=pk).update(price=versions[pk])
                                    raise Rollback
                            except Rollback:
                                pass
                        else:
                            qs().filter(pk=pk).update(price=versions[pk])
                            raise Rollback
                except Rollback:
                    pass
                continue
            write(rng, pk, versions[pk])
            time.sleep(rng.random() * 0.005)

    def read(rng: random.Random, pk: int) -> int:
        how = rng.randrange(5)
        if how == 0:
            return int(qs().cached().get(pk=pk).price)
        if how == 1:
            return int(qs().cached().filter(pk=pk).values_list("price", flat=True)[0])
        if how == 2:
            rows = {p.pk: p.price for p in qs().cached().order_by("pk")}
            return int(rows[pk])
        if how == 3:
            return int(qs().cached().filter(pk=pk).aggregate(m=Max("price"))["m"])
        return int(qs().cached().filter(pk=pk, price__gte=0).first().price)

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        while running():
            pk = rng.choice(pks)
            floor = committed[pk]
            seen = read(rng, pk)
            reads[0] += 1
            if seen < floor:
                stale.append(f"row {pk}: read version {seen} after {floor} was committed")
            if (pk, seen) in rolled_back:
                stale.append(f"row {pk}: read version {seen}, which was rolled back")

    threads = [start(lambda s=s: writer(s, pks[s::2])) for s in range(2)]
    threads += [start(lambda s=s: reader(100 + s)) for s in range(4)]
    for t in threads:
        t.value(SECONDS + 50)
    assert stale == []
    assert reads[0] > 100
    assert stats.hits > 0
    assert stats.misses > 0


def test_no_stale_read_with_concurrent_invalidations_only():
    # many readers racing on one key while a writer keeps bumping it
    p = make_product("v", "0")
    done = threading.Event()
    committed = [0]
    stale = []

    def writer():
        for v in range(1, 60):
            qs().filter(pk=p.pk).update(price=v)
            committed[0] = v
        done.set()

    def reader():
        while not done.is_set():
            floor = committed[0]
            seen = int(qs().cached().get(pk=p.pk).price)
            if seen < floor:
                stale.append((seen, floor))

    threads = [start(reader) for _ in range(4)] + [start(writer)]
    for t in threads:
        t.value(30)
    assert stale == []
    assert int(qs().cached().get(pk=p.pk).price) == 59
