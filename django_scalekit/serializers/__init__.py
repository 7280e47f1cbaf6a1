"""Read-only serializers compiled to plain functions; serpy- and DRF-compatible.

Importing this package needs Django only; the DRF integration is imported lazily.
"""

__all__: list[str] = []
