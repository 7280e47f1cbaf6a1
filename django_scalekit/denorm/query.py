"""``CounterQuerySet``: the bulk write paths Django sends no signal for.

``bulk_create``, ``update`` (and so ``bulk_update``) and ``delete`` lock the
rows they touch in primary key order, read which parent each row counts
towards before and after, and adjust every affected parent with one statement
per distinct delta, all inside one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from django.db import NotSupportedError, models, transaction

from django_scalekit.denorm import receivers
from django_scalekit.denorm.counters import Counter, counters_for_child

_M = TypeVar("_M", bound=models.Model)


class CounterQuerySet(models.QuerySet[_M]):
    """Use as the child model's default manager: ``objects = CounterQuerySet.as_manager()``."""

    def _counters(self) -> list[Counter]:
        return counters_for_child(self.model)

    def bulk_create(self, objs: Iterable[_M], *args: Any, **kwargs: Any) -> list[_M]:
        counters = self._counters()
        if not counters:
            return super().bulk_create(objs, *args, **kwargs)
        if kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
            raise NotSupportedError(
                "bulk_create(ignore_conflicts/update_conflicts) cannot tell which rows it "
                f"inserted or changed, so it would leave {counters[0].label} wrong; "
                "insert with save() or bulk_create() without conflicts handling."
            )
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            pks = [obj.pk for obj in created]
            if any(pk is None for pk in pks):
                raise NotSupportedError(
                    "this database does not return primary keys from bulk_create, so "
                    f"{counters[0].label} cannot be kept exact."
                )
            receivers.apply_all(
                [(c, receivers.created_deltas(c, pks, self.db)) for c in counters], self.db
            )
        return created

    def update(self, **kwargs: Any) -> int:
        touched = set(kwargs)
        counters = [c for c in self._counters() if c.watched_fields() & touched]
        if not counters:
            return super().update(**kwargs)
        if self.query.is_sliced:
            raise TypeError("Cannot update a query once a slice has been taken.")
        with transaction.atomic(using=self.db, savepoint=False):
            pks, before = self._lock(counters)
            if not pks:
                return 0
            rows = self.model._base_manager.using(self.db).filter(pk__in=pks)
            count = rows.update(**kwargs)
            after = dict(self._keys(rows, counters))
            receivers.apply_all(
                [
                    (c, receivers.moves((old[i], after[pk][i]) for pk, old in before))
                    for i, c in enumerate(counters)
                ],
                self.db,
            )
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def delete(self) -> tuple[int, dict[str, int]]:
        counters = self._counters()
        if not counters:
            return super().delete()
        if self.query.is_sliced:
            raise TypeError("Cannot use 'limit' or 'offset' with delete().")
        if getattr(self, "_fields", None) is not None:
            raise TypeError("Cannot call delete() after .values() or .values_list()")
        with transaction.atomic(using=self.db, savepoint=False):
            pks, before = self._lock(counters)
            rows = self.model._base_manager.using(self.db).filter(pk__in=pks)
            with receivers.handled(self.model, pks):
                result = rows.delete() if pks else (0, {})
            receivers.apply_all(
                [
                    (c, receivers.moves((old[i], None) for _, old in before))
                    for i, c in enumerate(counters)
                ],
                self.db,
            )
        return result

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]

    def _lock(self, counters: list[Counter]) -> tuple[list[Any], list[tuple[Any, Sequence[Any]]]]:
        """Lock the rows in pk order; return their pks and the parent each counts towards."""
        rows = (
            self.model._base_manager.using(self.db)
            .filter(pk__in=self.order_by().values("pk"))
            .order_by("pk")
            .select_for_update()
        )
        before = self._keys(rows, counters)
        return [pk for pk, _ in before], before

    @staticmethod
    def _keys(
        rows: models.QuerySet[Any], counters: list[Counter]
    ) -> list[tuple[Any, Sequence[Any]]]:
        exprs = {f"_scalekit_{i}": c.key_expression() for i, c in enumerate(counters)}
        names = list(exprs)
        return [(row[0], row[1:]) for row in rows.annotate(**exprs).values_list("pk", *names)]
