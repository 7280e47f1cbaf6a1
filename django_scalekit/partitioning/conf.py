"""Settings of ``django_scalekit.partitioning``: ``SCALEKIT_PARTITIONING``."""

from __future__ import annotations

import re
from typing import Any

from django.core import checks

from django_scalekit._settings import ConcernSettings, boolean, check_values

DEFAULTS: dict[str, Any] = {
    # "app_label.ModelName" -> that model's partitioning options
    "MODELS": {},
    # how long maintenance may wait for a lock before it retries (PostgreSQL syntax)
    "LOCK_TIMEOUT": "2s",
    # destructive steps (DROP of expired partitions) need this or --allow-drop
    "ALLOW_DROP": False,
}

settings = ConcernSettings("SCALEKIT_PARTITIONING", DEFAULTS)

_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


def _models(value: Any) -> str | None:
    hint = 'Write {"app_label.ModelName": {"interval": "month", ...}, ...}.'
    if not isinstance(value, dict):
        return hint
    for label, options in value.items():
        if not isinstance(label, str) or label.count(".") != 1 or not isinstance(options, dict):
            return hint
    return None


def _lock_timeout(value: Any) -> str | None:
    if isinstance(value, str) and _DURATION.match(value.strip()):
        return None
    return 'Write a PostgreSQL duration such as "2s" or "500ms".'


def check() -> list[checks.CheckMessage]:
    errors = settings.check_shape()
    if errors and errors[0].id == "django_scalekit.E001":
        return errors
    return errors + check_values(
        settings,
        {
            "MODELS": ("django_scalekit.E040", _models),
            "LOCK_TIMEOUT": ("django_scalekit.E041", _lock_timeout),
            "ALLOW_DROP": ("django_scalekit.E042", boolean),
        },
    )
