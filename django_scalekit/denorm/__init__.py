"""Denormalized counters kept exact on every write path.

Importing this package needs Django only; Celery is needed for the recount task.
"""

from django_scalekit.denorm import checks as _checks  # noqa: F401  (registers the checks)
from django_scalekit.denorm.deferred import CounterDeltaTable, fold, pending
from django_scalekit.denorm.fields import CounterField, register_counter
from django_scalekit.denorm.query import CounterQuerySet
from django_scalekit.denorm.recount import RecountResult, recount
from django_scalekit.denorm.trigger import CounterTrigger

__all__ = [
    "CounterDeltaTable",
    "CounterField",
    "CounterQuerySet",
    "CounterTrigger",
    "RecountResult",
    "fold",
    "pending",
    "recount",
    "register_counter",
]
