"""Celery tasks (needs the ``celery`` extra).

Register them with ``app.autodiscover_tasks(["django_scalekit.denorm"])``.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from django_scalekit.denorm.deferred import fold
from django_scalekit.denorm.recount import recount


@shared_task(name="django_scalekit.denorm.recount")
def recount_task(
    label: str, batch_size: int | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Recount one counter (``"app.Model.field"``); returns the drifted row count."""
    result = recount(label, batch_size=batch_size, dry_run=dry_run)
    return {
        "counter": result.counter,
        "parents": result.parents,
        "batches": result.batches,
        "drifted": result.drifted,
        "dry_run": result.dry_run,
    }


@shared_task(name="django_scalekit.denorm.fold")
def fold_task(label: str | None = None, batch_size: int | None = None) -> int:
    """Fold queued deltas of deferred counters (all, or ``"app.Model.field"``).

    Schedule it every few seconds with Celery beat: that interval bounds how
    stale a deferred counter can be.
    """
    return fold(label, batch_size=batch_size)
