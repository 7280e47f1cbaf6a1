"""What PostgreSQL says a partitioned table is made of (``pg_inherits``, ``relpartbound``).

Partitions are identified by their bounds, never by their names: a renamed
parent, partitions made by another tool and names PostgreSQL truncated all read
the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db.backends.base.base import BaseDatabaseWrapper

from .bounds import Bound

KEY_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")
_RANGE = re.compile(r"^FOR VALUES FROM \((.+)\) TO \((.+)\)$", re.S)


class PartitioningError(Exception):
    """The table cannot be maintained as asked; the message says what to change."""


@dataclass(frozen=True)
class Parent:
    oid: int
    schema: str
    table: str
    key: str
    key_type: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Partition:
    """One attached partition; ``lower``/``upper`` of ``None`` mean MINVALUE/MAXVALUE."""

    name: str
    lower: Bound | None
    upper: Bound | None
    rows: int = 0  # planner estimate (pg_class.reltuples); -1: never analyzed
    default: bool = False
    detach_pending: bool = False


def read_parent(connection: BaseDatabaseWrapper, table: str) -> Parent:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(quote_ident(%s))",
            [table],
        )
        row = cursor.fetchone()
        if row is None:
            raise PartitioningError(f"table {table!r} does not exist; run migrate first.")
        oid, schema, relname, relkind = row
        if relkind != "p":
            raise PartitioningError(
                f"table {relname!r} is not partitioned. Create it with "
                "django_scalekit.partitioning.CreatePartitionedModel (or psqlextra's "
                "PostgresPartitionedModel) in a migration; an existing table must be "
                "recreated, PostgreSQL cannot turn a table into a partitioned one in place."
            )
        cursor.execute(
            "SELECT pt.partstrat, pt.partnatts, a.attname, format_type(a.atttypid, NULL) "
            "FROM pg_partitioned_table pt LEFT JOIN pg_attribute a "
            "ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0] "
            "WHERE pt.partrelid = %s",
            [oid],
        )
        strategy, natts, key, key_type = cursor.fetchone()
        if strategy != "r" or natts != 1 or key is None:
            raise PartitioningError(
                f"table {relname!r} must be partitioned BY RANGE on one date/timestamp column."
            )
        if key_type not in KEY_TYPES:
            raise PartitioningError(
                f"table {relname!r} is partitioned by {key!r} of type {key_type}; "
                "time-based maintenance needs a date, timestamp or timestamptz key."
            )
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum",
            [oid],
        )
        columns = tuple(r[0] for r in cursor.fetchall())
    return Parent(oid, schema, relname, key, key_type, columns)


def read_partitions(connection: BaseDatabaseWrapper, parent: Parent) -> list[Partition]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), "
            "c.reltuples::bigint, i.inhdetachpending "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s ORDER BY c.relname",
            [parent.oid],
        )
        rows = cursor.fetchall()
    literals: list[str] = []
    parsed: list[tuple[str, str | None, str | None, int, bool, bool]] = []
    for name, expr, estimate, pending in rows:
        if expr == "DEFAULT":
            parsed.append((name, None, None, estimate, True, pending))
            continue
        match = _RANGE.match(expr)
        if match is None:
            raise PartitioningError(f"cannot read the bounds of partition {name!r}: {expr}")
        lo, hi = (_literal(part) for part in match.groups())
        literals += [x for x in (lo, hi) if x is not None]
        parsed.append((name, lo, hi, estimate, False, pending))
    values = _cast(connection, literals, parent.key_type)
    return [
        Partition(
            name,
            values[lo] if lo is not None else None,
            values[hi] if hi is not None else None,
            estimate,
            default,
            pending,
        )
        for name, lo, hi, estimate, default, pending in parsed
    ]


def _literal(text: str) -> str | None:
    text = text.strip()
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    if not (text.startswith("'") and text.endswith("'")):
        raise PartitioningError(f"unexpected partition bound {text}")
    return text[1:-1].replace("''", "'")


def _cast(connection: BaseDatabaseWrapper, literals: list[str], key_type: str) -> dict[str, Bound]:
    """Turn bound literals into Python values by letting PostgreSQL parse them."""
    if not literals:
        return {}
    assert key_type in KEY_TYPES  # interpolated below
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t, t::{key_type} FROM unnest(%s::text[]) AS t", [literals])
        return {text: _normalise(value) for text, value in cursor.fetchall()}


def _normalise(value: Bound) -> Bound:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    return value


def count_rows(connection: BaseDatabaseWrapper, schema: str, name: str) -> int:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {qn(schema)}.{qn(name)}")
        return int(cursor.fetchone()[0])


def existing_names(connection: BaseDatabaseWrapper, schema: str, names: list[str]) -> set[str]:
    """Which of ``names`` are taken by any relation (table, index, sequence) in ``schema``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = ANY(%s)",
            [schema, names],
        )
        return {r[0] for r in cursor.fetchall()}


def default_rows_by_hour(
    connection: BaseDatabaseWrapper, parent: Parent, default: str
) -> list[tuple[Bound | None, int]]:
    """Rows in the DEFAULT partition, counted per hour (per day for a date key).

    Rows whose key is NULL, which no range can hold, are counted under ``None``.
    """
    qn = connection.ops.quote_name
    key = qn(parent.key)
    if parent.key_type == "timestamp with time zone":
        bucket = f"date_trunc('hour', {key} AT TIME ZONE 'UTC')"
    elif parent.key_type == "timestamp without time zone":
        bucket = f"date_trunc('hour', {key})"
    else:
        bucket = key
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {bucket}, count(*) FROM {qn(parent.schema)}.{qn(default)} "
            "GROUP BY 1 ORDER BY 1 NULLS LAST"
        )
        out: list[tuple[Bound | None, int]] = []
        for value, count in cursor.fetchall():
            if value is not None and parent.key_type == "timestamp with time zone":
                value = value.replace(tzinfo=dt.UTC)
            out.append((value, count))
        return out
