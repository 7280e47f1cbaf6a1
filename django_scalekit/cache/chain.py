"""Recorded queryset calls: the cache key of a hit without building the SQL query.

Building a ``Query`` (resolving lookups, joins, expressions) and compiling it cost more
than the cache read itself. A ``CachedQuerySet`` made by its manager therefore records
the simple calls made on it (``filter(pk=3)``, ``order_by("-created")``, ``[:20]``...)
as plain tuples and applies them to the ``Query`` only when something needs it: a
cache miss, or any method this module does not know. The recorded calls, replayed on
a fresh query of the same model, give the same SQL, so they identify the result.

A call is recorded only when every argument is a plain value whose ``repr`` is
stable across processes (numbers, strings, dates, UUIDs, ``Q`` of those, lists...);
anything else applies the pending calls and continues as a normal queryset.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q

# exact types only: a subclass (an enum member, a str subclass) may repr differently
_PLAIN = frozenset(
    {str, int, float, bool, type(None), bytes, Decimal, uuid.UUID}
    | {dt.date, dt.datetime, dt.time, dt.timedelta}
)


class NotPlain(Exception):
    """An argument whose value cannot be part of a recorded call."""


def freeze(value: Any) -> tuple[Any, Any]:
    """``(frozen, live)``: a structure with a stable ``repr`` for the key, and a copy of
    ``value``'s containers to apply later (so a list changed after the call does not
    change the query behind the key). Raises NotPlain for anything else.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value, value
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        pairs = [freeze(v) for v in value]
        frozen = [f for f, _ in pairs]
        if kind is set or kind is frozenset:
            frozen.sort(key=repr)
        return (kind.__name__, *frozen), kind(live for _, live in pairs)
    if kind is Q:
        pairs = [freeze(c) for c in value.children]
        return (
            ("Q", value.connector, value.negated, *(f for f, _ in pairs)),
            Q(*(live for _, live in pairs), _connector=value.connector, _negated=value.negated),
        )
    if isinstance(value, models.Model) and _keyed_by_pk(kind):
        pk = value.pk
        if type(pk) in _PLAIN and pk is not None:
            return ("obj", value._meta.label, pk), value
    raise NotPlain


_PK_KEYED: dict[type, bool] = {}


def _keyed_by_pk(model: type[models.Model]) -> bool:
    """True when every relation to ``model`` targets its primary key.

    A lookup against an instance uses the instance's value of the relation's target
    field; when that is always the pk, the pk identifies what the query compares.
    """
    known = _PK_KEYED.get(model)
    if known is None:
        pk = model._meta.pk
        known = pk is not None and all(
            getattr(rel, "field_name", None) in (None, pk.name)
            for rel in model._meta.related_objects
        )
        _PK_KEYED[model] = known
    return known


def filter_op(
    negate: bool, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...] | None:
    """A recorded ``filter()``/``exclude()`` call (``None``: its arguments are not plain)."""
    if "_connector" in kwargs or "_negated" in kwargs:
        return None  # Django rejects them: let it say so
    try:
        if any(type(a) is not Q for a in args):
            return None
        frozen_args = [freeze(a) for a in args]
        frozen_kwargs = sorted((k, *freeze(v)) for k, v in kwargs.items())
    except NotPlain:
        return None
    return (
        "filter",
        negate,
        tuple(live for _, live in frozen_args),
        {k: live for k, _, live in frozen_kwargs},
        tuple(f for f, _ in frozen_args),
        tuple((k, f) for k, f, _ in frozen_kwargs),
    )


def strings(values: tuple[Any, ...]) -> bool:
    return all(type(v) is str for v in values)


def apply(qs: Any, op: tuple[Any, ...]) -> None:
    """Apply one recorded call to ``qs._query`` in place, as the QuerySet method would."""
    name = op[0]
    query = qs._query
    if name == "filter":
        negate, args, kwargs = op[1:4]
        qs._filter_or_exclude_inplace(negate, args, kwargs)
    elif name == "order_by":
        query.clear_ordering(force=True, clear_default=False)
        query.add_ordering(*op[1])
    elif name == "limits":
        query.set_limits(op[1], op[2])
    elif name == "select_related":
        fields = op[1]
        if fields == (None,):
            query.select_related = False
        elif fields:
            query.add_select_related(fields)
        else:
            query.select_related = True
    elif name == "values":
        query.set_values(op[1])
    else:  # pragma: no cover - every recorded name is handled above
        raise ValueError(f"unknown recorded call {name!r}")


def key_part(op: tuple[Any, ...]) -> tuple[Any, ...]:
    """The part of a recorded call that identifies it (filter values frozen)."""
    if op[0] == "filter":
        return ("filter", op[1], *op[4:])
    return op
