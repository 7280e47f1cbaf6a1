"""Settings of ``django_scalekit.serializers``: ``SCALEKIT_SERIALIZERS``."""

from __future__ import annotations

from typing import Any

from django.core import checks

from django_scalekit._settings import ConcernSettings, boolean, check_values

DEFAULTS: dict[str, Any] = {
    # Decimals rendered as strings, as DRF does by default (COERCE_DECIMAL_TO_STRING)
    "COERCE_DECIMAL_TO_STRING": True,
}

settings = ConcernSettings("SCALEKIT_SERIALIZERS", DEFAULTS)


def check() -> list[checks.CheckMessage]:
    errors = settings.check_shape()
    if errors and errors[0].id == "django_scalekit.E001":
        return errors
    return errors + check_values(
        settings, {"COERCE_DECIMAL_TO_STRING": ("django_scalekit.E010", boolean)}
    )
