"""``ModelSerializer``: fields inferred from ``Meta.model`` the way DRF infers them.

Field names, order and output match DRF's ``ModelSerializer``: the primary key
first, declared fields, then concrete fields, then forward relations as primary
keys (``product_id`` read directly, so no query) and many-to-many as lists of keys.
The model is inspected on first use, not at import time.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models

from django_scalekit.serializers import fields as f
from django_scalekit.serializers.serializer import Serializer

__all__ = ["ModelSerializer"]

ALL_FIELDS = "__all__"

# Checked in order, so subclasses come before their bases.
_SCALARS: list[tuple[type[models.Field[Any, Any]], type[f.Field]]] = [
    (models.BooleanField, f.BoolField),
    (models.DateTimeField, f.DateTimeField),
    (models.DateField, f.DateField),
    (models.TimeField, f.TimeField),
    (models.DurationField, f.DurationField),
    (models.UUIDField, f.UUIDField),
    (models.FileField, f.FileField),
    (models.FloatField, f.FloatField),
    (models.AutoField, f.IntField),
    (models.BigAutoField, f.IntField),
    (models.SmallAutoField, f.IntField),
    (models.IntegerField, f.IntField),
    (models.CharField, f.StrField),
    (models.TextField, f.StrField),
    (models.GenericIPAddressField, f.StrField),
]


def _scalar(model_field: models.Field[Any, Any]) -> f.Field:
    if model_field.choices:
        return f.Field()  # DRF's ChoiceField writes the stored value
    if isinstance(model_field, models.DecimalField):
        return f.DecimalField(
            max_digits=model_field.max_digits, decimal_places=model_field.decimal_places
        )
    for model_cls, field_cls in _SCALARS:
        if isinstance(model_field, model_cls):
            return field_cls()
    return f.Field()


def _pk_converter(model: type[models.Model]) -> f.Field:
    pk = model._meta.pk
    assert pk is not None
    while pk.remote_field is not None:  # multi-table inheritance: the parent's key
        pk = pk.target_field  # type: ignore[attr-defined]
    return _scalar(pk)


def _nested(related: Any, depth: int, **kwargs: Any) -> f.Field:
    """DRF's ``Meta.depth``: the related model with all its fields, one level less deep."""
    meta = type("Meta", (), {"model": related, "fields": ALL_FIELDS, "depth": depth - 1})
    cls = type("NestedSerializer", (ModelSerializer,), {"Meta": meta, "__module__": __name__})
    field: f.Field = cls(**kwargs)
    return field


def _model_field(model: type[models.Model], name: str, depth: int = 0) -> f.Field:
    opts = model._meta
    try:
        model_field = opts.get_field(name)
    except FieldDoesNotExist:
        model_field = None
    if name == "pk":
        model_field = opts.pk
    if model_field is None:
        attr = getattr(model, name, None)
        if attr is None:
            raise ImproperlyConfigured(
                f"Field name {name!r} is not valid for model {model.__name__}: it is neither a "
                "model field nor an attribute. Declare it on the serializer or remove it "
                "from Meta.fields."
            )
        # DRF's ReadOnlyField calls a method that takes no arguments.
        return f.Field(call=callable(attr) and not isinstance(attr, property))
    if isinstance(model_field, models.ForeignObjectRel):  # reverse relation, named in fields
        related = model_field.related_model
        pk = _pk_converter(related)  # type: ignore[arg-type]
        accessor = model_field.get_accessor_name()
        if depth:
            return _nested(related, depth, attr=accessor, many=not model_field.one_to_one)
        if model_field.one_to_one:
            return f.PrimaryKeyRelatedField(attr=accessor, pk_field=pk)
        return f.PrimaryKeyRelatedField(attr=accessor, many=True, pk_field=pk)
    if depth and model_field.is_relation:
        return _nested(model_field.related_model, depth, many=model_field.many_to_many)
    if model_field.many_to_many:
        return f.PrimaryKeyRelatedField(
            many=True,
            pk_field=_pk_converter(model_field.related_model),  # type: ignore[arg-type]
        )
    if model_field.is_relation:  # forward FK / one-to-one: the stored key, no query
        # typed like the target column (so schemas say "integer"); the same JSON
        typed = _pk_converter(model_field.related_model)  # type: ignore[arg-type]
        target = model_field.target_field  # type: ignore[attr-defined]
        if not target.primary_key:
            typed = _scalar(target)
        typed.attr = model_field.attname
        return typed
    return _scalar(model_field)


def _serialize(model_field: Any) -> bool:
    return bool(model_field.serialize)


def _default_names(model: type[models.Model], declared: dict[str, f.Field]) -> list[str]:
    opts = model._meta
    assert opts.pk is not None
    names = [opts.pk.name, *declared]
    # DRF's order: concrete columns, then forward relations, then many-to-many
    names += [x.name for x in opts.fields if _serialize(x) and not x.remote_field]
    names += [x.name for x in opts.fields if _serialize(x) and x.remote_field]
    names += [x.name for x in opts.many_to_many if _serialize(x)]
    seen: set[str] = set()
    return [n for n in names if not (n in seen or seen.add(n))]  # type: ignore[func-returns-value]


class ModelSerializer(Serializer):
    """A ``Serializer`` whose fields come from ``Meta.model`` and ``Meta.fields``/``exclude``.

    Declared fields (for example a nested serializer) replace the inferred ones.
    """

    _model_fields_cache: dict[str, f.Field] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._model_fields_cache = None

    @classmethod
    def _scalekit_fields(cls) -> dict[str, f.Field]:
        cached = cls.__dict__.get("_model_fields_cache")
        if cached is None:
            cached = cls._infer_fields()
            cls._model_fields_cache = cached
        return cached

    @classmethod
    def _infer_fields(cls) -> dict[str, f.Field]:
        meta = getattr(cls, "Meta", None)
        model: type[models.Model] | None = getattr(meta, "model", None)
        if model is None:
            if cls._declared_fields:
                return cls._declared_fields
            raise ImproperlyConfigured(f"{cls.__name__} needs a Meta class with a model.")
        names = getattr(meta, "fields", None)
        exclude = getattr(meta, "exclude", None)
        if names is None and exclude is None:
            raise ImproperlyConfigured(
                f"{cls.__name__}.Meta needs fields (a list, or '__all__') or exclude, as in DRF."
            )
        declared = cls._declared_fields
        if names is None or names == ALL_FIELDS:
            names = _default_names(model, declared)
        names = [n for n in names if n not in set(exclude or ())]
        result: dict[str, f.Field] = {}
        for name in names:
            if name in declared:
                result[name] = declared[name]
            else:
                result[name] = _model_field(model, name, getattr(meta, "depth", 0) or 0)
        return result

    @classmethod
    def model(cls) -> type[models.Model] | None:
        return getattr(getattr(cls, "Meta", None), "model", None)
