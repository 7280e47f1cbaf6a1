"""Model-level checks of ``SCALEKIT_PARTITIONING['MODELS']`` (E049); no database access."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.core import checks
from django.db import models

from .operations import key_problems


def partition_key(model: type[models.Model], options: dict[str, Any]) -> str | None:
    """The configured key, else django-postgres-extra's ``PartitioningMeta.key``."""
    if options.get("key"):
        return str(options["key"])
    meta = getattr(model, "_partitioning_meta", None)
    keys = getattr(meta, "key", None)
    if keys and len(keys) == 1:
        return str(keys[0])
    return None


def model_errors(
    configured: dict[str, dict[str, Any]], apps: Apps = global_apps
) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    partitioned: dict[type[models.Model], str] = {}
    for label, options in configured.items():
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            errors.append(
                checks.Error(
                    f"SCALEKIT_PARTITIONING['MODELS'] names {label!r}, which is not an "
                    "installed model.",
                    hint='Write "app_label.ModelName" of a model in INSTALLED_APPS.',
                    id="django_scalekit.E049",
                )
            )
            continue
        key = partition_key(model, options)
        if key is not None:
            for problem in key_problems(model, key):
                errors.append(
                    checks.Error(problem, hint=_KEY_HINT, obj=model, id="django_scalekit.E049")
                )
            field = next((f for f in model._meta.local_fields if f.name == key), None)
            if options.get("interval") == "hour" and type(field) is models.DateField:
                errors.append(
                    checks.Error(
                        f"{label} is partitioned by the date field {key!r}; hourly "
                        "partitions need a DateTimeField.",
                        hint='Write "interval": "day" (or longer).',
                        obj=model,
                        id="django_scalekit.E043",
                    )
                )
        partitioned[model] = label
    for model in apps.get_models():
        for field in model._meta.local_fields:
            target = getattr(field.remote_field, "model", None) if field.remote_field else None
            if target in partitioned and field.db_constraint:  # type: ignore[attr-defined]
                errors.append(
                    checks.Error(
                        f"{model._meta.label}.{field.name} is a foreign key into the "
                        f"partitioned table of {partitioned[target]}.",
                        hint="PostgreSQL can only reference a partitioned table through a "
                        "unique key that includes the partition key. Store the key columns "
                        "yourself, or write db_constraint=False and accept that the database "
                        "does not enforce the reference (retention removes rows it points to).",
                        obj=field,
                        id="django_scalekit.E049",
                    )
                )
    return errors


_KEY_HINT = (
    "Every unique key of a partitioned table must contain the partition key. On Django 5.2+ "
    'declare pk = models.CompositePrimaryKey("uid", "<key>") with a non-auto uid field.'
)


@checks.register(checks.Tags.database)
def check_partitioned_tables(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``manage.py check --database default``: each configured table is partitioned and
    its DEFAULT partition holds no rows. Warnings only (W040, W041): ``migrate`` runs
    database checks first and must not be blocked by what it may be about to fix."""
    databases = kwargs.get("databases")
    if not databases:
        return []
    from django.db import connections

    from .catalog import PartitioningError, default_rows_by_hour, read_parent, read_partitions
    from .conf import settings

    messages: list[checks.CheckMessage] = []
    for label in settings.MODELS:
        try:
            model = global_apps.get_model(label)
        except (LookupError, ValueError):
            continue  # reported by the settings check (E049)
        for alias in databases:
            connection = connections[alias]
            if connection.vendor != "postgresql":
                continue
            try:
                parent = read_parent(connection, model._meta.db_table)
            except PartitioningError as exc:
                if "does not exist" in str(exc):
                    continue  # migrate (which runs this check first) is about to create it
                # A warning, not an error: migrate must stay possible, it may be the fix.
                messages.append(
                    checks.Warning(
                        f"{label} on database {alias!r}: {exc}",
                        obj=model,
                        id="django_scalekit.W041",
                    )
                )
                continue
            default = next((p for p in read_partitions(connection, parent) if p.default), None)
            if default is None:
                continue
            rows = sum(n for _, n in default_rows_by_hour(connection, parent, default.name))
            if rows:
                messages.append(
                    checks.Warning(
                        f"{label} on database {alias!r}: the DEFAULT partition "
                        f"{default.name!r} holds {rows} rows.",
                        hint="Run manage.py scalekit_partitions --apply: it creates their "
                        "partitions and moves the rows there.",
                        obj=model,
                        id="django_scalekit.W040",
                    )
                )
    return messages
