"""``Serializer`` and ``DictSerializer``: read-only, compiled once into plain functions."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any, ClassVar

from django_scalekit.serializers import _compile
from django_scalekit.serializers.fields import Field

__all__ = ["DictSerializer", "ReadOnlyError", "Serializer"]

_DRF_KWARGS = frozenset({"partial", "allow_empty", "max_length", "min_length"})


class ReadOnlyError(TypeError):
    """Raised on ``is_valid()``/``save()``: these serializers only write output."""


def _return_types() -> tuple[Any, Any] | None:
    global _RETURN_TYPES
    if _RETURN_TYPES is None:
        try:
            from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList
        except ImportError:
            _RETURN_TYPES = ()
        else:
            _RETURN_TYPES = (ReturnDict, ReturnList)
    return _RETURN_TYPES or None


_RETURN_TYPES: tuple[Any, ...] | None = None


class Serializer(Field):
    """Declare fields as class attributes; ``Serializer(obj).data`` is a dict.

    Works like serpy's ``Serializer`` (and as a field, to nest serializers) and
    like a read-only DRF serializer (``context``, ``many=True``, ``.data`` as
    DRF's ``ReturnDict``/``ReturnList`` when DRF is installed, usable as a view's
    ``serializer_class``). ``fields=[...]`` keeps only those keys (sparse fieldsets).
    """

    #: How fields read attributes (serpy's hook): ``operator.attrgetter`` or
    #: ``operator.itemgetter``; other callables work but are slower.
    default_getter: ClassVar[Any] = operator.attrgetter

    #: Leave out keys whose value is ``None`` (``None``: ``SCALEKIT_SERIALIZERS["OMIT_NONE"]``).
    omit_none: ClassVar[bool | None] = None

    _declared_fields: ClassVar[dict[str, Field]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        direct = {k: v for k, v in list(vars(cls).items()) if isinstance(v, Field)}
        for name in direct:
            delattr(cls, name)  # as serpy: a field never shadows a method
        declared: dict[str, Field] = {}
        for base in reversed(cls.__mro__[1:]):
            declared.update(base.__dict__.get("_declared_fields", {}))
        declared.update(direct)
        cls._declared_fields = declared
        cls._field_map = declared  # type: ignore[attr-defined]  # serpy's name

    @classmethod
    def _scalekit_fields(cls) -> dict[str, Field]:
        return cls._declared_fields

    def __init__(
        self,
        instance: Any = None,
        many: bool = False,
        data: Any = None,
        context: dict[str, Any] | None = None,
        *,
        fields: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:  # used as a nested field: attr=, source=, label=, ...
            for key in _DRF_KWARGS & kwargs.keys():
                kwargs.pop(key)
            super().__init__(**kwargs)
        self.instance = instance
        self.many = many
        self.initial_data = data
        self._context = context
        self.parent: Serializer | None = None
        self.only = None if fields is None else frozenset(fields)
        self._data: Any = None

    @property
    def context(self) -> dict[str, Any]:
        """The root serializer's context: nested serializers and method fields see the request."""
        if self._context is not None:
            return self._context
        if self.parent is not None:
            return self.parent.context
        return {}

    @property
    def root(self) -> Serializer:
        node = self
        while node.parent is not None:
            node = node.parent
        return node

    def to_value(self, instance: Any) -> Any:  # type: ignore[override]
        """serpy's entry point: the output for ``instance`` (a list if ``many``)."""
        compiled = _compile.compiled(type(self), self.only)
        if self.many:
            return compiled.many(instance, self)
        return compiled.one(instance, self)

    @property
    def data(self) -> Any:
        if self._data is None:
            if self.instance is None and self.initial_data is not None:
                self._read_only("data")
            if self.instance is None:
                raw: Any = [] if self.many else {}
            else:
                raw = self.to_value(self.instance)
            types = _return_types()
            if types is not None:
                raw = (
                    types[1](raw, serializer=self) if self.many else types[0](raw, serializer=self)
                )
            self._data = raw
        return self._data

    # Writes: a clear error instead of DRF's behaviour or a silent no-op.

    def _read_only(self, what: str) -> Any:
        raise ReadOnlyError(
            f"{type(self).__name__} is a read-only django_scalekit serializer and has no "
            f"{what}. For writes use a rest_framework serializer, e.g. return it from the "
            "view's get_serializer_class() when self.request.method is not GET."
        )

    def is_valid(self, *, raise_exception: bool = False) -> bool:
        return self._read_only("is_valid()")  # type: ignore[no-any-return]

    def save(self, **kwargs: Any) -> Any:
        return self._read_only("save()")

    def create(self, validated_data: Any) -> Any:
        return self._read_only("create()")

    def update(self, instance: Any, validated_data: Any) -> Any:
        return self._read_only("update()")

    @property
    def errors(self) -> Any:
        return self._read_only("errors")

    @property
    def validated_data(self) -> Any:
        return self._read_only("validated_data")

    @classmethod
    def optimize(cls, queryset: Any, fields: Iterable[str] | None = None) -> Any:
        """``queryset`` with the ``select_related``/``prefetch_related``/``only()`` these
        fields need: a list costs a constant number of queries."""
        from django_scalekit.serializers.optimize import optimize

        return optimize(queryset, cls, None if fields is None else frozenset(fields))

    @classmethod
    def output_names(cls) -> list[str]:
        """The keys of the output, in order (``label`` or field name)."""
        return [field.label or name for name, field in cls._scalekit_fields().items()]

    @classmethod
    def unknown_fields(cls, names: Iterable[str]) -> list[str]:
        """The entries of a ``fields=`` list (``"id"``, ``"reviews.rating"``) that name no key."""
        by_key = {field.label or name: field for name, field in cls._scalekit_fields().items()}
        unknown = []
        for entry in names:
            head, _, rest = entry.partition(".")
            field = by_key.get(head)
            nested_ok = isinstance(field, Serializer) and not type(field).unknown_fields([rest])
            if field is None or (rest and not nested_ok):
                unknown.append(entry)
        return sorted(unknown)

    @classmethod
    def generated_source(cls, fields: Iterable[str] | None = None) -> str:
        """The Python code this class compiles to (for debugging and curiosity)."""
        return _compile.compiled(cls, None if fields is None else frozenset(fields)).source

    def __repr__(self) -> str:
        return f"{type(self).__name__}(many={self.many})"


class DictSerializer(Serializer):
    """Reads ``obj["key"]`` instead of ``obj.key`` (serpy's ``DictSerializer``)."""

    default_getter = operator.itemgetter
