"""A Celery task running the same maintenance as ``scalekit_partitions --apply``.

Imported only by Celery (it imports celery); schedule it with beat, see docs/partitioning.md.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from .maintain import maintain_all


@shared_task(name="django_scalekit.partitioning.maintain_partitions")
def maintain_partitions(allow_drop: bool | None = None, using: str = "default") -> dict[str, Any]:
    """Maintain every configured model; a model already being maintained is skipped."""
    results = maintain_all(using=using, allow_drop=allow_drop, wait=False)
    return {
        label: {
            "skipped": r.skipped,
            "applied": [f"{s.action} {s.name}" for s in r.applied],
            "moved_rows": r.moved_rows,
            "default_rows": r.plan.default_rows,
        }
        for label, r in results.items()
    }
