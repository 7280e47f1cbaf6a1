"""Settings of ``django_scalekit.partitioning``: ``SCALEKIT_PARTITIONING``."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core import checks

from django_scalekit._settings import ConcernSettings, boolean, check_values, positive_int

DEFAULTS: dict[str, Any] = {
    # "app_label.ModelName" -> that model's partitioning options (MODEL_DEFAULTS)
    "MODELS": {},
    # how long maintenance may wait for a lock before it retries (PostgreSQL syntax)
    "LOCK_TIMEOUT": "2s",
    # how many times a step that hit LOCK_TIMEOUT is tried before maintenance gives up
    "LOCK_RETRIES": 5,
    # destructive steps (DROP of expired partitions) need this or --allow-drop
    "ALLOW_DROP": False,
}

# The options of one entry of MODELS; "interval" is required.
MODEL_DEFAULTS: dict[str, Any] = {
    "interval": None,
    "premake": 3,
    "retention": None,
    "on_expire": "detach",
    "timezone": None,  # None: settings.TIME_ZONE
    "default_partition": False,
    "key": None,  # None: the partition key PostgreSQL reports
}

INTERVALS = ("hour", "day", "week", "month", "quarter", "year")
RETENTION_UNITS = {
    "hour": "hour",
    "hours": "hour",
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
    "quarter": "quarter",
    "quarters": "quarter",
    "year": "year",
    "years": "year",
}

settings = ConcernSettings("SCALEKIT_PARTITIONING", DEFAULTS)

# Registers the database check (``check --database``) with the settings check.
from . import checks as _database_checks  # noqa: E402, F401

_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")
_RETENTION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class ModelOptions:
    """One model's validated options (see ``MODEL_DEFAULTS``)."""

    interval: str
    premake: int = 3
    retention: tuple[int, str] | None = None
    on_expire: str = "detach"
    timezone: str = "UTC"
    default_partition: bool = False
    key: str | None = None


def parse_retention(value: Any) -> tuple[int, str] | None:
    """``"6 months"`` -> ``(6, "month")``; ``None`` for a value that does not parse."""
    if not isinstance(value, str):
        return None
    match = _RETENTION.match(value.lower())
    if not match or match.group(2) not in RETENTION_UNITS or int(match.group(1)) < 1:
        return None
    return int(match.group(1)), RETENTION_UNITS[match.group(2)]


def model_options(raw: dict[str, Any]) -> ModelOptions:
    """Merge ``raw`` over ``MODEL_DEFAULTS``; raises ``ValueError`` on a bad value."""
    problems = [hint for _, _, hint in option_errors(raw)]
    if problems:
        raise ValueError(" ".join(problems))
    merged = {**MODEL_DEFAULTS, **raw}
    return ModelOptions(
        interval=merged["interval"],
        premake=merged["premake"],
        retention=parse_retention(merged["retention"]) if merged["retention"] else None,
        on_expire=merged["on_expire"],
        timezone=merged["timezone"] or django_settings.TIME_ZONE or "UTC",
        default_partition=merged["default_partition"],
        key=merged["key"],
    )


def option_errors(raw: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(check id, option, hint) for each bad option of one MODELS entry."""
    errors: list[tuple[str, str, str]] = []
    for name in raw:
        if name not in MODEL_DEFAULTS:
            errors.append(
                (
                    "django_scalekit.E040",
                    str(name),
                    f"Unknown option {name!r}; valid options: {', '.join(MODEL_DEFAULTS)}.",
                )
            )
    merged = {**MODEL_DEFAULTS, **raw}
    if merged["interval"] not in INTERVALS:
        errors.append(
            ("django_scalekit.E043", "interval", f"Write one of: {', '.join(INTERVALS)}.")
        )
    premake = merged["premake"]
    if not isinstance(premake, int) or isinstance(premake, bool) or premake < 0:
        errors.append(
            (
                "django_scalekit.E044",
                "premake",
                "Write how many future partitions to keep ready, a whole number >= 0, e.g. 3.",
            )
        )
    if merged["retention"] is not None and parse_retention(merged["retention"]) is None:
        errors.append(
            (
                "django_scalekit.E045",
                "retention",
                'Write None (keep everything) or "<number> <unit>", e.g. "12 months"; units: '
                "hours, days, weeks, months, quarters, years.",
            )
        )
    if merged["on_expire"] not in ("detach", "drop"):
        errors.append(
            (
                "django_scalekit.E046",
                "on_expire",
                'Write "detach" (keep expired partitions as standalone tables) or "drop".',
            )
        )
    tz = merged["timezone"]
    if tz is not None and not _valid_zone(tz):
        errors.append(
            (
                "django_scalekit.E047",
                "timezone",
                'Write an IANA time zone name such as "UTC" or "Europe/Berlin", or None for '
                "settings.TIME_ZONE.",
            )
        )
    if not isinstance(merged["default_partition"], bool):
        errors.append(("django_scalekit.E048", "default_partition", "Write True or False."))
    if merged["key"] is not None and not isinstance(merged["key"], str):
        errors.append(
            (
                "django_scalekit.E048",
                "key",
                "Write the name of the date/datetime field the table is partitioned by, or None.",
            )
        )
    return errors


def _valid_zone(name: Any) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


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
    errors += check_values(
        settings,
        {
            "MODELS": ("django_scalekit.E040", _models),
            "LOCK_TIMEOUT": ("django_scalekit.E041", _lock_timeout),
            "LOCK_RETRIES": ("django_scalekit.E041", positive_int),
            "ALLOW_DROP": ("django_scalekit.E042", boolean),
        },
    )
    models = settings.as_dict()["MODELS"] if isinstance(settings.user_value(), dict) else {}
    if _models(models) is None:
        for label, raw in models.items():
            for check_id, option, hint in option_errors(raw):
                errors.append(
                    checks.Error(
                        f"settings.SCALEKIT_PARTITIONING['MODELS'][{label!r}][{option!r}] "
                        f"= {raw.get(option)!r} is not valid.",
                        hint=hint,
                        id=check_id,
                    )
                )
        from .checks import model_errors  # needs the app registry, which is ready here

        errors += model_errors({k: v for k, v in models.items() if not option_errors(v)})
    return errors
