"""The write path: bump a table's version once the write that changed it is durable.

Inside ``atomic()`` the bump is an on-commit callback (one per transaction and
savepoint level, holding every table written); in autocommit Django runs it at once,
right after the statement committed. Signals cover ``save()``, ``delete()`` (with its
cascades and SET_NULL updates) and many-to-many changes; ``CachedQuerySet`` covers
``update()``, ``bulk_create()`` and ``bulk_update()``. Raw SQL and writes through plain
querysets need ``invalidate()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connections, models, router, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from django_scalekit.cache import engine, replicas

_TABLES: dict[type[models.Model], frozenset[str]] = {}
_DELETION_TABLES: dict[type[models.Model], frozenset[str]] = {}


def tables_of(model: type[models.Model]) -> frozenset[str]:
    """The tables a write to ``model`` may change: its own and its concrete parents'."""
    found = _TABLES.get(model)
    if found is None:
        opts = (model._meta.concrete_model or model)._meta
        found = frozenset({opts.db_table} | {p._meta.db_table for p in opts.get_parent_list()})
        _TABLES[model] = found
    return found


def _deletion_tables(model: type[models.Model]) -> frozenset[str]:
    found = _DELETION_TABLES.get(model)
    if found is None:
        found = _DELETION_TABLES[model] = _compute_deletion_tables(model)
    return found


def _compute_deletion_tables(model: type[models.Model]) -> frozenset[str]:
    # A delete may also update rows that point at the deleted one (SET_NULL,
    # SET_DEFAULT, SET(...)) without sending any signal for them.
    tables = set(tables_of(model))
    for rel in (model._meta.concrete_model or model)._meta.related_objects:
        tables.add(rel.related_model._meta.db_table)
        through = getattr(rel, "through", None)
        if through is not None:
            tables.add(through._meta.db_table)
    return frozenset(tables)


def bump_now(alias: str, tables: Iterable[str]) -> None:
    primary = replicas.primary_of(alias)
    lsn = replicas.write_position(primary) if replicas.has_replicas(primary) else 0
    engine.bump(primary, tables, lsn)


def schedule(alias: str, tables: Iterable[str]) -> None:
    """Bump ``tables`` when the current transaction on ``alias`` commits (now in autocommit)."""
    tables = set(tables)
    if not tables:
        return
    connection = connections[alias]
    if not connection.in_atomic_block:
        bump_now(alias, tables)
        return
    if connection.run_on_commit:
        sids, func, *_ = connection.run_on_commit[-1]
        # Same savepoints (None marks an atomic block without one): rolled back together.
        if isinstance(func, engine.Bump) and sids - {None} == set(connection.savepoint_ids) - {
            None
        }:
            func.tables |= tables
            return
    callback = engine.Bump(alias)
    callback.tables |= tables
    transaction.on_commit(callback, using=alias)


def invalidate(
    target: type[models.Model] | models.Model | Iterable[type[models.Model] | models.Model],
    using: str | None = None,
) -> None:
    """Drop cached reads of a model's table, after a write the ORM did not see.

    Accepts a model, an instance or several. Inside ``atomic()`` the bump waits for the
    commit, like any other write.
    """
    items = target if isinstance(target, Iterable) else [target]
    for item in items:
        model = item if isinstance(item, type) else type(item)
        alias = using or router.db_for_write(model)
        schedule(alias, tables_of(model))


def _saved(sender: type[models.Model], using: str, **kwargs: Any) -> None:
    schedule(using, tables_of(sender))


def _deleted(sender: type[models.Model], using: str, **kwargs: Any) -> None:
    schedule(using, _deletion_tables(sender))


def _m2m(sender: type[models.Model], action: str, using: str, **kwargs: Any) -> None:
    if action.startswith("post_"):
        schedule(using, {sender._meta.db_table})


def wanted() -> bool:
    """Whether the project uses the cache: it defines ``SCALEKIT_CACHE`` (even ``{}``)
    or one of its models has a ``CachedQuerySet`` manager.

    Projects that use only other concerns must not pay a cache round trip per write,
    nor lose Django's fast deletes to a global ``post_delete`` receiver.
    """
    from django.apps import apps
    from django.conf import settings

    from django_scalekit.cache.queryset import CachedQuerySet

    if hasattr(settings, "SCALEKIT_CACHE"):
        return True
    return any(
        issubclass(getattr(manager, "_queryset_class", type(None)), CachedQuerySet)
        for model in apps.get_models()
        for manager in model._meta.managers
    )


def _rows_changed(sender: type[models.Model], using: str, **kwargs: Any) -> None:
    schedule(using, tables_of(sender))


def connect_signals() -> None:
    """Connect the write-path receivers; called from the app's ``ready()`` when wanted."""
    from django_scalekit.signals import rows_changed

    rows_changed.connect(_rows_changed, dispatch_uid="django_scalekit.cache.rows", weak=False)
    post_save.connect(_saved, dispatch_uid="django_scalekit.cache.saved", weak=False)
    post_delete.connect(_deleted, dispatch_uid="django_scalekit.cache.deleted", weak=False)
    m2m_changed.connect(_m2m, dispatch_uid="django_scalekit.cache.m2m", weak=False)
    engine.receivers_connected = True
