"""Trigger mode: a PostgreSQL trigger on the child table keeps the counter exact.

The trigger sees every write (the ORM, raw SQL, other programs), row by row,
in the writing transaction. Its filter is the counter's ``Q`` compiled by
Django against the child table and rewritten onto ``OLD``/``NEW``. Like the
signals mode it updates the lower parent key first, so opposite moves do not
deadlock. ``TRUNCATE`` is not seen; run a recount after one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import connections, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.db.models.fields.reverse_related import ManyToOneRel

from django_scalekit.denorm.counters import Counter, column_of


def counter_from_model(model: type[models.Model], field_name: str) -> Counter | None:
    """A ``Counter`` for a (possibly historical) model's ``CounterField``, or None."""
    field = model._meta.get_field(field_name)
    relation = getattr(field, "relation", None)
    if relation is None:
        return None
    rel = model._meta.get_field(relation)
    if not isinstance(rel, ManyToOneRel):
        raise ValueError(f"{model._meta.label}.{field_name}: {relation!r} is not a reverse FK")
    return Counter(
        parent=model,
        field_name=field_name,
        relation=relation,
        filter=getattr(field, "filter", None),
        mode=getattr(field, "mode", "signals"),
        child=rel.related_model,
        fk=rel.field,
    )


def trigger_counters(model: type[models.Model]) -> list[Counter]:
    """The trigger-mode counters declared on a (possibly historical) model."""
    found = []
    for field in model._meta.concrete_fields:
        if getattr(field, "mode", None) == "trigger" and getattr(field, "relation", None):
            counter = counter_from_model(model, field.name)
            if counter is not None:
                found.append(counter)
    return found


def names(counter: Counter) -> tuple[str, str]:
    """(function name, trigger name), stable and within PostgreSQL's 63 characters."""
    base = f"{counter.parent._meta.db_table}_{counter.column}"
    digest = hashlib.sha1(base.encode()).hexdigest()[:8]
    stem = f"scalekit_cnt_{base}"[:50]
    return f"{stem}_{digest}_fn", f"{stem}_{digest}"


def filter_template(counter: Counter, alias: str, row: str) -> tuple[str, Any]:
    """The counter's filter as SQL on ``row`` (``OLD`` or ``NEW``), and its parameters.

    Raises ``ValueError`` naming the construct when the filter reads anything
    but the row itself. Needs no database connection (the system check uses it).
    """
    if counter.filter is None:
        return "TRUE", ()
    assert counter.child is not None
    conn = connections[alias]
    query = counter.child._base_manager.using(alias).filter(counter.filter).query
    if len(query.alias_map) > 1:
        raise ValueError("it follows a relation to another table")
    compiler = query.get_compiler(using=alias)
    sql, params = compiler.compile(query.where)
    table = conn.ops.quote_name(counter.child._meta.db_table)
    sql = sql.replace(f"{table}.", f"{row}.")
    if table in sql or " FROM " in sql.upper():
        raise ValueError("it reads other rows (a subquery)")
    return sql, params


def filter_sql(counter: Counter, alias: str, row: str) -> str:
    """``filter_template`` with the parameters written in as literals."""
    sql, params = filter_template(counter, alias, row)
    ops: Any = connections[alias].ops  # compose_sql is PostgreSQL-only
    return str(ops.compose_sql(sql, params)) if params else sql


EVENTS = {
    # suffix: (event, REFERENCING clause, delta sources as (transition table, sign))
    "i": ("INSERT", "NEW TABLE AS new_rows", (("new_rows", 1),)),
    "u": (
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        (("old_rows", -1), ("new_rows", 1)),
    ),
    "d": ("DELETE", "OLD TABLE AS old_rows", (("old_rows", -1),)),
}


def _nonzero(counter: Counter, alias: str, sources: Any) -> str:
    """SQL for ``(k, d)``: per parent key, the net change this statement made, if any."""
    assert counter.fk is not None
    fk = connections[alias].ops.quote_name(str(counter.fk.column))
    cond = filter_sql(counter, alias, "r")
    parts = [
        f"SELECT r.{fk} AS k, {sign} AS d FROM {table} AS r "
        f"WHERE r.{fk} IS NOT NULL AND COALESCE(({cond}), FALSE)"
        for table, sign in sources
    ]
    return (
        f"SELECT k, SUM(d) AS d FROM ({' UNION ALL '.join(parts)}) AS x "
        "GROUP BY k HAVING SUM(d) <> 0"
    )


def install_sql(counter: Counter, alias: str, siblings: list[Counter] | None = None) -> list[str]:
    """Statement-level triggers (one per event) with transition tables.

    Each statement's rows are folded into one delta per parent, and the
    parents are locked in key order before any is updated, so concurrent
    statements never wait on each other in a cycle. ``siblings`` are the other
    trigger counters of the same parent and child tables: every one of their
    functions locks the same set, so two counters cannot interleave either.
    """
    assert counter.child is not None
    assert counter.fk is not None
    qn = connections[alias].ops.quote_name
    fn, trigger = names(counter)
    child = qn(counter.child._meta.db_table)
    parent = qn(counter.parent._meta.db_table)
    col = qn(counter.column)
    target = qn(column_of(counter.parent, counter.target))
    group = [counter, *(c for c in siblings or [] if c.label != counter.label)]
    branches = []
    for event, _refs, sources in EVENTS.values():
        locked = " UNION ".join(
            f"SELECT k FROM ({_nonzero(c, alias, sources)}) AS n" for c in group
        )
        branches.append(
            f"""IF TG_OP = '{event}' THEN
        PERFORM 1 FROM {parent} WHERE {target} IN ({locked})
            ORDER BY {target} FOR NO KEY UPDATE;
        UPDATE {parent} AS p SET {col} = p.{col} + s.d
            FROM ({_nonzero(counter, alias, sources)}) AS s WHERE p.{target} = s.k;
    END IF;"""
        )
    function = (
        f"CREATE OR REPLACE FUNCTION {qn(fn)}() RETURNS trigger LANGUAGE plpgsql AS $scalekit$\n"
        "BEGIN\n    " + "\n    ".join(branches) + "\n    RETURN NULL;\nEND\n$scalekit$"
    )
    statements = [function]
    for suffix, (event, refs, _sources) in EVENTS.items():
        name = qn(f"{trigger}_{suffix}")
        statements += [
            f"DROP TRIGGER IF EXISTS {name} ON {child}",
            f"CREATE TRIGGER {name} AFTER {event} ON {child} REFERENCING {refs} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {qn(fn)}()",
        ]
    return statements


def drop_sql(counter: Counter, alias: str) -> list[str]:
    assert counter.child is not None
    qn = connections[alias].ops.quote_name
    fn, trigger = names(counter)
    child = qn(counter.child._meta.db_table)
    return [
        *(f"DROP TRIGGER IF EXISTS {qn(f'{trigger}_{s}')} ON {child}" for s in EVENTS),
        f"DROP FUNCTION IF EXISTS {qn(fn)}()",
    ]


def installed(counter: Counter, alias: str) -> bool:
    _fn, trigger = names(counter)
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s", [f"{trigger}_i"])
        return cursor.fetchone() is not None


class CounterTrigger(Operation):
    """Migration operation: install (or update, or drop) the trigger of one counter.

    ``CounterTrigger("product", "review_count")`` installs the trigger when the
    field is in trigger mode in the migrated state and drops it otherwise; add
    it again after changing the relation, the filter or the mode.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, field_name: str) -> None:
        self.model_name = model_name
        self.field_name = field_name

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__name__, [self.model_name, self.field_name], {})

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._apply(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._apply(app_label, schema_editor, from_state, to_state)

    def _apply(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        before: ProjectState,
        after: ProjectState,
    ) -> None:
        conn = schema_editor.connection
        if conn.vendor != "postgresql":
            return  # the system check (E035) reports trigger mode off PostgreSQL
        new = self._counter(app_label, after)
        old = self._counter(app_label, before)
        if new is not None and new.mode == "trigger":
            siblings = [
                c
                for c in trigger_counters(new.parent)
                if c.child is new.child and c.label != new.label
            ]
            statements = install_sql(new, conn.alias, siblings)
            for sibling in siblings:  # their lock sets now include this counter's
                statements += install_sql(sibling, conn.alias, [new, *siblings])
        elif old is not None and old.mode == "trigger":
            statements = drop_sql(old, conn.alias)
        else:
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)

    def _counter(self, app_label: str, state: ProjectState) -> Counter | None:
        try:
            model = state.apps.get_model(app_label, self.model_name)
            return counter_from_model(model, self.field_name)
        except LookupError:
            return None
        except FieldDoesNotExist:
            return None

    def describe(self) -> str:
        return f"Install the counter trigger of {self.model_name}.{self.field_name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"counter_trigger_{self.model_name.lower()}_{self.field_name}"
