"""Denormalized counters kept exact on every write path.

Importing this package needs Django only; Celery is needed for deferred mode.
"""

__all__: list[str] = []
