"""Settings of ``django_scalekit.denorm``: ``SCALEKIT_DENORM``."""

from __future__ import annotations

from typing import Any

from django.core import checks

from django_scalekit._settings import ConcernSettings, check_values, positive_int

DEFAULTS: dict[str, Any] = {
    # parents per set-based UPDATE when recounting; small batches keep locks short
    "RECOUNT_BATCH_SIZE": 1000,
}

settings = ConcernSettings("SCALEKIT_DENORM", DEFAULTS)


def check() -> list[checks.CheckMessage]:
    errors = settings.check_shape()
    if errors and errors[0].id == "django_scalekit.E001":
        return errors
    return errors + check_values(
        settings, {"RECOUNT_BATCH_SIZE": ("django_scalekit.E030", positive_int)}
    )
