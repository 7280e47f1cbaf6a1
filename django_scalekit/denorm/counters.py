"""The registry of counters and how each one finds its child model.

A counter is declared on the parent (``Product.review_count``) but is kept up
to date by the child's writes (``Review``). The child's foreign key may be
declared before or after the parent, and reverse relations can only be asked
for once every model is loaded, so the registry matches foreign keys itself as
each model class is prepared and connects the child's signal receivers then:
before any write can happen, with no database access.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps as global_apps
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.signals import class_prepared

MODES = ("signals", "trigger", "commit", "deferred")
# Modes whose counters the receivers and CounterQuerySet maintain.
PYTHON_MODES = ("signals",)
# Modes whose counters PostgreSQL triggers maintain (installed by CounterTrigger).
TRIGGER_MODES = ("trigger", "commit", "deferred")


@dataclass(eq=False)
class Counter:
    """``parent.<field_name>`` = the number of ``relation`` children matching ``filter``."""

    parent: type[models.Model]
    field_name: str
    relation: str
    filter: Q | None = None
    mode: str = "signals"
    # Filled in once the child's foreign key is known.
    child: type[models.Model] | None = None
    fk: models.ForeignKey[Any, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.parent._meta.label}.{self.field_name}"

    @property
    def column(self) -> str:
        return column_of(self.parent, self.field_name)

    @property
    def target(self) -> str:
        """The parent field the foreign key points at (usually the primary key)."""
        assert self.fk is not None
        return str(self.fk.target_field.attname)

    def key_expression(self) -> Any:
        """SQL for "the parent this child row counts towards, or NULL"."""
        assert self.fk is not None
        if self.filter is None:
            return F(self.fk.attname)
        return Case(
            When(self.filter, then=F(self.fk.attname)),
            default=Value(None),
            output_field=self.fk.target_field,
        )

    def watched_fields(self) -> set[str]:
        """Child field names (and attnames) whose change can move the row in or out."""
        assert self.fk is not None
        assert self.child is not None
        names = {self.fk.name, self.fk.attname}
        for name in filter_field_names(self.filter):
            names.add(name)
            try:
                f = self.child._meta.get_field(name)
            except Exception:  # unknown names are reported by the system check
                continue
            names.update({f.name, getattr(f, "attname", f.name)})
        return names

    def parent_manager(self, using: str) -> models.QuerySet[Any]:
        return self.parent._base_manager.using(using)

    def child_manager(self, using: str) -> models.QuerySet[Any]:
        assert self.child is not None
        return self.child._base_manager.using(using)


def column_of(model: type[models.Model], name: str) -> str:
    """The database column of ``model``'s concrete field ``name``."""
    return str(getattr(model._meta.get_field(name), "column"))  # noqa: B009


def filter_field_names(q: Q | None) -> set[str]:
    """The first path segment of every lookup and ``F()`` in ``q``."""
    names: set[str] = set()
    if q is None:
        return names
    for child in q.children:
        if isinstance(child, Q):
            names |= filter_field_names(child)
        elif isinstance(child, tuple):
            key, value = child
            names.add(key.split("__", 1)[0])
            if isinstance(value, F):
                names.add(str(getattr(value, "name", "")).split("__", 1)[0])
    return names


_counters: list[Counter] = []
_connected = False


def register(counter: Counter) -> Counter:
    global _connected
    _counters.append(counter)
    if not _connected:
        class_prepared.connect(_on_class_prepared, weak=False, dispatch_uid="scalekit_denorm")
        _connected = True
    # Children (and their proxies) already loaded, e.g. declared before the parent.
    for app_models in list(global_apps.all_models.values()):
        for model in list(app_models.values()):
            _match(counter, model)
    return counter


def all_counters() -> list[Counter]:
    return list(_counters)


def counters_for_child(
    model: type[models.Model], modes: tuple[str, ...] = PYTHON_MODES
) -> list[Counter]:
    concrete = model._meta.concrete_model
    return [c for c in _counters if c.child is concrete and c.mode in modes]


def find(label: str) -> list[Counter]:
    """Counters named ``app_label.Model.field`` or ``app_label.Model`` (case-insensitive)."""
    want = label.lower()
    found = [
        c
        for c in _counters
        if want in (c.label.lower(), c.parent._meta.label_lower, c.parent._meta.app_label)
    ]
    return found


def _on_class_prepared(sender: type[models.Model], **kwargs: Any) -> None:
    if sender._meta.apps is not global_apps:
        return  # historical models built by migrations
    for counter in _counters:
        _match(counter, sender)


def _match(counter: Counter, model: type[models.Model]) -> None:
    if model._meta.apps is not global_apps or model._meta.abstract:
        return
    if model._meta.proxy:
        if counter.child is not None and model._meta.concrete_model is counter.child:
            _connect(counter, model)
        return
    if counter.child is not None:
        return
    for f in model._meta.local_fields:
        if isinstance(f, models.ForeignKey) and _points_at(f, model, counter):
            counter.child, counter.fk = model, f
            _connect(counter, model)
            for app_models in list(global_apps.all_models.values()):
                for other in list(app_models.values()):
                    if other._meta.proxy and other._meta.concrete_model is model:
                        _connect(counter, other)
            return


def _points_at(
    fk: models.ForeignKey[Any, Any], child: type[models.Model], counter: Counter
) -> bool:
    remote = fk.remote_field.model
    if isinstance(remote, str):
        if remote == "self":
            label = child._meta.label_lower
        elif "." in remote:
            label = remote.lower()
        else:
            label = f"{child._meta.app_label}.{remote}".lower()
    else:
        label = remote._meta.label_lower
    if label != counter.parent._meta.label_lower:
        return False
    related_name = fk.remote_field.related_name
    if related_name:
        return bool(related_name == counter.relation)
    name = child._meta.model_name
    query_name = fk.remote_field.related_query_name or name
    return counter.relation in (name, f"{name}_set", query_name)


def _connect(counter: Counter, sender: type[models.Model]) -> None:
    if counter.mode not in PYTHON_MODES:
        return
    from django_scalekit.denorm import receivers

    receivers.connect(sender)  # idempotent: one dispatch_uid per sender


def iter_labels() -> Iterator[str]:
    for c in _counters:
        yield c.label
