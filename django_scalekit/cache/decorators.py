"""``@cached(depends_on=[...])``: cache an expensive function until its tables change."""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from django.apps import apps
from django.db import models, router

from django_scalekit.cache import engine, invalidation

P = ParamSpec("P")
R = TypeVar("R")


def cached(
    timeout: int | None = None,
    depends_on: Sequence[type[models.Model] | str] = (),
    using: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Cache ``func(*args, **kwargs)`` (key: the function and its pickled arguments).

    The value is dropped when any model in ``depends_on`` (classes or ``"app.Model"``)
    is written. ``using`` is the database the function reads (default: the router's
    read alias of the first model); a replica read is stored only once the replica is
    shown to have replayed the last write. Without ``depends_on`` the value lives
    until its timeout. Arguments that cannot be pickled make the call uncached.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        name = f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            model_list = [apps.get_model(m) if isinstance(m, str) else m for m in depends_on]
            tables: set[str] = set()
            for model in model_list:
                tables |= invalidation.tables_of(model)
            # no dependency: a counter nobody bumps, so the value lives until its timeout
            tables = tables or {"*"}
            alias = using or (router.db_for_read(model_list[0]) if model_list else "default")
            try:
                material = pickle.dumps(
                    ("function", name, args, sorted(kwargs.items())), pickle.HIGHEST_PROTOCOL
                )
            except Exception:
                return func(*args, **kwargs)
            deps = frozenset(tables)
            return engine.fetch(
                material,
                alias,
                lambda: deps,
                lambda: func(*args, **kwargs),
                timeout,
                record=False,
            )

        return wrapper

    return decorate
