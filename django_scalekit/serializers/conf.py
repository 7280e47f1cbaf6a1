"""Settings of ``django_scalekit.serializers``: ``SCALEKIT_SERIALIZERS``."""

from __future__ import annotations

from typing import Any

from django.core import checks

from django_scalekit._settings import ConcernSettings, boolean, check_values

DEFAULTS: dict[str, Any] = {
    # Decimals rendered as strings, as DRF does by default (COERCE_DECIMAL_TO_STRING)
    "COERCE_DECIMAL_TO_STRING": True,
    # "iso-8601" (DRF's default output) or a strftime pattern
    "DATETIME_FORMAT": "iso-8601",
    # False: None is written as null (as DRF does); True: such keys are left out
    "OMIT_NONE": False,
}

settings = ConcernSettings("SCALEKIT_SERIALIZERS", DEFAULTS)


def _datetime_format(value: Any) -> str | None:
    if isinstance(value, str) and value and (value.lower() == "iso-8601" or "%" in value):
        return None
    return 'Write "iso-8601" (DRF\'s format) or a strftime pattern such as "%Y-%m-%d %H:%M".'


def check() -> list[checks.CheckMessage]:
    errors = settings.check_shape()
    if errors and errors[0].id == "django_scalekit.E001":
        return errors
    return errors + check_values(
        settings,
        {
            "COERCE_DECIMAL_TO_STRING": ("django_scalekit.E010", boolean),
            "DATETIME_FORMAT": ("django_scalekit.E011", _datetime_format),
            "OMIT_NONE": ("django_scalekit.E012", boolean),
        },
    )
