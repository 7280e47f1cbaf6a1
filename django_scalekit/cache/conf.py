"""Settings of ``django_scalekit.cache``: ``SCALEKIT_CACHE``."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core import checks

from django_scalekit._settings import ConcernSettings, check_values, positive_int

DEFAULTS: dict[str, Any] = {
    # alias in settings.CACHES holding cached values and version counters
    "CACHE": "default",
    # seconds; every stored value expires, so memory stays bounded
    "TIMEOUT": 300,
    "KEY_PREFIX": "scalekit",
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
    if isinstance(value, str) and value:
        return None
    return 'Write a short non-empty string, e.g. "scalekit".'


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
        },
    )
