"""Django REST framework integration: a view mixin, OpenAPI schemas and DRF equivalents.

Import this module only where DRF is installed (the ``drf`` extra).
"""

from __future__ import annotations

from typing import Any

try:
    from rest_framework import serializers as drf
    from rest_framework.exceptions import ValidationError
    from rest_framework.renderers import JSONRenderer
    from rest_framework.schemas.inspectors import DefaultSchema
    from rest_framework.schemas.openapi import AutoSchema as DRFAutoSchema
    from rest_framework.utils import encoders
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "django_scalekit.serializers.drf needs Django REST framework: "
        "pip install 'django-scalekit[drf]'"
    ) from exc

from django.db.models import QuerySet

from django_scalekit.serializers import fields as f
from django_scalekit.serializers.optimize import optimize
from django_scalekit.serializers.serializer import Serializer

__all__ = ["AutoSchema", "ORJSONRenderer", "OptimizeMixin", "to_drf"]


class _Schema(DefaultSchema):
    """``DEFAULT_SCHEMA_CLASS``, with DRF's OpenAPI ``AutoSchema`` swapped for ours."""

    def __get__(self, instance: Any, owner: Any) -> Any:
        result = super().__get__(instance, owner)
        if type(result) is DRFAutoSchema:  # exactly DRF's: a subclass was chosen on purpose
            result = AutoSchema()
            result.view = instance
        return result


class OptimizeMixin:
    """For DRF generic views and viewsets whose ``serializer_class`` is one of ours.

    ``get_queryset()`` is passed through ``optimize()`` so list and retrieve run a
    constant number of queries, and ``?fields=a,b`` (``sparse_fields_param``) keeps
    only those keys; an unknown name is a 400 that lists the valid ones. With DRF's
    default OpenAPI schema class the view describes our serializers correctly.
    """

    sparse_fields_param: str | None = "fields"
    schema: Any = _Schema()

    def _scalekit_serializer(self) -> type[Serializer] | None:
        cls = self.get_serializer_class()  # type: ignore[attr-defined]
        if isinstance(cls, type) and issubclass(cls, Serializer):
            return cls
        return None

    def sparse_fields(self) -> frozenset[str] | None:
        cls = self._scalekit_serializer()
        request = getattr(self, "request", None)
        if cls is None or request is None or not self.sparse_fields_param:
            return None
        raw = getattr(request, "query_params", request.GET).get(self.sparse_fields_param)
        if not raw:
            return None
        wanted = frozenset(name.strip() for name in raw.split(",") if name.strip())
        unknown = cls.unknown_fields(wanted)
        if unknown:
            valid = cls.output_names()
            raise ValidationError(
                {
                    self.sparse_fields_param: [
                        f"Unknown field(s): {', '.join(sorted(unknown))}. "
                        f"Valid: {', '.join(valid)}."
                    ]
                }
            )
        return wanted

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()  # type: ignore[misc]
        cls = self._scalekit_serializer()
        if cls is not None and isinstance(queryset, QuerySet):
            queryset = optimize(queryset, cls, self.sparse_fields())
        return queryset

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if self._scalekit_serializer() is not None:
            only = self.sparse_fields()
            if only is not None:
                kwargs.setdefault("fields", only)
        return super().get_serializer(*args, **kwargs)  # type: ignore[misc]


_drf_classes: dict[type[Serializer], type[drf.Serializer[Any]]] = {}


def to_drf(cls: type[Serializer]) -> type[drf.Serializer[Any]]:
    """An equivalent read-only DRF serializer class, for schema generators.

    Its fields have the DRF types that produce the same JSON, so DRF's
    ``AutoSchema`` and drf-spectacular describe the output correctly.
    """
    try:
        return _drf_classes[cls]
    except KeyError:
        pass
    attrs: dict[str, Any] = {"__module__": cls.__module__, "__doc__": cls.__doc__}
    for name, field in cls._scalekit_fields().items():
        key = field.label or name
        attrs[key] = _drf_field(field)
        if isinstance(field, f.MethodField):
            method = field.as_getter(name, cls)
            attrs[f"get_{key}"] = method
            attrs[key] = drf.SerializerMethodField(method_name=f"get_{key}")
    new = type(cls.__name__, (drf.Serializer,), attrs)
    _drf_classes[cls] = new
    return new


def _drf_field(field: f.Field) -> drf.Field[Any, Any, Any, Any]:
    common: dict[str, Any] = {"read_only": True}
    if field.help_text:
        common["help_text"] = field.help_text
    if isinstance(field, Serializer):
        return to_drf(type(field))(many=field.many, **common)
    if field.many and not isinstance(field, f.PrimaryKeyRelatedField):
        child = field.child if isinstance(field, f.ListField) else type(field)()
        return drf.ListField(child=_drf_field(child), **common)
    if isinstance(field, f.PrimaryKeyRelatedField):
        pk_field = None if field.pk_field is None else _drf_field(field.pk_field)
        return drf.PrimaryKeyRelatedField(many=field.many, pk_field=pk_field, **common)
    if isinstance(field, f.DecimalField):
        return drf.DecimalField(
            max_digits=field.max_digits,
            decimal_places=field.decimal_places,
            coerce_to_string=field.coerce_to_string,
            **common,
        )
    if isinstance(field, f.EnumField) and field.enum is not None:
        return drf.ChoiceField(choices=[m.value for m in field.enum], **common)
    simple: list[tuple[type[f.Field], type[drf.Field[Any, Any, Any, Any]]]] = [
        (f.StrField, drf.CharField),
        (f.IntField, drf.IntegerField),
        (f.FloatField, drf.FloatField),
        (f.BoolField, drf.BooleanField),
        (f.DateTimeField, drf.DateTimeField),
        (f.DateField, drf.DateField),
        (f.TimeField, drf.TimeField),
        (f.DurationField, drf.DurationField),
        (f.UUIDField, drf.UUIDField),
        (f.ImageField, drf.ImageField),
        (f.FileField, drf.FileField),
    ]
    for ours, theirs in simple:
        if isinstance(field, ours):
            return theirs(**common)
    return drf.ReadOnlyField(**common)


class AutoSchema(DRFAutoSchema):
    """DRF's OpenAPI ``AutoSchema`` that describes our serializers through ``to_drf``.

    Set it as ``schema = AutoSchema()`` on a view or as ``DEFAULT_SCHEMA_CLASS``.
    """

    def get_serializer(self, path: str, method: str) -> Any:
        serializer = super().get_serializer(path, method)
        if isinstance(serializer, Serializer):
            return to_drf(type(serializer))(context=serializer.context)
        return serializer


class ORJSONRenderer(JSONRenderer):
    """DRF's ``JSONRenderer`` with orjson: once serializing is cheap, encoding dominates.

    Needs ``pip install orjson``. Types orjson does not know (lazy translation
    strings, ``Decimal`` from other serializers, ...) go through DRF's own encoder.
    """

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Any = None,
    ) -> bytes:
        if data is None:
            return b""
        try:
            import orjson
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("ORJSONRenderer needs orjson: pip install orjson") from exc
        renderer_context = renderer_context or {}
        indent = self.get_indent(accepted_media_type or "", renderer_context)
        # datetimes go through DRF's encoder: it writes UTC as "Z", orjson as "+00:00"
        option = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
        if indent:
            option |= orjson.OPT_INDENT_2
        return bytes(orjson.dumps(data, default=_encoder().default, option=option))


def _encoder() -> Any:
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = encoders.JSONEncoder()
    return _ENCODER


_ENCODER: Any = None


def _register_spectacular() -> None:
    from django.apps import apps

    if apps.ready and apps.is_installed("drf_spectacular"):
        import django_scalekit.serializers.spectacular  # noqa: F401 - registers the extension


_register_spectacular()
