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


def install_sql(counter: Counter, alias: str) -> list[str]:
    assert counter.child is not None
    assert counter.fk is not None
    qn = connections[alias].ops.quote_name
    fn, trigger = names(counter)
    child = qn(counter.child._meta.db_table)
    parent = qn(counter.parent._meta.db_table)
    col = qn(counter.column)
    target = qn(column_of(counter.parent, counter.target))
    fk = qn(counter.fk.column)
    key_type = counter.fk.target_field.rel_db_type(connections[alias])
    watched = sorted(
        {
            column_of(counter.child, n)
            for n in counter.watched_fields()
            if n in {f.name for f in counter.child._meta.concrete_fields}
        }
    )
    old_in = f"OLD.{fk} IS NOT NULL AND COALESCE(({filter_sql(counter, alias, 'OLD')}), FALSE)"
    new_in = f"NEW.{fk} IS NOT NULL AND COALESCE(({filter_sql(counter, alias, 'NEW')}), FALSE)"
    dec = f"UPDATE {parent} SET {col} = {col} - 1 WHERE {target} = old_key;"
    inc = f"UPDATE {parent} SET {col} = {col} + 1 WHERE {target} = new_key;"
    function = f"""
CREATE OR REPLACE FUNCTION {qn(fn)}() RETURNS trigger LANGUAGE plpgsql AS $scalekit$
DECLARE
    old_key {key_type};
    new_key {key_type};
BEGIN
    IF TG_OP <> 'INSERT' AND {old_in} THEN old_key := OLD.{fk}; END IF;
    IF TG_OP <> 'DELETE' AND {new_in} THEN new_key := NEW.{fk}; END IF;
    IF old_key IS NOT DISTINCT FROM new_key THEN RETURN NULL; END IF;
    -- lower key first: two opposite moves lock the parents in the same order
    IF new_key IS NULL OR (old_key IS NOT NULL AND old_key < new_key) THEN
        IF old_key IS NOT NULL THEN {dec} END IF;
        IF new_key IS NOT NULL THEN {inc} END IF;
    ELSE
        {inc}
        IF old_key IS NOT NULL THEN {dec} END IF;
    END IF;
    RETURN NULL;
END
$scalekit$"""
    columns = ", ".join(qn(c) for c in watched)
    return [
        function,
        f"DROP TRIGGER IF EXISTS {qn(trigger)} ON {child}",
        f"CREATE TRIGGER {qn(trigger)} AFTER INSERT OR DELETE OR UPDATE OF {columns} "
        f"ON {child} FOR EACH ROW EXECUTE FUNCTION {qn(fn)}()",
    ]


def drop_sql(counter: Counter, alias: str) -> list[str]:
    assert counter.child is not None
    qn = connections[alias].ops.quote_name
    fn, trigger = names(counter)
    return [
        f"DROP TRIGGER IF EXISTS {qn(trigger)} ON {qn(counter.child._meta.db_table)}",
        f"DROP FUNCTION IF EXISTS {qn(fn)}()",
    ]


def installed(counter: Counter, alias: str) -> bool:
    _fn, trigger = names(counter)
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s", [trigger])
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
            statements = install_sql(new, conn.alias)
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
