"""Cached querysets and functions with transaction-aware, race-free invalidation.

Importing this package needs Django only; django-redis is used when configured.
"""

from django_scalekit.cache.decorators import cached
from django_scalekit.cache.engine import stats
from django_scalekit.cache.invalidation import invalidate
from django_scalekit.cache.queryset import CachedManager, CachedQuerySet
from django_scalekit.cache.replicas import set_caught_up_check, set_primary_resolver

__all__ = [
    "CachedManager",
    "CachedQuerySet",
    "cached",
    "invalidate",
    "set_caught_up_check",
    "set_primary_resolver",
    "stats",
]
