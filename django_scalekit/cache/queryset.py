"""``CachedQuerySet``: ``qs.cached()`` reads, and writes that bump the cache.

Every read that fills ``_result_cache`` (iteration, ``len()``, ``get()``, ``first()``,
slicing, ``values()``...) goes through ``_fetch_all``; ``count()``, ``exists()`` and
``aggregate()`` are cached separately. ``iterator()`` and ``select_for_update()`` reads
are never cached.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import EmptyResultSet
from django.db import models
from django.db.models import Prefetch

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

    def _scalekit_sql(self) -> tuple[str, Any] | None:
        if self.query.select_for_update:
            return None
        try:
            return self.query.get_compiler(using=self.db).as_sql()  # type: ignore[no-any-return]
        except EmptyResultSet:
            return None

    def _scalekit_call(self, kind: str, extra: Any, compute: Callable[[], T]) -> T:
        sql = self._scalekit_sql()
        if sql is None:
            return compute()
        prefetch, prefetch_tables = self._scalekit_prefetch()
        try:
            material = pickle.dumps(
                (
                    kind,
                    self.model._meta.label,
                    sql[0],
                    sql[1],
                    extra,
                    prefetch,
                ),
                pickle.HIGHEST_PROTOCOL,
            )
        except Exception:
            return compute()
        tables = engine.tables_in(sql[0]) | prefetch_tables
        return engine.fetch(material, self.db, tables, compute, self._scalekit_timeout)

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
            self._result_cache = result
            self._prefetch_done = True
        super()._fetch_all()  # type: ignore[misc]

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
