"""``@cached(depends_on=[...])``: cache an expensive function until its tables change."""

from __future__ import annotations

import functools
import inspect
import pickle
from collections.abc import Callable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar

from django.apps import apps
from django.db import models, router

from django_scalekit.cache import engine, invalidation

P = ParamSpec("P")
R = TypeVar("R")


def cached(
    timeout: int | None = None,
    depends_on: Sequence[type[models.Model] | str] = (),
    using: str | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Cache ``func(*args, **kwargs)`` (key: the function and its pickled arguments).

    Works on ``async def`` functions too (``await f(...)``): a hit is one asynchronous
    cache call; a miss runs in Django's sync thread, like Django's async ORM methods.

    The value is dropped when any model in ``depends_on`` (classes or ``"app.Model"``)
    is written. ``using`` is the database the function reads (default: the router's
    read alias of the first model); a replica read is stored only once the replica is
    shown to have replayed the last write. Without ``depends_on`` the value lives
    until its timeout. Arguments that cannot be pickled make the call uncached.
    """

    def decorate(func: Callable[P, R]) -> CachedFunction[P, R]:
        return CachedFunction(func, timeout, tuple(depends_on), using)

    return decorate


class CachedFunction(Generic[P, R]):
    """A function wrapped by ``@cached``; ``.refresh(...)`` recomputes and stores its value."""

    def __init__(
        self,
        func: Callable[P, R],
        timeout: int | None,
        depends_on: tuple[type[models.Model] | str, ...],
        using: str | None,
    ) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.timeout = timeout
        self.depends_on = depends_on
        self.using = using
        self.name = f"{func.__module__}.{func.__qualname__}"
        self.is_async = inspect.iscoroutinefunction(func)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # as a method: bind like a plain function would (the instance is part of the key)
        return self if instance is None else functools.partial(self, instance)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.is_async:
            return self._acall(False, args, kwargs)  # type: ignore[return-value]
        return self._call(False, args, kwargs)

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function now and store its result, e.g. from a periodic task."""
        if self.is_async:
            return self._acall(True, args, kwargs)  # type: ignore[return-value]
        return self._call(True, args, kwargs)

    async def _acall(self, refresh: bool, args: Any, kwargs: Any) -> Any:
        # A hit without leaving the event loop; anything else (lease, store) is
        # blocking: it runs in Django's sync thread, and the coroutine, on a miss,
        # back on this event loop.
        from asgiref.sync import async_to_sync, sync_to_async

        if not refresh:
            material, alias, _ = self._key(args, kwargs)
            if material is not None:
                found, value = await engine.aget(material, alias, record=False)
                if found:
                    return value

        def run() -> Any:
            return self._call(refresh, args, kwargs, async_to_sync(self.func))  # type: ignore[arg-type]

        return await sync_to_async(run)()

    def _call(
        self, refresh: bool, args: Any, kwargs: Any, func: Callable[..., Any] | None = None
    ) -> R:
        func = func or self.func
        material, alias, deps = self._key(args, kwargs)
        if material is None:
            return func(*args, **kwargs)  # type: ignore[no-any-return]
        return engine.fetch(
            material,
            alias,
            lambda: deps,
            lambda: func(*args, **kwargs),
            self.timeout,
            record=False,
            refresh=refresh,
        )

    def _key(self, args: Any, kwargs: Any) -> tuple[bytes | None, str, frozenset[str]]:
        """(what identifies the call, the database it reads, the tables it depends on)."""
        model_list = [apps.get_model(m) if isinstance(m, str) else m for m in self.depends_on]
        tables: set[str] = set()
        for model in model_list:
            tables |= invalidation.tables_of(model)
        # no dependency: a counter nobody bumps, so the value lives until its timeout
        deps = frozenset(tables or {"*"})
        alias = self.using or (router.db_for_read(model_list[0]) if model_list else "default")
        try:
            material = pickle.dumps(
                ("function", self.name, args, sorted(kwargs.items())), pickle.HIGHEST_PROTOCOL
            )
        except Exception:
            return None, alias, deps
        return material, alias, deps
