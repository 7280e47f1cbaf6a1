"""``CounterField`` and ``register_counter``: declaring a counter on the parent model."""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.db import models
from django.db.models import Q
from django.db.models.query_utils import DeferredAttribute

from django_scalekit.denorm import counters


class CounterField(models.PositiveBigIntegerField):  # type: ignore[type-arg]
    """The number of children in ``relation`` (a related name) matching ``filter``.

    ``mode="signals"`` keeps it exact from Django's writes; ``mode="trigger"``
    from any writer, with a PostgreSQL trigger installed by ``CounterTrigger``;
    ``mode="commit"`` has those triggers apply a transaction's sum at ``COMMIT``
    (a hot parent stays unlocked until then); ``mode="deferred"`` has them queue
    deltas that ``fold()`` applies.
    """

    description = "Count of related rows"

    def __init__(
        self,
        relation: str | None = None,
        *,
        filter: Q | None = None,
        mode: str = "signals",
        **kwargs: Any,
    ) -> None:
        self.relation = relation
        self.filter = filter
        self.mode = mode
        kwargs.setdefault("default", 0)
        kwargs.setdefault("editable", False)
        super().__init__(**kwargs)

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        if kwargs.get("default") == 0:
            del kwargs["default"]
        if kwargs.get("editable") is False:
            del kwargs["editable"]
        args = [self.relation, *args]
        if self.filter is not None:
            kwargs["filter"] = self.filter
        if self.mode != "signals":
            kwargs["mode"] = self.mode
        return name, "django_scalekit.denorm.CounterField", args, kwargs

    def contribute_to_class(
        self, cls: type[models.Model], name: str, private_only: bool = False
    ) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)
        if cls._meta.abstract or cls._meta.apps is not global_apps:
            return  # abstract bases and the historical models migrations build
        counters.register(
            counters.Counter(
                parent=cls,
                field_name=name,
                relation=self.relation or "",
                filter=self.filter,
                mode=self.mode,
            )
        )


def register_counter(
    field: Any, relation: str, *, filter: Q | None = None, mode: str = "signals"
) -> None:
    """Keep an existing integer column exact: ``register_counter(Product.n_reviews, "reviews")``.

    Call it in ``models.py`` right after the parent model.
    """
    if not isinstance(field, DeferredAttribute):
        raise TypeError(
            f"register_counter() takes a model field such as Product.n_reviews, not {field!r}"
        )
    f = field.field
    counters.register(
        counters.Counter(
            parent=f.model, field_name=f.name, relation=relation, filter=filter, mode=mode
        )
    )
