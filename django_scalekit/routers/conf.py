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
    # read-your-writes window where WAL positions are unavailable (not PostgreSQL)
    "STICKY_SECONDS": 5,
    # how often a replica's replay position and lag are read, at most
    "POLL_INTERVAL_MS": 100,
    # Celery tasks: "sticky" (follow the enqueuing request), "primary" or "replica"
    "CELERY_MODE": "sticky",
}

ROUTER_PATH = "django_scalekit.routers.PrimaryReplicaRouter"
MIDDLEWARE_PATH = "django_scalekit.routers.ReadYourWritesMiddleware"
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
CELERY_MODES = ("sticky", "primary", "replica")

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


def _router_installed() -> bool:
    from django_scalekit.routers.router import PrimaryReplicaRouter

    for entry in getattr(django_settings, "DATABASE_ROUTERS", []):
        if entry == ROUTER_PATH or isinstance(entry, PrimaryReplicaRouter):
            return True
    return False


def _wiring_errors() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    primary = settings.PRIMARY
    databases = django_settings.DATABASES
    if primary in databases and isinstance(settings.REPLICAS, dict | list | tuple):
        where = _server(databases[primary])
        for alias in replica_weights():
            if alias in databases and alias != primary and _server(databases[alias]) == where:
                errors.append(
                    checks.Error(
                        f"settings.SCALEKIT_ROUTER['REPLICAS'] names {alias!r}, which points at "
                        f"the same server and database as the primary {primary!r}.",
                        hint=f"Point DATABASES[{alias!r}] at a streaming replica (its HOST/PORT), "
                        "or remove it from REPLICAS.",
                        id="django_scalekit.E059",
                    )
                )
    middleware = list(getattr(django_settings, "MIDDLEWARE", None) or [])
    if settings.STICKY is True and settings.REPLICAS and _router_installed():
        if MIDDLEWARE_PATH not in middleware:
            errors.append(
                checks.Error(
                    "settings.SCALEKIT_ROUTER['STICKY'] is on but ReadYourWritesMiddleware is "
                    "not in settings.MIDDLEWARE, so a client's next request may read stale rows.",
                    hint=f"Add {MIDDLEWARE_PATH!r} at the top of MIDDLEWARE, or write "
                    "SCALEKIT_ROUTER = {..., 'STICKY': False}.",
                    id="django_scalekit.E058",
                )
            )
        elif SESSION_MIDDLEWARE in middleware and middleware.index(
            SESSION_MIDDLEWARE
        ) < middleware.index(MIDDLEWARE_PATH):
            errors.append(
                checks.Error(
                    "ReadYourWritesMiddleware comes after SessionMiddleware in "
                    "settings.MIDDLEWARE: a session saved on the way out (after a login) is "
                    "not covered, and the next request may read the old session from a replica.",
                    hint=f"Move {MIDDLEWARE_PATH!r} above {SESSION_MIDDLEWARE!r}.",
                    id="django_scalekit.E058",
                )
            )
    return errors


def _server(entry: Any) -> tuple[Any, ...]:
    if not isinstance(entry, dict):
        return (id(entry),)
    return (
        entry.get("ENGINE"),
        entry.get("HOST") or "",
        str(entry.get("PORT") or ""),
        entry.get("NAME"),
    )


def _celery_mode(value: Any) -> str | None:
    if value in CELERY_MODES:
        return None
    return 'Write "sticky" (tasks follow the request that enqueued them), "primary" or "replica".'


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
                "STICKY_SECONDS": ("django_scalekit.E056", non_negative_number),
                "POLL_INTERVAL_MS": ("django_scalekit.E056", non_negative_number),
                "CELERY_MODE": ("django_scalekit.E057", _celery_mode),
            },
        )
        + _wiring_errors()
    )
