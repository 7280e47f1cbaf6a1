"""Settings of ``django_scalekit.routers``: ``SCALEKIT_ROUTER``."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core import checks

from django_scalekit._settings import (
    ConcernSettings,
    boolean,
    check_values,
    non_negative_number,
)

DEFAULTS: dict[str, Any] = {
    "PRIMARY": "default",
    # alias -> weight; a list of aliases means equal weights
    "REPLICAS": {},
    "MAX_LAG_SECONDS": 2,
    "MAX_LAG_BYTES": 16_000_000,
    "COOLDOWN_SECONDS": 5,
    "STICKY": True,
}

settings = ConcernSettings("SCALEKIT_ROUTER", DEFAULTS)


def replica_weights() -> dict[str, int]:
    """``REPLICAS`` normalised to alias -> weight."""
    replicas = settings.REPLICAS
    if isinstance(replicas, dict):
        return dict(replicas)
    return dict.fromkeys(replicas, 1)


def _alias_errors() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    aliases = sorted(django_settings.DATABASES)
    primary = settings.PRIMARY
    if primary not in django_settings.DATABASES:
        errors.append(
            checks.Error(
                f"settings.SCALEKIT_ROUTER['PRIMARY'] = {primary!r} is not a database alias.",
                hint=f"Write one of the aliases in settings.DATABASES: {', '.join(aliases)}.",
                id="django_scalekit.E050",
            )
        )
    replicas = settings.REPLICAS
    if not isinstance(replicas, dict | list | tuple):
        return [
            *errors,
            checks.Error(
                "settings.SCALEKIT_ROUTER['REPLICAS'] must map replica aliases to weights.",
                hint='Write e.g. {"replica1": 1, "replica2": 2}, or a list of aliases.',
                id="django_scalekit.E051",
            ),
        ]
    for alias, weight in replica_weights().items():
        if alias not in django_settings.DATABASES or alias == primary:
            errors.append(
                checks.Error(
                    f"settings.SCALEKIT_ROUTER['REPLICAS'] names {alias!r}, which is not a "
                    "replica alias in settings.DATABASES.",
                    hint=f"Use aliases other than PRIMARY among: {', '.join(aliases)}.",
                    id="django_scalekit.E051",
                )
            )
        if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
            errors.append(
                checks.Error(
                    f"settings.SCALEKIT_ROUTER['REPLICAS'][{alias!r}] has weight {weight!r}.",
                    hint="Write a whole number greater than 0; remove a replica to take it out.",
                    id="django_scalekit.E052",
                )
            )
    return errors


def check() -> list[checks.CheckMessage]:
    errors = settings.check_shape()
    if errors and errors[0].id == "django_scalekit.E001":
        return errors
    return (
        errors
        + _alias_errors()
        + check_values(
            settings,
            {
                "MAX_LAG_SECONDS": ("django_scalekit.E053", non_negative_number),
                "MAX_LAG_BYTES": ("django_scalekit.E053", non_negative_number),
                "COOLDOWN_SECONDS": ("django_scalekit.E054", non_negative_number),
                "STICKY": ("django_scalekit.E055", boolean),
            },
        )
    )
