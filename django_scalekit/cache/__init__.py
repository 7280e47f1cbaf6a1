"""Cached querysets and functions with transaction-aware, race-free invalidation.

Importing this package needs Django only; django-redis is used when configured.
"""

__all__: list[str] = []
