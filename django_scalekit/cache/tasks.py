"""Celery task refreshing a ``@cached`` function ahead of its expiry.

Schedule it (Celery beat) more often than the function's timeout, so readers never
miss: ``refresh_cached.delay("shop.stats.product_summary", [product_id])``. This
module imports Celery; import it from your Celery app (``app.conf.imports``) or a
tasks module of yours.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils.module_loading import import_string

from django_scalekit.cache.decorators import CachedFunction


@shared_task(name="django_scalekit.cache.refresh_cached")
def refresh_cached(
    path: str, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None
) -> None:
    """Recompute ``path(*args, **kwargs)`` (a ``@cached`` function) and store the result."""
    func = import_string(path)
    if not isinstance(func, CachedFunction):
        raise TypeError(f"{path} is not decorated with django_scalekit.cache.cached")
    func.refresh(*(args or []), **(kwargs or {}))
