"""Read-only serializers compiled to plain functions; serpy- and DRF-compatible.

Importing this package needs Django only; the DRF integration
(``django_scalekit.serializers.drf``) is imported by the user, lazily.
"""

from django_scalekit.serializers.fields import (
    BoolField,
    DateField,
    DateTimeField,
    DecimalField,
    DurationField,
    EnumField,
    Field,
    FileField,
    FloatField,
    ImageField,
    IntField,
    ListField,
    MethodField,
    PrimaryKeyRelatedField,
    StrField,
    TimeField,
    UUIDField,
)
from django_scalekit.serializers.model import ModelSerializer
from django_scalekit.serializers.serializer import DictSerializer, ReadOnlyError, Serializer

__all__ = [
    "BoolField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "DictSerializer",
    "DurationField",
    "EnumField",
    "Field",
    "FileField",
    "FloatField",
    "ImageField",
    "IntField",
    "ListField",
    "MethodField",
    "ModelSerializer",
    "PrimaryKeyRelatedField",
    "ReadOnlyError",
    "Serializer",
    "StrField",
    "TimeField",
    "UUIDField",
]
