"""drf-spectacular support: our serializers are described through their DRF equivalents.

Importing ``django_scalekit.serializers.drf`` registers this extension when
``drf_spectacular`` is in ``INSTALLED_APPS``; importing this module does it directly.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension

from django_scalekit.serializers.drf import to_drf

__all__ = ["SerializerExtension"]


def _cls(target: Any) -> Any:
    return target if isinstance(target, type) else type(target)


class SerializerExtension(OpenApiSerializerExtension):  # type: ignore[no-untyped-call]
    target_class = "django_scalekit.serializers.serializer.Serializer"
    match_subclasses = True

    def get_name(self, auto_schema: Any, direction: Any) -> str | None:
        return str(_cls(self.target).__name__)

    def get_identity(self, auto_schema: Any, direction: Any) -> Any:
        # the same identity as the DRF equivalent used for nested occurrences
        return to_drf(_cls(self.target))

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        return auto_schema._map_serializer(
            to_drf(_cls(self.target)), direction, bypass_extensions=True
        )
