"""Signals mode: the child's save and delete adjust the parent in the same transaction.

Every decision is taken from the child row as it is in the database, never
from the instance, which may be stale: before a save or delete the row is read
(and locked with ``SELECT ... FOR NO KEY UPDATE`` inside a transaction), after
a save it is read again. Two stale copies deleting one row therefore decrement
once: the second finds no row. Parents are always locked in one order (parent
table, then key), so two transactions moving children in opposite directions
cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from django.db import connections, models, transaction
from django.db.models import Count, F
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from django_scalekit.denorm import statements
from django_scalekit.denorm.counters import Counter, counters_for_child
from django_scalekit.signals import rows_changed

_STASH = "_scalekit_denorm"
# (concrete child model, pk) pairs whose counters a set-based queryset method already handled.
_handled: ContextVar[frozenset[tuple[type[models.Model], Any]]] = ContextVar(
    "scalekit_denorm_handled", default=frozenset()
)


def connect(sender: type[models.Model]) -> None:
    """One set of receivers per child class; each handles all of the child's counters."""
    uid = f"scalekit_denorm:{sender._meta.label}"
    pre_save.connect(_pre_save, sender=sender, weak=False, dispatch_uid=uid)
    post_save.connect(_post_save, sender=sender, weak=False, dispatch_uid=uid)
    pre_delete.connect(_pre_delete, sender=sender, weak=False, dispatch_uid=uid)
    post_delete.connect(_post_delete, sender=sender, weak=False, dispatch_uid=uid)


def current_keys(counters: list[Counter], pk: Any, using: str, *, lock: bool) -> tuple[Any, ...]:
    """Per counter, the parent key the stored row counts towards, or None (no row, NULL
    foreign key, filtered out)."""
    conn = connections[using]
    sql, params = statements.keys_select(counters, using, lock and conn.in_atomic_block)
    with conn.cursor() as cursor:
        cursor.execute(sql, [*params, pk])
        row = cursor.fetchone()
    return tuple(row) if row else (None,) * len(counters)


def apply(counter: Counter, deltas: Mapping[Any, int], using: str) -> None:
    apply_all([(counter, deltas)], using)


def apply_all(changes: list[tuple[Counter, Mapping[Any, int]]], using: str) -> None:
    """Add each counter's deltas (parent key -> change) to its parents.

    Locks are taken in one global order (parent table, then key) whatever the
    mix of counters, so concurrent writers cannot wait on each other in a cycle.
    """
    tables: dict[str, list[tuple[Counter, dict[Any, int]]]] = {}
    for counter, deltas in changes:
        nonzero = {k: d for k, d in deltas.items() if k is not None and d}
        if nonzero:
            tables.setdefault(counter.parent._meta.label, []).append((counter, nonzero))
    if not tables:
        return
    # Outside a transaction (a save in autocommit mode), the adjustments of one
    # write still commit together.
    with transaction.atomic(using=using, savepoint=False):
        _update_parents(tables, using)
    for items in tables.values():
        rows_changed.send(sender=items[0][0].parent, using=using)


def _update_parents(tables: dict[str, list[tuple[Counter, dict[Any, int]]]], using: str) -> None:
    for label in sorted(tables):
        items = tables[label]
        counter = items[0][0]
        keys = sorted({k for _, deltas in items for k in deltas})
        parents = counter.parent_manager(using)
        if len(keys) > 1:
            # Row locks in key order first; the updates below then never wait.
            list(
                parents.filter(**{f"{counter.target}__in": keys})
                .order_by(counter.target)
                .select_for_update(no_key=True)
                .values_list(counter.target, flat=True)
            )
        for counter, deltas in items:
            column = counter.field_name
            by_delta: dict[int, list[Any]] = {}
            for key, delta in deltas.items():
                by_delta.setdefault(delta, []).append(key)
            for delta, group in sorted(by_delta.items()):
                lookup = (
                    {counter.target: group[0]}
                    if len(group) == 1
                    else {f"{counter.target}__in": group}
                )
                parents.filter(**lookup).update(**{column: F(column) + delta})


def moves(rows: Iterable[tuple[Any, Any]]) -> dict[Any, int]:
    """Deltas for rows that went from parent ``old`` to parent ``new`` (either may be None)."""
    deltas: dict[Any, int] = {}
    for old, new in rows:
        if old == new:
            continue
        if old is not None:
            deltas[old] = deltas.get(old, 0) - 1
        if new is not None:
            deltas[new] = deltas.get(new, 0) + 1
    return deltas


def created_deltas(counter: Counter, pks: list[Any], using: str) -> dict[Any, int]:
    """Freshly inserted rows counted per parent, as the database stores them."""
    assert counter.fk is not None
    grouped = (
        counter.child_manager(using)
        .filter(pk__in=pks)
        .annotate(_scalekit_key=counter.key_expression())
        .exclude(_scalekit_key=None)
        .values_list("_scalekit_key")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return dict(grouped.values_list("_scalekit_key", "n"))


class handled:
    """Within the block, the receivers skip these rows: a queryset method counted them."""

    def __init__(self, model: type[models.Model], pks: Iterable[Any]) -> None:
        concrete = model._meta.concrete_model
        assert concrete is not None
        self.add = {(concrete, pk) for pk in pks}

    def __enter__(self) -> None:
        self.token = _handled.set(_handled.get() | self.add)

    def __exit__(self, *exc: object) -> None:
        _handled.reset(self.token)


def _skip(instance: models.Model) -> bool:
    handled_rows = _handled.get()
    return bool(handled_rows) and (type(instance)._meta.concrete_model, instance.pk) in handled_rows


def _stash(instance: models.Model) -> dict[str, Any]:
    stash: dict[str, Any] = instance.__dict__.setdefault(_STASH, {})
    return stash


def _touched(counters: list[Counter], update_fields: Any) -> list[Counter]:
    if update_fields is None:
        return counters
    fields = set(update_fields)
    return [c for c in counters if c.watched_fields() & fields]


def _pre_save(
    sender: Any, instance: models.Model, raw: bool, using: str, update_fields: Any, **kw: Any
) -> None:
    stash = _stash(instance)
    stash.pop("save", None)
    if raw:
        return  # fixtures carry their own counter values
    counters = _touched(counters_for_child(sender), update_fields)
    if not counters:
        return
    pk = instance.pk
    pk_field = instance._meta.pk
    assert pk_field is not None
    if pk is None or (instance._state.adding and pk_field.has_default()):
        stash["save"] = (counters, None)
    else:
        stash["save"] = (counters, current_keys(counters, pk, using, lock=True))


def _post_save(sender: Any, instance: models.Model, raw: bool, using: str, **kw: Any) -> None:
    saved = _stash(instance).pop("save", None)
    if raw or saved is None:
        return
    counters, old = saved
    if old is None:
        # A new row: per counter, one statement counts the row as stored, if it
        # counts (parents in table order, like apply_all).
        with connections[using].cursor() as cursor:
            for counter in sorted(counters, key=lambda c: c.parent._meta.label):
                sql, params = statements.on_insert(counter, using)
                cursor.execute(sql, [*params, instance.pk])
        for parent in {c.parent for c in counters}:
            rows_changed.send(sender=parent, using=using)
        return
    new = current_keys(counters, instance.pk, using, lock=False)
    apply_all([(c, moves([(o, n)])) for c, o, n in zip(counters, old, new, strict=True)], using)


def _pre_delete(sender: Any, instance: models.Model, using: str, **kw: Any) -> None:
    if _skip(instance):
        return
    counters = counters_for_child(sender)
    if counters:
        # Locks the row: a second, concurrent delete of it waits, then finds nothing.
        _stash(instance)["delete"] = (
            counters,
            current_keys(counters, instance.pk, using, lock=True),
        )


def _post_delete(sender: Any, instance: models.Model, using: str, **kw: Any) -> None:
    deleted = _stash(instance).pop("delete", None)
    if deleted is not None:
        counters, old = deleted
        apply_all([(c, moves([(o, None)])) for c, o in zip(counters, old, strict=True)], using)
