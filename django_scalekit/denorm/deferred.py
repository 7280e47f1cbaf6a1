"""Deferred mode: writers append deltas; a task folds them into the counter in batches.

A hot parent (one product taking thousands of reviews a second) turns every
counter update into a queue on one row lock. In deferred mode a trigger on the
child table (installed by ``CounterTrigger``, see ``trigger.py``) only inserts
``(counter, parent, delta)`` rows into ``scalekit_counter_delta`` in the
writing statement (no lock on the parent, no extra round trip), so a rollback
drops them and a commit keeps them. ``fold()`` then moves a batch into the counters in one
transaction: it locks the batch's parents in key order, then one statement
does the ``DELETE ... RETURNING`` of the batch and the ``UPDATE`` of the
parents. They commit together or not at all, so a folder killed mid-batch loses
nothing and applies nothing twice. Reads that need the exact value add
``pending()``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from django_scalekit.denorm import conf
from django_scalekit.denorm.counters import Counter, all_counters, column_of
from django_scalekit.signals import rows_changed

TABLE = "scalekit_counter_delta"


def table_sql() -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} ("
        "id bigserial PRIMARY KEY, counter varchar(255) NOT NULL, "
        "parent_key varchar(255) NOT NULL, delta integer NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_counter_parent ON {TABLE} (counter, parent_key)",
    ]


def pending(field: Any, key: Any, *, using: str | None = None) -> int:
    """The committed deltas not yet folded into ``field`` for parent ``key``."""
    counter = _one(field)
    alias = using or router.db_for_read(counter.parent) or DEFAULT_DB_ALIAS
    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE(SUM(delta), 0) FROM {TABLE} WHERE counter = %s AND parent_key = %s",
            [counter.label, str(key)],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def fold(field: Any = None, *, batch_size: int | None = None, using: str | None = None) -> int:
    """Fold queued deltas into their counters (all deferred counters by default).

    Returns how many delta rows were folded. One folder per counter at a time
    (an advisory lock); another concurrent call returns at once.
    """
    counters = (
        [c for c in all_counters() if c.mode == "deferred"] if field is None else [_one(field)]
    )
    size = batch_size or conf.settings.RECOUNT_BATCH_SIZE
    folded = 0
    for counter in counters:
        alias = using or router.db_for_write(counter.parent) or DEFAULT_DB_ALIAS
        while True:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id(counter)])
                got = cursor.fetchone()
                if not got or not got[0]:
                    break
                cursor.execute(
                    f"SELECT id, parent_key FROM {TABLE} WHERE counter = %s ORDER BY id LIMIT %s",
                    [counter.label, size],
                )
                batch = cursor.fetchall()
                if not batch:
                    break
                lock_sql, fold_sql = _fold_sql(counter, alias)
                # Parents in key order first, as every other writer locks them.
                cursor.execute(lock_sql, [sorted({key for _, key in batch})])
                cursor.execute(fold_sql, [[i for i, _ in batch]])
                row = cursor.fetchone()
                n = int(row[0]) if row else 0
            rows_changed.send(sender=counter.parent, using=alias)
            folded += n
            if n < size:
                break
    return folded


def lock_id(counter: Counter) -> int:
    """A stable 63-bit advisory lock key per counter (shared with recount)."""
    return int(hashlib.sha1(counter.label.encode()).hexdigest()[:15], 16)


def _fold_sql(counter: Counter, alias: str) -> tuple[str, str]:
    assert counter.fk is not None
    conn = connections[alias]
    qn = conn.ops.quote_name
    parent = qn(counter.parent._meta.db_table)
    col = qn(counter.column)
    target = qn(column_of(counter.parent, counter.target))
    key_type = counter.fk.target_field.rel_db_type(conn)
    lock = (
        f"SELECT 1 FROM {parent} WHERE {target} IN (SELECT CAST(k AS {key_type}) "
        f"FROM unnest(%s::varchar[]) AS k) ORDER BY {target} FOR NO KEY UPDATE"
    )
    fold = (
        f"WITH batch AS (DELETE FROM {TABLE} WHERE id = ANY(%s::bigint[]) "
        "RETURNING parent_key, delta), "
        "sums AS (SELECT parent_key, SUM(delta) AS d, COUNT(*) AS n FROM batch "
        "GROUP BY parent_key), "
        f"moved AS (UPDATE {parent} AS p SET {col} = p.{col} + sums.d FROM sums "
        f"WHERE p.{target} = CAST(sums.parent_key AS {key_type}) RETURNING 1) "
        "SELECT COALESCE(SUM(n), 0) FROM sums"
    )
    return lock, fold


def _one(field: Any) -> Counter:
    from django_scalekit.denorm.recount import resolve

    found = resolve(field)
    if len(found) != 1 or found[0].mode != "deferred":
        raise ValueError(f"{field!r} is not one counter in mode='deferred'")
    return found[0]


class CounterDeltaTable(Operation):
    """Migration operation: create the table deferred counters queue their deltas in."""

    reversible = True
    reduces_to_sql = True

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__name__, [], {})

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for sql in table_sql():
                schema_editor.execute(sql, params=None)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        pass  # the table may hold other apps' deltas; dropping it would lose them

    def describe(self) -> str:
        return f"Create the {TABLE} table for deferred counters"

    @property
    def migration_name_fragment(self) -> str:
        return "counter_delta_table"
