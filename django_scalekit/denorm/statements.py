"""The per-row SQL of the receivers, compiled once per counter and database.

A save runs these on every write; building them through the ORM each time
cost more than executing them. The filter is compiled by Django's own
compiler against the child table, so it means exactly what the ``Q`` means.
"""

from __future__ import annotations

from typing import Any

from django.db import connections

from django_scalekit.denorm.counters import Counter, column_of

_cache: dict[tuple[str, str, str], tuple[str, list[Any]]] = {}


def where(counter: Counter, alias: str) -> tuple[str, list[Any]]:
    """The counter's filter as SQL over the child table (``""`` when it has none)."""
    if counter.filter is None:
        return "", []
    assert counter.child is not None
    query = counter.child._base_manager.using(alias).filter(counter.filter).query
    sql, params = query.get_compiler(using=alias).compile(query.where)
    return sql, list(params)


def _cached(kind: str, counters: list[Counter], alias: str, build: Any) -> tuple[str, list[Any]]:
    key = (kind, "|".join(f"{c.label}:{c.mode}" for c in counters), alias)
    if key not in _cache:
        _cache[key] = build()
    return _cache[key]


def keys_select(counters: list[Counter], alias: str, lock: bool) -> tuple[str, list[Any]]:
    """``SELECT`` per counter the parent key a child row counts towards (or NULL);
    the child's pk is the last parameter."""

    def build() -> tuple[str, list[Any]]:
        conn = connections[alias]
        qn = conn.ops.quote_name
        child = counters[0].child
        assert child is not None
        pk = child._meta.pk
        assert pk is not None
        columns, params = [], []
        for c in counters:
            assert c.fk is not None
            fk = f"{qn(child._meta.db_table)}.{qn(str(c.fk.column))}"
            cond, cond_params = where(c, alias)
            if cond:
                columns.append(f"CASE WHEN ({cond}) THEN {fk} ELSE NULL END")
                params.extend(cond_params)
            else:
                columns.append(fk)
        sql = (
            f"SELECT {', '.join(columns)} FROM {qn(child._meta.db_table)} "
            f"WHERE {qn(child._meta.db_table)}.{qn(str(pk.column))} = %s"
        )
        if lock and conn.features.has_select_for_update:
            no_key = conn.features.has_select_for_no_key_update
            sql += " " + conn.ops.for_update_sql(no_key=no_key)
        return sql, params

    return _cached(f"keys:{lock}", counters, alias, build)


def on_insert(counter: Counter, alias: str) -> tuple[str, list[Any]]:
    """One statement that counts a new child row (its pk is the last parameter)."""

    def build() -> tuple[str, list[Any]]:
        assert counter.child is not None
        assert counter.fk is not None
        qn = connections[alias].ops.quote_name
        child = qn(counter.child._meta.db_table)
        pk = counter.child._meta.pk
        assert pk is not None
        fk = f"{child}.{qn(str(counter.fk.column))}"
        cond, params = where(counter, alias)
        rows = f"FROM {child} WHERE {fk} IS NOT NULL AND {'(' + cond + ') AND ' if cond else ''}"
        rows += f"{child}.{qn(str(pk.column))} = %s"
        parent = qn(counter.parent._meta.db_table)
        col = qn(counter.column)
        target = qn(column_of(counter.parent, counter.target))
        return (
            f"UPDATE {parent} SET {col} = {col} + 1 WHERE {target} IN (SELECT {fk} {rows})",
            params,
        )

    return _cached("insert", [counter], alias, build)
