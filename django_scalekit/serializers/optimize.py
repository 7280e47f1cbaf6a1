"""``optimize(queryset, SerializerClass)``: the queries a serializer needs, derived from its fields.

Forward relations become ``select_related``, reverse and many-to-many relations
become ``prefetch_related`` with a nested ``Prefetch`` queryset optimized the same
way, and when every field maps to a column, ``only()`` loads just those columns.
A field the planner cannot see through (a ``MethodField``, ``call=True``, a
custom getter, a property) keeps all columns of its queryset: correctness first,
the narrower ``only()`` is a bonus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.query import ModelIterable

from django_scalekit.serializers import _compile
from django_scalekit.serializers.fields import Field, ListField, PrimaryKeyRelatedField

if TYPE_CHECKING:
    from django_scalekit.serializers.serializer import Serializer

__all__ = ["optimize"]


@dataclass
class _Plan:
    only: set[str] | None = field(default_factory=set)
    select: list[str] = field(default_factory=list)
    prefetch: list[models.Prefetch[Any]] = field(default_factory=list)

    def column(self, path: str) -> None:
        if self.only is not None:
            self.only.add(path)

    def opaque(self) -> None:
        self.only = None


def optimize(
    queryset: models.QuerySet[Any],
    serializer: type[Serializer],
    fields: frozenset[str] | None = None,
) -> models.QuerySet[Any]:
    """``queryset`` with the ``select_related``/``prefetch_related``/``only`` ``serializer`` needs.

    Querysets built with ``values()`` are returned unchanged. Lookups the queryset
    already prefetches and columns it already restricts are left as they are.
    """
    if queryset._iterable_class is not ModelIterable:  # type: ignore[attr-defined]
        return queryset
    plan = _Plan()
    _walk(queryset.model, serializer, fields, "", plan)
    if plan.select:
        queryset = queryset.select_related(*plan.select)
    seen = {
        lookup if isinstance(lookup, str) else lookup.prefetch_to
        for lookup in queryset._prefetch_related_lookups  # type: ignore[attr-defined]
    }
    fresh = [p for p in plan.prefetch if p.prefetch_to not in seen]
    if fresh:
        queryset = queryset.prefetch_related(*fresh)
    user_restricted = queryset.query.deferred_loading != (frozenset(), True)
    if plan.only is not None and not user_restricted:
        queryset = queryset.only(*sorted(plan.only))
    return queryset


def _walk(
    model: type[models.Model],
    serializer: type[Serializer],
    subset: frozenset[str] | None,
    prefix: str,
    plan: _Plan,
) -> None:
    plan.column(prefix + model._meta.pk.name)
    for _key, name, fld, sub in _compile._fields(serializer, subset):
        if (
            fld.getter_takes_serializer
            or fld.call
            or fld.as_getter(name, serializer) is not None
            or fld.source == "*"
            or serializer.default_getter is not _attrgetter()
        ):
            plan.opaque()
            continue
        _path(model, fld.source_path(name).split("."), fld, prefix, plan, sub)


def _attrgetter() -> Any:
    import operator

    return operator.attrgetter


def _related_field(model: type[models.Model], name: str) -> Any:
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        pass
    for candidate in model._meta.concrete_fields:
        if candidate.attname == name:  # "product_id": the FK column itself
            return candidate.attname
    for rel in model._meta.related_objects:
        if rel.get_accessor_name() == name:  # "reviews" when related_name is unset: review_set
            return rel
    return None


def _path(
    model: type[models.Model],
    parts: list[str],
    fld: Field,
    prefix: str,
    plan: _Plan,
    sub: frozenset[str] | None = None,
) -> None:
    from django_scalekit.serializers.serializer import Serializer

    name = parts[0]
    mf = _related_field(model, name)
    if mf is None:  # a property or plain attribute: it may read anything
        plan.opaque()
        return
    if isinstance(mf, str):  # an FK's attname
        plan.column(prefix + _fk_name(model, mf))
        return
    lookup = prefix + mf.name if not isinstance(mf, models.ForeignObjectRel) else prefix + name
    rest = parts[1:]
    if not mf.is_relation:
        plan.column(lookup)
        return
    related = mf.related_model
    nested = isinstance(fld, Serializer)
    if mf.many_to_many or mf.one_to_many:
        if rest:  # "tags.count" and the like: unknown use of the manager
            plan.opaque()
            return
        inner = related._default_manager.all()
        if nested:
            inner = optimize(inner, type(fld), sub)  # type: ignore[arg-type]
        elif isinstance(fld, PrimaryKeyRelatedField):
            inner = inner.only(related._meta.pk.name)
        elif not isinstance(fld, ListField):
            inner = inner  # the field reads the objects themselves
        if mf.one_to_many and inner.query.deferred_loading[1] is False:
            inner = inner.only(*inner.query.deferred_loading[0], mf.field.name)
        plan.prefetch.append(models.Prefetch(lookup, queryset=inner))
        return
    # forward FK / one-to-one, or reverse one-to-one: a join
    if getattr(mf, "concrete", False):
        plan.column(lookup)
    if not rest and not nested:
        if isinstance(fld, PrimaryKeyRelatedField):  # reads .pk of the related object
            plan.select.append(lookup)
            plan.column(lookup + "__" + related._meta.pk.name)
            return
        plan.select.append(lookup)  # the related object itself is the value
        plan.opaque()
        return
    plan.select.append(lookup)
    if rest:
        _path(related, rest, fld, lookup + "__", plan, sub)
    else:
        _walk(related, type(fld), sub, lookup + "__", plan)  # type: ignore[arg-type]


def _fk_name(model: type[models.Model], attname: str) -> str:
    for candidate in model._meta.concrete_fields:
        if candidate.attname == attname:
            return candidate.name
    return attname
