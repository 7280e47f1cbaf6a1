"""Shared helpers of the cache tests (no tests here)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.core.cache import caches
from django.db import connections

from django_scalekit.cache import CachedQuerySet, engine
from tests.testapp.models import Product


def qs(model: Any = Product) -> CachedQuerySet[Any]:
    return CachedQuerySet(model=model)


def make_product(name: str = "widget", price: str = "1.00", **kw: Any) -> Product:
    return Product.objects.create(name=name, price=Decimal(price), **kw)


def reset_cache() -> None:
    for alias in ("default", "locmem"):
        cache = caches[alias]
        if hasattr(cache, "client"):
            cache.client.get_client(write=True).flushdb()
        else:
            cache.clear()
    engine._pending.clear()
    engine._learned.clear()
    engine._down_until = 0.0
    engine._epoch_written = engine._failures
    engine._store = None
    engine.stats.reset()


class Thread(threading.Thread):
    """A thread that records its result or exception and closes its connections."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._fn = target
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:
            self.error = exc
        finally:
            connections.close_all()

    def value(self, timeout: float = 20) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def start(fn: Callable[[], Any]) -> Thread:
    t = Thread(fn)
    t.start()
    return t


@contextmanager
def pause_queries(
    alias: str,
    *,
    before: threading.Event | None = None,
    after: threading.Event | None = None,
    go: threading.Event,
    match: str = "SELECT",
) -> Iterator[None]:
    """In this thread, stop the first matching query just before/after it runs until ``go``."""
    done = False

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal done
        hit = not done and sql.lstrip().upper().startswith(match) and "pg_" not in sql
        if hit:
            done = True
            if before is not None:
                before.set()
                assert go.wait(20)
        result = execute(sql, params, many, context)
        if hit and after is not None:
            after.set()
            assert go.wait(20)
        return result

    with connections[alias].execute_wrapper(wrapper):
        yield
