"""Settings of ``django_scalekit.cache``: ``SCALEKIT_CACHE``."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core import checks

from django_scalekit._settings import (
    ConcernSettings,
    boolean,
    check_values,
    non_negative_number,
    positive_int,
)

DEFAULTS: dict[str, Any] = {
    # alias in settings.CACHES holding cached values and version counters
    "CACHE": "default",
    # seconds; every stored value expires, so memory stays bounded
    "TIMEOUT": 300,
    "KEY_PREFIX": "scalekit",
    # False turns every .cached() read and @cached call into a plain call (writes still bump)
    "ENABLED": True,
    # seconds a reader that missed holds the right to run the query; others wait up to this
    "LEASE_TIMEOUT": 2.0,
    # seconds the cache is skipped after a cache-server error, so a dead server costs one timeout
    "FAILURE_BACKOFF": 1.0,
    # seconds a per-table version counter lives; a missing counter only causes misses
    "VERSION_TIMEOUT": 86400,
    # django-redis: each thread reads hits on a connection of its own (False: the pool's)
    "THREAD_CONNECTIONS": True,
}

settings = ConcernSettings("SCALEKIT_CACHE", DEFAULTS)


def _cache_alias(value: Any) -> str | None:
    if value in django_settings.CACHES:
        return None
    aliases = ", ".join(sorted(django_settings.CACHES))
    return f"Write one of the aliases in settings.CACHES: {aliases}."


def _timeout(value: Any) -> str | None:
    if value is None:
        return "Values without a timeout are never evicted; write a number of seconds, e.g. 300."
    return positive_int(value)


def _prefix(value: Any) -> str | None:
    if isinstance(value, str) and value and not any(c.isspace() for c in value):
        return None
    return 'Write a short non-empty string without spaces, e.g. "scalekit".'


def _lease(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return None
    return "Write a number of seconds greater than 0, e.g. 2 (a little above your slowest query)."


def check() -> list[checks.CheckMessage]:
    errors = settings.check_shape()
    if errors and errors[0].id == "django_scalekit.E001":
        return errors
    return errors + check_values(
        settings,
        {
            "CACHE": ("django_scalekit.E020", _cache_alias),
            "TIMEOUT": ("django_scalekit.E021", _timeout),
            "KEY_PREFIX": ("django_scalekit.E022", _prefix),
            "ENABLED": ("django_scalekit.E023", boolean),
            "LEASE_TIMEOUT": ("django_scalekit.E024", _lease),
            "FAILURE_BACKOFF": ("django_scalekit.E025", non_negative_number),
            "VERSION_TIMEOUT": ("django_scalekit.E026", positive_int),
            "THREAD_CONNECTIONS": ("django_scalekit.E027", boolean),
        },
    )
