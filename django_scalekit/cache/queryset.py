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
from django.db.models.query import (
    MAX_GET_RESULTS,
    FlatValuesListIterable,
    NamedValuesListIterable,
    ValuesIterable,
    ValuesListIterable,
)
from django.utils.functional import cached_property

from django_scalekit.cache import chain, engine, invalidation

if TYPE_CHECKING:
    from typing import Self

_M = TypeVar("_M", bound=models.Model)
T = TypeVar("T")

_ON = object()


class CachedQuerySet(models.QuerySet[_M]):
    """A ``QuerySet`` whose ``.cached()`` clones read through the cache.

    Use ``CachedQuerySet.as_manager()``, ``CachedManager``, or put it first among the
    bases of your own queryset class.

    A queryset made by its manager records plain ``filter``/``exclude``/``get``/
    ``order_by``/slicing/``select_related``/``values`` calls and builds the SQL query
    only when it is needed (see ``chain``), so a cache hit never builds it. Errors
    in recorded filter arguments (an unknown field) are raised when the queryset
    is evaluated rather than when ``filter()`` is called.
    """

    _scalekit_timeout: int | None = None
    _scalekit_on: bool = False
    #: calls recorded but not applied to ``_query`` yet; ``None`` once the query is
    #: built. While not ``None``, ``_query`` may be shared with clones: never mutated.
    _scalekit_ops: tuple[tuple[Any, ...], ...] | None = None

    def __init__(
        self,
        model: type[_M] | None = None,
        query: Any = None,
        using: str | None = None,
        hints: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(model, query, using, hints)
        if query is None:
            self._scalekit_ops = ()

    @property  # type: ignore[override]
    def query(self) -> Any:
        if self._scalekit_ops is not None:
            ops, self._scalekit_ops = self._scalekit_ops, None
            self._query = self._query.chain()  # type: ignore[has-type]  # a private copy
            for op in ops:
                chain.apply(self, op)
        return models.QuerySet.query.fget(self)  # type: ignore[attr-defined]

    @query.setter
    def query(self, value: Any) -> None:
        self._scalekit_ops = None
        models.QuerySet.query.fset(self, value)  # type: ignore[attr-defined]

    def _filter_or_exclude_inplace(self, negate: bool, args: Any, kwargs: Any) -> None:
        # Django mutates ``_query`` here directly: build a private query first
        if self._scalekit_ops is not None:
            self.query  # noqa: B018
        super()._filter_or_exclude_inplace(negate, args, kwargs)  # type: ignore[misc]

    def cached(self, timeout: int | None = None) -> Self:
        """This queryset, read from the cache (``timeout`` seconds, default from settings)."""
        clone: Self = self._chain()  # type: ignore[attr-defined]
        clone._scalekit_on = True
        clone._scalekit_timeout = timeout
        return clone

    def _clone(self) -> Self:
        clone: Any
        if self._scalekit_ops is None:
            clone = super()._clone()  # type: ignore[misc]
        else:
            # Django's _clone, sharing the unbuilt query instead of copying it
            # (tests/test_cache_chain.py checks the attributes stay in step)
            me: Any = self
            clone = self.__class__(model=self.model, query=me._query, using=me._db, hints=me._hints)
            clone._sticky_filter = me._sticky_filter
            clone._for_write = me._for_write
            clone._prefetch_related_lookups = me._prefetch_related_lookups[:]
            clone._known_related_objects = me._known_related_objects
            clone._iterable_class = me._iterable_class
            clone._fields = me._fields
            clone._scalekit_ops = self._scalekit_ops
        clone._scalekit_on = self._scalekit_on
        clone._scalekit_timeout = self._scalekit_timeout
        return clone  # type: ignore[no-any-return]

    # -- recorded calls ------------------------------------------------------------------

    def _scalekit_lazy(self) -> bool:
        """True when calls can still be recorded instead of applied."""
        return (
            self._scalekit_ops is not None
            and not self._sticky_filter  # type: ignore[attr-defined]
            and not self._defer_next_filter  # type: ignore[attr-defined]
            and self._deferred_filter is None  # type: ignore[attr-defined]
        )

    def _scalekit_sliced(self) -> bool:
        return any(op[0] == "limits" for op in self._scalekit_ops or ())

    def _scalekit_record(self, *ops: tuple[Any, ...]) -> Self:
        clone = self._chain()  # type: ignore[attr-defined]
        clone._scalekit_ops = (*(self._scalekit_ops or ()), *ops)
        return clone  # type: ignore[no-any-return]

    def _scalekit_filter_op(self, negate: bool, args: Any, kwargs: Any) -> tuple[Any, ...] | None:
        if self._scalekit_lazy() and not self._scalekit_sliced():
            return chain.filter_op(negate, args, kwargs)
        return None

    def filter(self, *args: Any, **kwargs: Any) -> Self:
        op = self._scalekit_filter_op(False, args, kwargs)
        if op is None:
            return super().filter(*args, **kwargs)
        return self._scalekit_record(op)

    def exclude(self, *args: Any, **kwargs: Any) -> Self:
        op = self._scalekit_filter_op(True, args, kwargs)
        if op is None:
            return super().exclude(*args, **kwargs)
        return self._scalekit_record(op)

    def order_by(self, *field_names: Any) -> Self:
        if self._scalekit_lazy() and not self._scalekit_sliced() and chain.strings(field_names):
            return self._scalekit_record(("order_by", field_names))
        return super().order_by(*field_names)

    def select_related(self, *fields: Any) -> Self:
        if (
            self._scalekit_lazy()
            and self._fields is None  # type: ignore[attr-defined]
            and (fields == (None,) or chain.strings(fields))
        ):
            return self._scalekit_record(("select_related", fields))
        return super().select_related(*fields)

    def values(self, *fields: Any, **expressions: Any) -> Any:
        if self._scalekit_lazy() and not expressions and chain.strings(fields):
            clone = self._scalekit_record(("values", fields))
            clone._fields = fields  # type: ignore[attr-defined]
            clone._iterable_class = ValuesIterable  # type: ignore[attr-defined]
            return clone
        return super().values(*fields, **expressions)

    def values_list(self, *fields: Any, flat: bool = False, named: bool = False) -> Any:
        if (
            self._scalekit_lazy()
            and chain.strings(fields)
            and len(set(fields)) == len(fields)
            and not (flat and (named or len(fields) > 1))
        ):
            clone = self._scalekit_record(("values", fields))
            clone._fields = fields  # type: ignore[attr-defined]
            clone._iterable_class = (  # type: ignore[attr-defined]
                NamedValuesListIterable
                if named
                else FlatValuesListIterable
                if flat
                else ValuesListIterable
            )
            return clone
        return super().values_list(*fields, flat=flat, named=named)

    def __getitem__(self, k: Any) -> Any:
        if self._result_cache is None and self._scalekit_lazy():  # type: ignore[attr-defined]
            if type(k) is int and k >= 0:
                qs = self._scalekit_record(("limits", k, k + 1))
                qs._fetch_all()
                return qs._result_cache[0]  # type: ignore[attr-defined,index]
            if (
                type(k) is slice
                and k.step is None
                and all(v is None or (type(v) is int and v >= 0) for v in (k.start, k.stop))
            ):
                return self._scalekit_record(("limits", k.start, k.stop))
        return super().__getitem__(k)

    def get(self, *args: Any, **kwargs: Any) -> _M:
        op = self._scalekit_filter_op(False, args, kwargs)
        if op is None:
            return super().get(*args, **kwargs)
        # Django's get(): filter, drop the ordering, fetch at most MAX_GET_RESULTS
        clone = self._scalekit_record(op, ("order_by", ()), ("limits", None, MAX_GET_RESULTS))
        num = len(clone)
        if num == 1:
            return clone._result_cache[0]  # type: ignore[attr-defined,index]
        model: Any = self.model
        meta = model._meta
        if not num:
            raise model.DoesNotExist(f"{meta.object_name} matching query does not exist.")
        many = num if num < MAX_GET_RESULTS else f"more than {MAX_GET_RESULTS - 1}"
        raise model.MultipleObjectsReturned(
            f"get() returned more than one {meta.object_name} -- it returned {many}!"
        )

    def first(self) -> _M | None:
        if not self._scalekit_lazy():
            return super().first()
        orders = [op for op in self._scalekit_ops or () if op[0] == "order_by"]
        ordered = bool(orders[-1][1]) if orders else bool(self.model._meta.ordering)
        for obj in (self if ordered else self.order_by("pk"))[:1]:
            return obj  # type: ignore[no-any-return]
        return None

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

    def _scalekit_material(self, kind: str, extra: Any) -> bytes | None:
        """What identifies this read in the cache (``None``: it is not cached)."""
        ops = self._scalekit_ops
        if ops is not None:
            # nothing built: the recorded calls identify the query (select_for_update
            # is never recorded)
            recorded = tuple(chain.key_part(op) for op in ops)
            return repr(
                (kind, self.model._meta.label, recorded, extra, self._scalekit_prefetch()[0])
            ).encode()
        if self.query.select_for_update:
            return None
        try:
            return key_material(
                kind, self.model._meta.label, self.query, extra, self._scalekit_prefetch()[0]
            )
        except Exception:
            return None

    def _scalekit_call(self, kind: str, extra: Any, compute: Callable[[], T]) -> T:
        material = self._scalekit_material(kind, extra)
        if material is None:
            return compute()
        return engine.fetch(
            material, self.db, self._scalekit_tables, compute, self._scalekit_timeout
        )

    def _scalekit_rows_kind(self) -> tuple[str, Any]:
        return (self._iterable_class.__qualname__, self._fields)  # type: ignore[attr-defined]

    async def acached(self, timeout: int | None = None) -> list[Any]:
        """The rows of ``self.cached(timeout)``, for async code.

        A hit is one asynchronous cache call (redis.asyncio on django-redis, Django's
        async cache API elsewhere); a miss runs in Django's sync thread, like
        Django's own async queryset methods.
        """
        from asgiref.sync import sync_to_async

        qs = self.cached(timeout)
        material = qs._scalekit_material("rows", qs._scalekit_rows_kind())
        if material is not None:
            found, rows = await engine.aget(material, qs.db)
            if found:
                if qs._known_related_objects:  # type: ignore[attr-defined]
                    qs._scalekit_relink(rows)
                return rows  # type: ignore[no-any-return]
        return await sync_to_async(lambda: list(qs))()

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
            result = self._scalekit_call("rows", self._scalekit_rows_kind(), self._scalekit_rows)
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
