"""System checks for declared counters (``django_scalekit.E031``-``E038``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db import connections, models, router
from django.db.models import F, Q
from django.db.models.fields.reverse_related import ManyToOneRel

from django_scalekit.denorm.counters import MODES, TRIGGER_MODES, Counter, all_counters


@checks.register(checks.Tags.models)
def check_counters(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    labels = None if app_configs is None else {a.label for a in app_configs}
    chosen = [c for c in all_counters() if labels is None or c.parent._meta.app_label in labels]
    for counter in chosen:
        errors.extend(check_counter(counter))
    return errors + check_modes(chosen)


def check_modes(counters: Sequence[Counter]) -> list[checks.CheckMessage]:
    """One parent's trigger-kept counters over one child must share the lock timing."""
    errors: list[checks.CheckMessage] = []
    modes: dict[tuple[Any, Any], set[str]] = {}
    for counter in counters:
        modes.setdefault((counter.parent, counter.child), set()).add(counter.mode)
    for (parent, child), found in modes.items():
        if {"trigger", "commit"} <= found:
            errors.append(
                checks.Error(
                    f"{parent._meta.label} has counters over {child._meta.label} in both "
                    "trigger and commit mode; the first locks the parent during a write, "
                    "the second at commit, so two writers could deadlock.",
                    hint="Give every trigger-kept counter of this parent over this child "
                    "the same mode.",
                    obj=parent,
                    id="django_scalekit.E038",
                )
            )
    return errors


def check_counter(counter: Counter) -> list[checks.CheckMessage]:
    obj = counter.parent
    if counter.mode not in MODES:
        return [
            checks.Error(
                f"{counter.label}: mode={counter.mode!r} is not a counter mode.",
                hint=f"Write one of: {', '.join(repr(m) for m in MODES)}.",
                obj=obj,
                id="django_scalekit.E034",
            )
        ]
    field = counter.parent._meta.get_field(counter.field_name)
    if not isinstance(field, models.IntegerField):
        return [
            checks.Error(
                f"{counter.label} is a {type(field).__name__}, not an integer column.",
                hint="Count into a PositiveBigIntegerField (or use CounterField).",
                obj=obj,
                id="django_scalekit.E037",
            )
        ]
    rel = _reverse_relation(counter)
    if rel is None or counter.child is None or rel.field is not counter.fk:
        names = sorted(
            r.related_name or r.name
            for r in counter.parent._meta.related_objects
            if isinstance(r, ManyToOneRel) and r.one_to_many
        )
        return [
            checks.Error(
                f"{counter.label} counts {counter.relation!r}, which is not a reverse "
                f"foreign key of {counter.parent._meta.label}.",
                hint="Name the relation by the related_name of the child's ForeignKey"
                + (f"; one of: {', '.join(names)}." if names else "."),
                obj=obj,
                id="django_scalekit.E031",
            )
        ]
    errors = _check_filter(counter)
    if errors:
        return errors
    assert counter.child is not None
    assert counter.fk is not None
    if counter.mode == "signals":
        manager = counter.child._default_manager
        from django_scalekit.denorm.query import CounterQuerySet

        if not issubclass(getattr(manager, "_queryset_class", object), CounterQuerySet):
            errors.append(
                checks.Error(
                    f"{counter.label}: {counter.child._meta.label}'s default manager does not "
                    "use CounterQuerySet, so bulk_create/update/delete would leave it wrong.",
                    hint="Write `objects = CounterQuerySet.as_manager()` on "
                    f"{counter.child.__name__} (from django_scalekit.denorm).",
                    obj=obj,
                    id="django_scalekit.E033",
                )
            )
        on_delete = counter.fk.remote_field.on_delete
        if on_delete is models.SET_DEFAULT or getattr(on_delete, "deconstruct", None):
            errors.append(
                checks.Error(
                    f"{counter.label}: {counter.fk.model.__name__}.{counter.fk.name} uses "
                    f"on_delete={getattr(on_delete, '__name__', 'SET(...)')}, which moves "
                    "children with an UPDATE Django sends no signal for.",
                    hint="Use mode='trigger' or 'deferred', "
                    "or on_delete=CASCADE, SET_NULL or PROTECT.",
                    obj=obj,
                    id="django_scalekit.E036",
                )
            )
    if counter.mode in TRIGGER_MODES:
        alias = router.db_for_write(counter.child) or "default"
        if connections[alias].vendor != "postgresql":
            errors.append(
                checks.Error(
                    f"{counter.label}: mode={counter.mode!r} needs PostgreSQL, but "
                    f"{counter.child._meta.label} is written to {alias!r} "
                    f"({connections[alias].vendor}).",
                    hint="Use mode='signals' on this database.",
                    obj=obj,
                    id="django_scalekit.E035",
                )
            )
    return errors


def _reverse_relation(counter: Counter) -> ManyToOneRel | None:
    rel: Any
    try:
        rel = counter.parent._meta.get_field(counter.relation)
    except FieldDoesNotExist:
        rel = next(
            (
                r
                for r in counter.parent._meta.related_objects
                if r.get_accessor_name() == counter.relation
            ),
            None,
        )
    if isinstance(rel, ManyToOneRel) and rel.one_to_many:
        return rel
    return None


def _check_filter(counter: Counter) -> list[checks.CheckMessage]:
    if counter.filter is None:
        return []
    assert counter.child is not None
    child = counter.child._meta.label
    problem = _foreign_value(counter.filter)
    if problem is None:
        try:
            query = counter.child._base_manager.filter(counter.filter).query
        except (FieldError, FieldDoesNotExist, ValueError, TypeError) as exc:
            problem = f"is not valid on {child} ({exc})"
        else:
            if len(query.alias_map) > 1:
                problem = "follows a relation to another model"
            else:
                problem = _reads_other_rows(counter)
    if problem is None:
        return []
    return [
        checks.Error(
            f"{counter.label}: the filter on {', '.join(sorted(_keys(counter.filter)))} {problem}.",
            hint=f"Filter only on {child}'s own fields, e.g. Q(approved=True); a change to "
            "another model's row would not update the counter.",
            obj=counter.parent,
            id="django_scalekit.E032",
        )
    ]


def _reads_other_rows(counter: Counter) -> str | None:
    """What the compiled filter reads besides the row itself (raw SQL subqueries), if any."""
    from django_scalekit.denorm.trigger import filter_template

    assert counter.child is not None
    try:
        filter_template(counter, router.db_for_write(counter.child) or "default", "r")
    except ValueError as exc:
        return str(exc).removeprefix("it ")
    return None


def _keys(q: Q) -> set[str]:
    keys: set[str] = set()
    for child in q.children:
        if isinstance(child, Q):
            keys |= _keys(child)
        elif isinstance(child, tuple):
            keys.add(child[0])
    return keys


def _foreign_value(q: Q) -> str | None:
    """Names a value in ``q`` that reads other rows (a subquery, a queryset)."""
    for child in q.children:
        if isinstance(child, Q):
            found = _foreign_value(child)
            if found:
                return found
        elif isinstance(child, tuple):
            key, value = child
            if isinstance(value, F):
                continue
            if isinstance(value, models.QuerySet) or getattr(value, "contains_aggregate", False):
                return f"compares {key!r} with a query on another table"
            if hasattr(value, "resolve_expression") and getattr(value, "subquery", False):
                return f"compares {key!r} with a subquery"
        else:
            return f"uses the expression {child!r}"
    return None
