"""``CachedQuerySet``: ``qs.cached()`` reads, and writes that bump the cache.

Every read that fills ``_result_cache`` (iteration, ``len()``, ``get()``, ``first()``,
slicing, ``values()``...) goes through ``_fetch_all``; ``count()``, ``exists()`` and
``aggregate()`` are cached separately. ``iterator()`` and ``select_for_update()`` reads
are never cached.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import EmptyResultSet
from django.db import models
from django.db.models import Field, Prefetch
from django.utils.functional import cached_property

from django_scalekit.cache import engine, invalidation

if TYPE_CHECKING:
    from typing import Self

_M = TypeVar("_M", bound=models.Model)
T = TypeVar("T")

_ON = object()


class CachedQuerySet(models.QuerySet[_M]):
    """A ``QuerySet`` whose ``.cached()`` clones read through the cache.

    Use ``CachedQuerySet.as_manager()``, ``CachedManager``, or put it first among the
    bases of your own queryset class.
    """

    _scalekit_timeout: int | None = None
    _scalekit_on: bool = False

    def cached(self, timeout: int | None = None) -> Self:
        """This queryset, read from the cache (``timeout`` seconds, default from settings)."""
        clone: Self = self._chain()  # type: ignore[attr-defined]
        clone._scalekit_on = True
        clone._scalekit_timeout = timeout
        return clone

    def _clone(self) -> Self:
        clone = super()._clone()  # type: ignore[misc]
        clone._scalekit_on = self._scalekit_on
        clone._scalekit_timeout = self._scalekit_timeout
        return clone  # type: ignore[no-any-return]

    # -- reads ---------------------------------------------------------------------------

    def _scalekit_tables(self) -> frozenset[str] | None:
        """The tables this read depends on; ``None`` when it runs no query at all."""
        if self.query.select_for_update:
            return None
        try:
            sql = self.query.get_compiler(using=self.db).as_sql()[0]
        except EmptyResultSet:
            return None
        return engine.tables_in(sql) | self._scalekit_prefetch()[1]

    def _scalekit_call(self, kind: str, extra: Any, compute: Callable[[], T]) -> T:
        if self.query.select_for_update:
            return compute()
        try:
            material = key_material(
                kind, self.model._meta.label, self.query, extra, self._scalekit_prefetch()[0]
            )
        except Exception:
            return compute()
        return engine.fetch(
            material, self.db, self._scalekit_tables, compute, self._scalekit_timeout
        )

    def _scalekit_prefetch(self) -> tuple[tuple[Any, ...], frozenset[str]]:
        parts: list[Any] = []
        tables: set[str] = set()
        for lookup in self._prefetch_related_lookups:  # type: ignore[attr-defined]
            if isinstance(lookup, Prefetch):
                qs_sql = None
                if lookup.queryset is not None:
                    qs_sql = str(lookup.queryset.query)
                    tables |= engine.tables_in(qs_sql)
                parts.append((lookup.prefetch_through, lookup.to_attr, qs_sql))
                path = lookup.prefetch_through
            else:
                parts.append(str(lookup))
                path = str(lookup)
            tables |= _path_tables(self.model, path)
        return tuple(parts), frozenset(tables)

    def _fetch_all(self) -> None:
        if self._result_cache is None and self._scalekit_on:
            kind = (self._iterable_class.__qualname__, self._fields)  # type: ignore[attr-defined]
            result = self._scalekit_call("rows", kind, self._scalekit_rows)
            if self._known_related_objects:  # type: ignore[attr-defined]
                self._scalekit_relink(result)
            self._result_cache = result
            self._prefetch_done = True
        super()._fetch_all()  # type: ignore[misc]

    def _scalekit_relink(self, rows: list[Any]) -> None:
        # A related manager's rows point at its live instance (``review.product is
        # product``). A cached copy of that instance may be older than the live one, and
        # its table is not among the query's, so point the rows at the live one again.
        for field, known in self._known_related_objects.items():  # type: ignore[attr-defined]
            for row in rows:
                if isinstance(row, models.Model):
                    related = known.get(getattr(row, field.attname, None))
                    if related is not None:
                        setattr(row, field.name, related)

    def _scalekit_rows(self) -> list[Any]:
        super()._fetch_all()  # type: ignore[misc]
        assert self._result_cache is not None
        return self._result_cache

    def count(self) -> int:
        if not self._scalekit_on or self._result_cache is not None:
            return super().count()
        return self._scalekit_call("count", None, super().count)

    def exists(self) -> bool:
        if not self._scalekit_on or self._result_cache is not None:
            return super().exists()
        return self._scalekit_call("exists", None, super().exists)

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if not self._scalekit_on:
            return super().aggregate(*args, **kwargs)
        extra = (repr(args), repr(sorted(kwargs.items())))
        return self._scalekit_call(
            "aggregate", extra, lambda: super(CachedQuerySet, self).aggregate(*args, **kwargs)
        )

    # -- writes the signals do not see ---------------------------------------------------

    def _scalekit_bump(self) -> None:
        invalidation.schedule(self.db, invalidation.tables_of(self.model))

    def update(self, **kwargs: Any) -> int:
        rows = super().update(**kwargs)
        self._scalekit_bump()
        return rows

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Iterable[_M], *args: Any, **kwargs: Any) -> list[_M]:
        created = super().bulk_create(objs, *args, **kwargs)
        self._for_write = True
        self._scalekit_bump()
        return created

    def bulk_update(
        self, objs: Iterable[_M], fields: Iterable[str], *args: Any, **kwargs: Any
    ) -> int:
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        self._for_write = True
        self._scalekit_bump()
        return rows

    def delete(self) -> tuple[int, dict[str, int]]:
        # post_delete covers each row and cascade; this also covers a delete Django
        # performed without loading rows.
        self._for_write = True
        alias = self.db
        result = super().delete()
        invalidation.schedule(alias, invalidation._deletion_tables(self.model))
        return result

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]


class _KeyPickler(pickle.Pickler):
    """Pickles a query's state as the cache key, leaving out ``cached_property`` values.

    Django shares some expression objects between queries (a field's ``Col``) and fills
    their cached properties on first compile, so the plain pickle of two equal queries
    can differ. Cached properties derive from the rest of the state, so leaving them
    out keeps equal queries equal and different queries different. Sets are sorted so
    that processes with different string hash seeds compute the same key.
    """

    def reducer_override(self, obj: Any) -> Any:
        cls: Any = type(obj)
        if isinstance(obj, Field) and not hasattr(obj, "model"):
            # an unbound output field (Value, arithmetic): its creation counter differs
            # each time, its definition does not
            return _rebuild, (cls, obj.deconstruct()[1:])
        if isinstance(obj, type) or cls.__reduce_ex__ is not object.__reduce_ex__:
            return NotImplemented
        if cls.__reduce__ is not object.__reduce__:
            return NotImplemented  # Field, Model, ...: their own, deterministic reduction
        state = getattr(obj, "__dict__", None)
        skip = _cached_names(cls)
        if state is None or not skip:
            return NotImplemented  # nothing cached lazily: the plain pickle is stable
        # (callable, args, state): memoized before its state, so cycles terminate
        return (
            _rebuild,
            (cls,),
            [
                (k, sorted(v, key=repr) if isinstance(v, set | frozenset) else v)
                for k, v in state.items()
                if k not in skip
            ],
        )


_CACHED_NAMES: dict[type, frozenset[str]] = {}


def _cached_names(cls: type) -> frozenset[str]:
    names = _CACHED_NAMES.get(cls)
    if names is None:
        names = frozenset(
            name
            for klass in cls.__mro__
            for name, attr in vars(klass).items()
            if isinstance(attr, cached_property)
        ) - {"output_field"}  # also set explicitly by constructors: real state

        _CACHED_NAMES[cls] = names
    return names


def _rebuild(*args: Any) -> Any:  # pragma: no cover - keys are never loaded
    raise TypeError("a cache key is not meant to be unpickled")


def key_material(*parts: Any) -> bytes:
    buffer = io.BytesIO()
    _KeyPickler(buffer, pickle.HIGHEST_PROTOCOL).dump(parts)
    return buffer.getvalue()


def _path_tables(model: type[models.Model], path: str) -> set[str]:
    """Best effort: the tables a prefetch path reads (misses are learned at run time)."""
    tables: set[str] = set()
    current: Any = model
    for part in path.split("__"):
        try:
            field = current._meta.get_field(part)
        except Exception:
            field = next(
                (r for r in current._meta.related_objects if r.get_accessor_name() == part),
                None,
            )
            if field is None:
                return tables
        related = getattr(field, "related_model", None)
        if related is None:
            return tables
        through = getattr(getattr(field, "remote_field", None), "through", None) or getattr(
            field, "through", None
        )
        if through is not None:
            tables.add(through._meta.db_table)
        tables.add(related._meta.db_table)
        current = related
    return tables


class CachedManager(models.Manager.from_queryset(CachedQuerySet)):  # type: ignore[misc]
    """``objects = CachedManager()``: the manager of ``CachedQuerySet``."""
