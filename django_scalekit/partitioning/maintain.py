"""Run the plan: one advisory lock per table, short lock waits, retries.

Every step is its own transaction under ``SET LOCAL lock_timeout``: a long
reader makes a step give up and retry instead of queueing the application's
queries behind maintenance.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from django.apps import apps
from django.db import DatabaseError, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from . import catalog
from .catalog import Parent, PartitioningError
from .conf import ModelOptions, model_options, settings
from .plan import Plan, Step, compute

LOCK_NAMESPACE = 0x53434B50  # "SCKP": keeps our advisory locks apart from the application's
_RETRYABLE = {"55P03", "40P01"}  # lock_not_available, deadlock_detected


class LockNotAcquired(PartitioningError):
    """A step could not get its lock within LOCK_TIMEOUT after LOCK_RETRIES attempts."""


@dataclass
class Result:
    plan: Plan
    applied: list[Step] = field(default_factory=list)
    skipped: bool = False  # another run held the table's lock and wait=False
    moved_rows: int = 0


def lock_key(oid: int) -> int:
    """The advisory lock key of one partitioned table (by oid, so renames keep it)."""
    return (LOCK_NAMESPACE << 32) | oid


def _target(
    model: type[models.Model] | str | None, table: str | None, options: Any
) -> tuple[str, str, ModelOptions]:
    label = ""
    if model is not None:
        model_cls = apps.get_model(model) if isinstance(model, str) else model
        label = model_cls._meta.label
        table = model_cls._meta.db_table
        if options is None:
            configured = settings.MODELS.get(label)
            if configured is None:
                raise PartitioningError(
                    f"{label} is not in SCALEKIT_PARTITIONING['MODELS']; add "
                    f'"{label}": {{"interval": "month"}} or pass options=.'
                )
            options = configured
    if table is None:
        raise TypeError("pass a model, an 'app_label.ModelName' label or table=")
    if options is None:
        raise TypeError("table= needs options=")
    if not isinstance(options, ModelOptions):
        options = model_options(options)
    return label, table, options


def _check_key(
    model: type[models.Model] | str | None, options: ModelOptions, parent: Parent
) -> None:
    """The key the project declared must be the one the table is partitioned by."""
    if model is None:
        return
    from .checks import partition_key

    model_cls = apps.get_model(model) if isinstance(model, str) else model
    declared = partition_key(model_cls, {"key": options.key})
    if declared is None:
        return
    column = model_cls._meta.get_field(declared).column  # type: ignore[union-attr]
    if column != parent.key:
        raise PartitioningError(
            f"{model_cls._meta.label} declares partition key {declared!r} (column "
            f"{column!r}) but table {parent.table!r} is partitioned by {parent.key!r}; "
            "fix the key option or the table."
        )


def plan(
    model: type[models.Model] | str | None = None,
    *,
    table: str | None = None,
    options: ModelOptions | dict[str, Any] | None = None,
    using: str = "default",
    now: dt.datetime | None = None,
    allow_drop: bool | None = None,
) -> Plan:
    """What maintenance would do now, read from the catalog. Changes nothing."""
    label, table, opts = _target(model, table, options)
    connection = connections[using]
    parent = catalog.read_parent(connection, table)
    _check_key(model, opts, parent)
    return _plan_for(connection, label, parent, opts, now, allow_drop)[0]


def _aware(now: dt.datetime) -> dt.datetime:
    """A naive ``now`` (``USE_TZ = False``) is wall-clock time of ``settings.TIME_ZONE``."""
    if timezone.is_naive(now):
        return timezone.make_aware(now, timezone.get_default_timezone())
    return now


def _plan_for(
    connection: BaseDatabaseWrapper,
    label: str,
    parent: Parent,
    options: ModelOptions,
    now: dt.datetime | None,
    allow_drop: bool | None,
) -> tuple[Plan, Parent]:
    partitions = catalog.read_partitions(connection, parent)
    default = next((p for p in partitions if p.default), None)
    hours = catalog.default_rows_by_hour(connection, parent, default.name) if default else []
    result = compute(
        table=parent.table,
        key=parent.key,
        key_type=parent.key_type,
        partitions=partitions,
        options=options,
        now=_aware(now or timezone.now()),
        default_hours=hours,
        allow_drop=settings.ALLOW_DROP if allow_drop is None else allow_drop,
        is_taken=lambda names: catalog.existing_names(connection, parent.schema, names),
        label=label,
    )
    if any(s.rows < 0 for s in result.steps):
        # Never analyzed: an estimate of 0 rows would understate what a drop removes.
        steps = tuple(
            replace(s, rows=catalog.count_rows(connection, parent.schema, s.name))
            if s.rows < 0
            else s
            for s in result.steps
        )
        result = replace(result, steps=steps)
    return result, parent


def maintain(
    model: type[models.Model] | str | None = None,
    *,
    table: str | None = None,
    options: ModelOptions | dict[str, Any] | None = None,
    using: str = "default",
    now: dt.datetime | None = None,
    apply: bool = True,
    allow_drop: bool | None = None,
    wait: bool = True,
) -> Result:
    """Plan and (with ``apply``) carry out maintenance of one partitioned table.

    Holds the table's advisory lock throughout: a concurrent run waits for it
    (``wait=True``) or returns ``Result(skipped=True)``; the plan is read after
    the lock is taken, so the second run sees the first one's partitions.
    """
    label, table, opts = _target(model, table, options)
    connection = connections[using]
    if connection.in_atomic_block:
        raise PartitioningError(
            "partition maintenance runs its own short transactions; call it outside "
            "transaction.atomic()."
        )
    parent = catalog.read_parent(connection, table)
    _check_key(model, opts, parent)
    with _advisory_lock(connection, lock_key(parent.oid), wait) as got:
        if not got:
            empty = Plan(table=parent.table, key=parent.key, interval=opts.interval, steps=())
            return Result(plan=empty, skipped=True)
        parent = catalog.read_parent(connection, table)
        current, parent = _plan_for(connection, label, parent, opts, now, allow_drop)
        result = Result(plan=current)
        if apply:
            default = next((p.name for p in current.partitions if p.default), None)
            for step in current.steps:
                if not step.allowed:
                    continue
                moved = _run(connection, parent, step, default)
                if step.action == "create_default":
                    default = step.name
                result.moved_rows += moved
                result.applied.append(step)
        return result


def maintain_all(**kwargs: Any) -> dict[str, Result]:
    """``maintain`` for every model in ``SCALEKIT_PARTITIONING['MODELS']``.

    One model failing (a lock not acquired) does not stop the others; the first
    error is raised once all have been tried.
    """
    results: dict[str, Result] = {}
    errors: list[PartitioningError] = []
    for label in settings.MODELS:
        try:
            results[label] = maintain(label, **kwargs)
        except PartitioningError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    return results


@contextmanager
def _advisory_lock(connection: BaseDatabaseWrapper, key: int, wait: bool) -> Iterator[bool]:
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_lock(%s), true", [key])
        else:
            cursor.execute("SELECT 1, pg_try_advisory_lock(%s)", [key])
        got = bool(cursor.fetchone()[1])
    try:
        yield got
    finally:
        if got:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError:
                # The connection broke: the session, and with it the lock, is gone.
                # Let the error that broke it propagate instead of this one.
                if connection.is_usable():
                    raise


def _sqlstate(exc: BaseException) -> str | None:
    while exc is not None:
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if state:
            return str(state)
        exc = exc.__cause__  # type: ignore[assignment]
    return None


def _retrying(name: str, attempt: Any) -> int:
    tries = settings.LOCK_RETRIES
    for n in range(tries):
        try:
            return int(attempt())
        except DatabaseError as exc:
            if _sqlstate(exc) not in _RETRYABLE:
                raise
            if n == tries - 1:
                raise LockNotAcquired(
                    f"gave up on {name!r} after {tries} attempts of LOCK_TIMEOUT="
                    f"{settings.LOCK_TIMEOUT}: a long transaction holds a conflicting lock. "
                    "Nothing was changed by this step; the next run tries again."
                ) from exc
            time.sleep(min(2.0, 0.05 * 2**n) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _run(connection: BaseDatabaseWrapper, parent: Parent, step: Step, default: str | None) -> int:
    qn = connection.ops.quote_name
    schema = qn(parent.schema)
    parent_sql = f"{schema}.{qn(parent.table)}"
    part_sql = f"{schema}.{qn(step.name)}"
    timeout = settings.LOCK_TIMEOUT

    def in_transaction(*statements: tuple[str, list[Any]]) -> int:
        moved = 0
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [timeout])
            for sql, params in statements:
                cursor.execute(sql, params)
                if sql.startswith("WITH moved"):
                    moved += max(cursor.rowcount, 0)
        return moved

    if step.action == "create_default":
        return _retrying(
            step.name,
            lambda: in_transaction(
                (f"CREATE TABLE {part_sql} PARTITION OF {parent_sql} DEFAULT", [])
            ),
        )
    if step.action == "create":
        return _retrying(
            step.name, lambda: in_transaction(*_create_sql(connection, parent, step, default))
        )
    # detach / drop / finalize
    if step.action == "finalize" or _detach_pending(connection, parent, step.name):
        _retrying(
            step.name,
            lambda: _autocommit(
                connection,
                timeout,
                f"ALTER TABLE {parent_sql} DETACH PARTITION {part_sql} FINALIZE",
            ),
        )
    elif default is None:
        # CONCURRENTLY needs no ACCESS EXCLUSIVE lock on the parent but is impossible
        # while a DEFAULT partition exists. If it is interrupted the partition stays
        # "detach pending" and the retry (or the next run) finalizes it.
        def concurrently() -> int:
            if _detach_pending(connection, parent, step.name):
                return _autocommit(
                    connection,
                    timeout,
                    f"ALTER TABLE {parent_sql} DETACH PARTITION {part_sql} FINALIZE",
                )
            return _autocommit(
                connection,
                timeout,
                f"ALTER TABLE {parent_sql} DETACH PARTITION {part_sql} CONCURRENTLY",
            )

        _retrying(step.name, concurrently)
    else:
        _retrying(
            step.name,
            lambda: in_transaction((f"ALTER TABLE {parent_sql} DETACH PARTITION {part_sql}", [])),
        )
    if step.action == "drop":
        _retrying(step.name, lambda: in_transaction((f"DROP TABLE {part_sql}", [])))
    return 0


def _autocommit(connection: BaseDatabaseWrapper, timeout: str, sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        previous = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [timeout])
        try:
            cursor.execute(sql)
        finally:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [previous])
    return 0


def _detach_pending(connection: BaseDatabaseWrapper, parent: Parent, name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.inhdetachpending FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.inhparent = %s AND c.relname = %s AND n.nspname = %s",
            [parent.oid, name, parent.schema],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def _create_sql(
    connection: BaseDatabaseWrapper, parent: Parent, step: Step, default: str | None
) -> list[tuple[str, list[Any]]]:
    """A plain table shaped like the parent, the DEFAULT partition's rows for its range
    moved in, then ATTACH: one transaction, so every row stays visible exactly once."""
    qn = connection.ops.quote_name
    schema = qn(parent.schema)
    parent_sql = f"{schema}.{qn(parent.table)}"
    part_sql = f"{schema}.{qn(step.name)}"
    key = qn(parent.key)
    cast = parent.key_type
    statements: list[tuple[str, list[Any]]] = [
        (
            f"CREATE TABLE {part_sql} (LIKE {parent_sql} INCLUDING DEFAULTS INCLUDING "
            "CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION)",
            [],
        )
    ]
    lower = "MINVALUE" if step.lower is None else f"(%s::{cast})"
    upper = "MAXVALUE" if step.upper is None else f"(%s::{cast})"
    bound_params = [b for b in (step.lower, step.upper) if b is not None]
    if default is not None:
        default_sql = f"{schema}.{qn(default)}"
        cols = ", ".join(qn(c) for c in parent.columns)
        where, params = [], []
        if step.lower is not None:
            where.append(f"{key} >= %s::{cast}")
            params.append(step.lower)
        if step.upper is not None:
            where.append(f"{key} < %s::{cast}")
            params.append(step.upper)
        # Writers are paused on the parent (readers are not): an INSERT that had already
        # routed its row to the DEFAULT partition would otherwise wait for our lock, then
        # fail the DEFAULT partition's new constraint once the ATTACH commits. Same lock
        # order as INSERT and ATTACH (parent, then default), so no deadlock.
        statements += [
            (f"LOCK TABLE {parent_sql} IN SHARE ROW EXCLUSIVE MODE", []),
            (f"LOCK TABLE {default_sql} IN ACCESS EXCLUSIVE MODE", []),
            (
                f"WITH moved AS (DELETE FROM {default_sql} WHERE {' AND '.join(where) or 'true'} "
                f"RETURNING {cols}) INSERT INTO {part_sql} ({cols}) SELECT {cols} FROM moved",
                params,
            ),
        ]
    statements.append(
        (
            f"ALTER TABLE {parent_sql} ATTACH PARTITION {part_sql} FOR VALUES FROM "
            f"{lower} TO {upper}",
            bound_params,
        )
    )
    return statements
