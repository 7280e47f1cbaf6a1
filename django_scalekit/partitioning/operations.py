"""``CreatePartitionedModel``: a migration operation that creates a range-partitioned parent.

Works on any supported Django (no django-postgres-extra needed): it is Django's
``CreateModel`` whose table gets ``PARTITION BY RANGE (<key>)``. The migration
state is the same as ``CreateModel``'s, so ``makemigrations`` sees no change.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations import CreateModel
from django.db.migrations.state import ProjectState

from .catalog import PartitioningError


def primary_key_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    meta = model._meta
    fields = getattr(meta, "pk_fields", None)
    return list(fields) if fields else [meta.pk]  # type: ignore[list-item]


def key_problems(model: type[models.Model], key: str) -> list[str]:
    """Why PostgreSQL would refuse to partition ``model`` by ``key`` (empty: it will not)."""
    meta = model._meta
    try:
        field = meta.get_field(key)
    except Exception:
        return [f"{meta.label} has no field {key!r} to partition by."]
    if not isinstance(field, models.DateField):  # DateTimeField subclasses DateField
        return [f"{meta.label}.{key} must be a DateField or DateTimeField to partition by time."]
    problems = []
    if field not in primary_key_fields(model):
        problems.append(
            f"the primary key of {meta.label} does not include {key!r}: PostgreSQL requires "
            "every unique key of a partitioned table to contain the partition key. On "
            f'Django 5.2+ write pk = models.CompositePrimaryKey("uid", "{key}") with '
            "uid = models.UUIDField(default=uuid.uuid4) (an AutoField cannot be part of a "
            "composite key)."
        )
    for other in meta.local_fields:
        if other.unique and not other.primary_key and other is not field:
            problems.append(
                f"{meta.label}.{other.name} is unique=True: PostgreSQL cannot enforce it "
                f"across partitions; use a UniqueConstraint that includes {key!r}."
            )
    for constraint in meta.constraints:
        fields = getattr(constraint, "fields", ())
        if isinstance(constraint, models.UniqueConstraint) and key not in fields:
            problems.append(f"constraint {constraint.name!r} of {meta.label} must include {key!r}.")
    return problems


class CreatePartitionedModel(CreateModel):
    """``CreateModel`` for a table partitioned ``BY RANGE (partition_key)``."""

    def __init__(self, *args: Any, partition_key: str, **kwargs: Any) -> None:
        self.partition_key = partition_key
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, args, kwargs = super().deconstruct()
        kwargs["partition_key"] = self.partition_key
        return name, args, kwargs

    def describe(self) -> str:
        return f"Create model {self.name} partitioned by range of {self.partition_key}"

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        model = to_state.apps.get_model(app_label, self.name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor != "postgresql":
            raise PartitioningError("CreatePartitionedModel needs PostgreSQL.")
        problems = key_problems(model, self.partition_key)
        if problems:
            raise PartitioningError(" ".join(problems))
        column = model._meta.get_field(self.partition_key).column
        sql, params = schema_editor.table_sql(model)  # type: ignore[no-untyped-call]
        sql += f" PARTITION BY RANGE ({schema_editor.quote_name(column)})"
        schema_editor.execute(sql, params or None)
        if model._meta.db_table_comment:
            schema_editor.alter_db_table_comment(model, None, model._meta.db_table_comment)  # type: ignore[arg-type]
        # Indexes on a partitioned table cascade to every partition, present and future.
        schema_editor.deferred_sql.extend(schema_editor._model_indexes_sql(model))  # type: ignore[attr-defined]
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through  # type: ignore[union-attr]
            if through._meta.auto_created:  # type: ignore[union-attr]
                schema_editor.create_model(through)  # type: ignore[arg-type]
