"""Recount: set counters to the real ``COUNT`` of their children, in small batches.

Each batch is one transaction: lock ``batch_size`` parents in key order, then one
``SELECT`` joins them to their children's ``GROUP BY`` and returns the drifted
ones, and one ``UPDATE`` writes those (none when nothing drifted). Locking first
matters: a writer that already adjusted one of those counters holds its row
lock, so the ``FOR UPDATE`` waits for it to commit and the count, taken by the
next statement (READ COMMITTED: a fresh snapshot), sees its rows. A writer that
has not adjusted the counter yet is not counted either and adds its delta after
the batch commits; it cannot adjust, and so cannot commit, before the
``UPDATE`` either. No increment is lost and no table lock is taken.

The count is a plain ``SELECT``, so PostgreSQL can run it with parallel workers,
as it runs the ``GROUP BY`` a person would write; the ``UPDATE`` only writes the
values it found. The batch's keys are consecutive in key order, so the children
are selected by the range of the first and last key, not by a list of keys.

For a deferred counter one statement counts, sets and deletes the batch's queued
deltas: children and deltas are committed together, and one statement has one
snapshot, so it counts a child exactly when it deletes that child's delta.
(Deferred writers take no parent lock, so the count and the write cannot be two
statements.) ``UPDATE ... FROM ... RETURNING`` with the old value is
PostgreSQL's. On other databases (SQLite for the demo) the drifted parents are
set to a correlated ``COUNT``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.db.models.query_utils import DeferredAttribute

from django_scalekit.denorm import conf
from django_scalekit.denorm.counters import Counter, all_counters, column_of, find
from django_scalekit.signals import rows_changed

MAX_REPORTED = 1000


@dataclass
class RecountResult:
    """What a recount found: ``rows`` lists up to 1000 ``(key, stored, real)`` drifted parents."""

    counter: str
    parents: int = 0
    batches: int = 0
    drifted: int = 0
    dry_run: bool = False
    rows: list[tuple[Any, int, int]] = field(default_factory=list)


def resolve(field_or_label: Any) -> list[Counter]:
    """Counters for ``Model.field``, a ``Counter``, or a label ``app.Model[.field]``."""
    if isinstance(field_or_label, Counter):
        return [field_or_label]
    if isinstance(field_or_label, DeferredAttribute):
        f = field_or_label.field
        found = [c for c in all_counters() if c.parent is f.model and c.field_name == f.name]
    elif isinstance(field_or_label, str):
        found = find(field_or_label)
    else:
        raise TypeError(f"recount() takes Model.field or 'app.Model.field', not {field_or_label!r}")
    if not found:
        raise LookupError(f"{field_or_label!r} is not a counter")
    return found


def recount(
    field: Any,
    *,
    batch_size: int | None = None,
    dry_run: bool = False,
    using: str | None = None,
) -> RecountResult:
    """Set ``field`` (e.g. ``Product.review_count``) to the real count for every parent.

    Parents without children get 0. With ``dry_run`` nothing is written and the
    result reports what would change.
    """
    found = resolve(field)
    if len(found) != 1:
        raise ValueError(f"{field!r} names {len(found)} counters; name one as app.Model.field")
    counter = found[0]
    if counter.child is None or counter.fk is None:
        raise LookupError(f"{counter.label}: relation {counter.relation!r} was not found")
    size = batch_size or conf.settings.RECOUNT_BATCH_SIZE
    alias = using or router.db_for_write(counter.parent) or DEFAULT_DB_ALIAS
    result = RecountResult(counter=counter.label, dry_run=dry_run)
    last: Any = None
    while True:
        batch = _one_batch(counter, last, size, alias, dry_run)
        if batch is None:
            break
        keys, drifted = batch
        result.batches += 1
        result.parents += len(keys)
        result.drifted += len(drifted)
        room = MAX_REPORTED - len(result.rows)
        result.rows.extend(drifted[:room])
        last = keys[-1]
        if len(keys) < size:
            break
    return result


def _one_batch(
    counter: Counter, last: Any, size: int, alias: str, dry_run: bool
) -> tuple[list[Any], list[Any]] | None:
    deferred = counter.mode == "deferred" and not dry_run
    with transaction.atomic(using=alias):
        if deferred:
            from django_scalekit.denorm.deferred import lock_id

            with connections[alias].cursor() as cursor:  # no fold() meanwhile
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id(counter)])
        parents = counter.parent_manager(alias).order_by(counter.target)
        if last is not None:
            parents = parents.filter(**{f"{counter.target}__gt": last})
        if not dry_run:
            parents = parents.select_for_update()
        keys = list(parents.values_list(counter.target, flat=True)[:size])
        if not keys:
            return None
        drifted = _batch(counter, keys, alias, dry_run)
    if not dry_run:
        rows_changed.send(sender=counter.parent, using=alias)
    return keys, drifted


def _batch(counter: Counter, keys: list[Any], alias: str, dry_run: bool) -> list[Any]:
    """Set (or with ``dry_run`` only find) the batch's drifted counters: ``(key, stored, real)``."""
    assert counter.fk is not None
    conn = connections[alias]
    qn = conn.ops.quote_name
    # The keys come in key order and the batch holds every parent between the first
    # and the last, so a range selects their children (and a child of a parent
    # created meanwhile inside it finds no parent row in the join below).
    fk = counter.fk.attname
    bounds = {f"{fk}__gte": keys[0], f"{fk}__lte": keys[-1]}
    children = counter.child_manager(alias).filter(**bounds)
    if counter.filter is not None:
        children = children.filter(counter.filter)
    grouped = children.values(sk_key=F(counter.fk.attname)).annotate(sk_n=Count("*")).order_by()
    child_sql, child_params = grouped.query.get_compiler(using=alias).as_sql()
    table = qn(counter.parent._meta.db_table)
    col = qn(counter.column)
    target = qn(column_of(counter.parent, counter.target))
    marks = ", ".join(["%s"] * len(keys))
    real = "COALESCE(s.sk_n, 0)"
    stored = f"p0.{col}"
    stored_params: list[Any] = []
    if dry_run and counter.mode == "deferred":
        from django_scalekit.denorm.deferred import TABLE

        stored = (
            f"(p0.{col} + COALESCE((SELECT SUM(d.delta) FROM {TABLE} AS d WHERE d.counter = %s "
            f"AND d.parent_key = CAST(p0.{target} AS varchar)), 0))"
        )
        stored_params = [counter.label]
    # A real count is never negative, so -1 stands for a NULL stored value.
    joined = (
        f"{table} AS p0 LEFT JOIN ({child_sql}) AS s ON s.sk_key = p0.{target} "
        f"WHERE p0.{target} IN ({marks}) AND COALESCE({stored}, -1) <> {real}"
    )
    params = [*child_params, *keys, *stored_params]
    with conn.cursor() as cursor:
        if dry_run or counter.mode != "deferred" or conn.vendor != "postgresql":
            cursor.execute(
                f"SELECT p0.{target}, {stored}, {real} FROM {joined}",
                [*stored_params, *params],
            )
            drifted = sorted(cursor.fetchall())
            if dry_run or not drifted:
                return drifted
            if conn.vendor != "postgresql":
                _set_real(counter, [key for key, _, _ in drifted], alias)
                return drifted
            # The batch is locked, so no stored value moves before this write.
            rows = ", ".join(["(%s, %s)"] * len(drifted))
            cursor.execute(
                f"UPDATE {table} AS p SET {col} = v.n FROM (VALUES {rows}) AS v (k, n) "
                f"WHERE p.{target} = v.k",
                [value for key, _, n in drifted for value in (key, n)],
            )
            return drifted
        from django_scalekit.denorm.deferred import TABLE

        # One statement counts, sets the drifted rows and clears the batch's deltas.
        cursor.execute(
            f"WITH cleared AS (DELETE FROM {TABLE} WHERE counter = %s "
            f"AND parent_key IN ({marks}) RETURNING 1) "
            f"UPDATE {table} AS p SET {col} = {real} FROM {joined} "
            f"AND p.{target} = p0.{target} RETURNING p.{target}, p0.{col}, p.{col}",
            [counter.label, *(str(k) for k in keys), *params],
        )
        return sorted(cursor.fetchall())


def _set_real(counter: Counter, keys: list[Any], alias: str) -> None:
    """The portable write: one ``UPDATE`` of the drifted parents to a correlated ``COUNT``.

    The batch's parents are locked (``FOR UPDATE``; SQLite has one writer at a
    time), so no counter adjustment lands between the ``SELECT`` that found these
    rows and this statement, and the value written is the real count either way.
    """
    assert counter.fk is not None
    children = counter.child_manager(alias).filter(**{counter.fk.attname: OuterRef(counter.target)})
    if counter.filter is not None:
        children = children.filter(counter.filter)
    real = children.order_by().values(counter.fk.attname).annotate(n=Count("pk")).values("n")
    counter.parent_manager(alias).filter(**{f"{counter.target}__in": keys}).update(
        **{counter.field_name: Coalesce(Subquery(real), 0)}
    )
