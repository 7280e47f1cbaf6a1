"""Trigger and deferred modes: PostgreSQL triggers on the child table.

The triggers see every write (the ORM, raw SQL, other programs) in the writing
transaction. Their filter is the counter's ``Q`` compiled by Django against the
child table and rewritten onto the statement's transition tables. In trigger
mode they adjust the parents, locked in key order, so opposite moves do not
deadlock; in commit mode they add the statement's deltas to a transaction-local
setting and a deferred constraint trigger applies the sum at ``COMMIT``, so a
hot parent's row is locked only while the transaction commits; in deferred mode
they queue the deltas for ``fold()`` and lock no parent. ``TRUNCATE`` is not
seen; run a recount after one.
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

from django_scalekit.denorm.counters import TRIGGER_MODES, Counter, column_of


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


def trigger_counters(model: type[models.Model], mode: str = "trigger") -> list[Counter]:
    """The counters in ``mode`` declared on a (possibly historical) model."""
    found = []
    for field in model._meta.concrete_fields:
        if getattr(field, "mode", None) == mode and getattr(field, "relation", None):
            counter = counter_from_model(model, field.name)
            if counter is not None:
                found.append(counter)
    return found


def _digest(counter: Counter) -> str:
    base = f"{counter.parent._meta.db_table}_{counter.column}"
    return hashlib.sha1(base.encode()).hexdigest()[:8]


def names(counter: Counter) -> tuple[str, str]:
    """(function name, trigger name), stable and within PostgreSQL's 63 characters."""
    stem = f"scalekit_cnt_{counter.parent._meta.db_table}_{counter.column}"[:50]
    return f"{stem}_{_digest(counter)}_fn", f"{stem}_{_digest(counter)}"


def apply_function(counter: Counter) -> str:
    """Commit mode's deferred function, beside the statement trigger's (``names()``)."""
    return f"{names(counter)[0].removesuffix('_fn')}_ac"


def pending_setting(counter: Counter) -> str:
    """The transaction-local setting holding a commit-mode counter's unapplied deltas."""
    return f"scalekit.cnt_{_digest(counter)}"


def filter_template(counter: Counter, alias: str, row: str) -> tuple[str, Any]:
    """The counter's filter as SQL on ``row`` (an alias of the child's rows), and its parameters.

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

    Each statement's rows are folded into one delta per parent. In trigger mode
    the parents are locked in key order before any is updated, so concurrent
    statements never wait on each other in a cycle. ``siblings`` are the other
    trigger counters of the same parent and child tables: every one of their
    functions locks the same set, so two counters cannot interleave either. A
    one-row ``INSERT`` or ``DELETE`` touches one parent whatever the counter, so
    it skips the locking pass and updates that parent with one statement. In
    deferred mode the deltas go to the queue, and no parent is locked.
    """
    assert counter.child is not None
    qn = connections[alias].ops.quote_name
    fn, trigger = names(counter)
    child = qn(counter.child._meta.db_table)
    group = [counter, *(c for c in siblings or [] if c.label != counter.label)]
    if counter.mode == "commit":
        return _commit_sql(counter, group, alias)
    branches = [
        f"IF TG_OP = '{event}' THEN\n        "
        + _apply_sql(counter, group, alias, sources).replace("\n", "\n        ")
        + "\n    END IF;"
        for event, _refs, sources in EVENTS.values()
    ]
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
    statements += _drop_commit_sql(counter, alias)  # after a switch from commit mode
    return statements


def _drop_commit_sql(counter: Counter, alias: str) -> list[str]:
    """Drop commit mode's deferred triggers and their function (none: no error)."""
    return _drop(counter, alias, [f"c{s}" for s in EVENTS], [apply_function(counter)])


def _drop(counter: Counter, alias: str, suffixes: list[str], functions: list[str]) -> list[str]:
    assert counter.child is not None
    qn = connections[alias].ops.quote_name
    _fn, trigger = names(counter)
    child = qn(counter.child._meta.db_table)
    return [
        *(f"DROP TRIGGER IF EXISTS {qn(f'{trigger}_{s}')} ON {child}" for s in suffixes),
        *(f"DROP FUNCTION IF EXISTS {qn(f)}()" for f in functions),
    ]


def _commit_sql(counter: Counter, group: list[Counter], alias: str) -> list[str]:
    """Commit mode: statement triggers add to the pending sum, a deferred trigger applies it.

    Each statement's deltas (one per parent) are merged into a ``SET LOCAL``-style
    setting, which savepoint and transaction rollbacks undo with the rows. Every row
    that changes the count also queues a deferred constraint trigger; the first one
    to fire at ``COMMIT`` locks the parents of all pending sums of ``group`` in key
    order and applies this counter's (the others find theirs empty or locked). When
    the user runs with ``SET CONSTRAINTS ... IMMEDIATE``, a statement's row events
    fire before its statement trigger; the apply function marks that it ran, and the
    statement trigger then applies its own deltas at once, as trigger mode does.
    """
    assert counter.child is not None
    assert counter.fk is not None
    conn = connections[alias]
    qn = conn.ops.quote_name
    fn, trigger = names(counter)
    apply_fn = apply_function(counter)
    child = qn(counter.child._meta.db_table)
    parent = qn(counter.parent._meta.db_table)
    col = qn(counter.column)
    target = qn(column_of(counter.parent, counter.target))
    key_type = counter.fk.db_type(conn)
    setting = pending_setting(counter)
    fired = setting + "_fired"
    fk = qn(str(counter.fk.column))

    # Parents are updated one key at a time, by index, in key order: the typical
    # commit touches one parent, and a join would plan a scan of the parent table.
    apply_loop = (
        "FOR scalekit_key, scalekit_change IN\n"
        f"    SELECT CAST(e.key AS {key_type}), CAST(e.value AS bigint)\n"
        "    FROM jsonb_each_text(CAST(scalekit_pending AS jsonb)) AS e ORDER BY 1 LOOP\n"
        f"    UPDATE {parent} SET {col} = {col} + scalekit_change WHERE {target} = scalekit_key;\n"
        "END LOOP;"
    )
    sibling_keys = " UNION ".join(
        f"SELECT CAST(e.key AS {key_type}) FROM jsonb_each_text(CAST(COALESCE(NULLIF("
        f"current_setting('{pending_setting(c)}', true), ''), '{{}}') AS jsonb)) AS e"
        for c in group
    )
    lock_siblings = (
        f"FOR scalekit_key IN {sibling_keys} ORDER BY 1 LOOP\n"
        f"    PERFORM 1 FROM {parent} WHERE {target} = scalekit_key FOR NO KEY UPDATE;\n"
        "END LOOP;\n"
        if len(group) > 1
        else ""
    )
    branches = []
    for event, _refs, sources in EVENTS.values():
        locked = " UNION ".join(
            f"SELECT k FROM ({_nonzero(c, alias, sources)}) AS n" for c in group
        )
        compute = (
            f"SELECT jsonb_object_agg(s.k, s.d) INTO scalekit_delta\n"
            f"    FROM ({_nonzero(counter, alias, sources)}) AS s;"
        )
        if len(sources) == 1:  # INSERT or DELETE: rows of one sign, no netting needed
            ((rows, sign),) = sources
            cond = filter_sql(counter, alias, "r")
            compute = (
                "SELECT jsonb_object_agg(s.k, s.d) INTO scalekit_delta FROM (\n"
                f"    SELECT r.{fk} AS k, {sign} * count(*) AS d FROM {rows} AS r\n"
                f"    WHERE r.{fk} IS NOT NULL AND COALESCE(({cond}), FALSE)\n"
                f"    GROUP BY r.{fk}) AS s;"
            )
        branches.append(
            f"IF TG_OP = '{event}' THEN\n"
            "    " + compute.replace("\n", "\n    ") + "\n"
            "    IF scalekit_delta IS NULL THEN RETURN NULL; END IF;\n"
            f"    IF current_setting('{fired}', true) = '1' THEN\n"
            "        -- this statement's row events ran already (constraints IMMEDIATE)\n"
            f"        scalekit_set := set_config('{fired}', '', true);\n"
            f"        PERFORM 1 FROM {parent} WHERE {target} IN ({locked})\n"
            f"            ORDER BY {target} FOR NO KEY UPDATE;\n"
            "        scalekit_pending := CAST(scalekit_delta AS text);\n"
            "        " + apply_loop.replace("\n", "\n        ") + "\n"
            "        RETURN NULL;\n"
            "    END IF;\n"
            "END IF;"
        )
    declare = (
        "DECLARE\n    scalekit_delta jsonb;\n    scalekit_pending text;\n    scalekit_set text;\n"
        f"    scalekit_key {key_type};\n    scalekit_change bigint;\n"
    )
    accumulate = (
        f"CREATE OR REPLACE FUNCTION {qn(fn)}() RETURNS trigger LANGUAGE plpgsql AS $scalekit$\n"
        + declare
        + "BEGIN\n    "
        + "\n".join(branches).replace("\n", "\n    ")
        + "\n"
        f"    scalekit_pending := NULLIF(current_setting('{setting}', true), '');\n"
        "    IF scalekit_pending IS NOT NULL THEN\n"
        "        SELECT jsonb_object_agg(m.key, m.total) INTO scalekit_delta FROM (\n"
        "            SELECT u.key, SUM(CAST(u.value AS bigint)) AS total FROM (\n"
        "                SELECT * FROM jsonb_each_text(CAST(scalekit_pending AS jsonb))\n"
        "                UNION ALL SELECT * FROM jsonb_each_text(scalekit_delta)) AS u\n"
        "            GROUP BY u.key HAVING SUM(CAST(u.value AS bigint)) <> 0) AS m;\n"
        "    END IF;\n"
        "    scalekit_set := set_config(\n"
        f"        '{setting}', COALESCE(CAST(scalekit_delta AS text), ''), true);\n"
        "    RETURN NULL;\nEND\n$scalekit$"
    )
    apply = (
        f"CREATE OR REPLACE FUNCTION {qn(apply_fn)}() RETURNS trigger LANGUAGE plpgsql "
        "AS $scalekit$\n" + declare + "BEGIN\n"
        f"    scalekit_set := set_config('{fired}', '1', true);\n"
        f"    scalekit_pending := NULLIF(current_setting('{setting}', true), '');\n"
        "    IF scalekit_pending IS NULL THEN RETURN NULL; END IF;\n"
        "    "
        + lock_siblings.replace("\n", "\n    ")
        + f"scalekit_set := set_config('{setting}', '', true);\n"
        "    " + apply_loop.replace("\n", "\n    ") + "\n"
        "    RETURN NULL;\nEND\n$scalekit$"
    )

    def counted(row: str) -> str:
        return f"({row}.{fk} IS NOT NULL AND COALESCE(({filter_sql(counter, alias, row)}), FALSE))"

    when = {
        "i": counted("NEW"),
        "d": counted("OLD"),
        "u": f"OLD.{fk} IS DISTINCT FROM NEW.{fk} "
        f"OR {counted('OLD')} IS DISTINCT FROM {counted('NEW')}",
    }
    statements = [accumulate, apply]
    for suffix, (event, refs, _sources) in EVENTS.items():
        name = qn(f"{trigger}_{suffix}")
        deferred = qn(f"{trigger}_c{suffix}")
        statements += [
            f"DROP TRIGGER IF EXISTS {name} ON {child}",
            f"CREATE TRIGGER {name} AFTER {event} ON {child} REFERENCING {refs} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {qn(fn)}()",
            f"DROP TRIGGER IF EXISTS {deferred} ON {child}",
            f"CREATE CONSTRAINT TRIGGER {deferred} AFTER {event} ON {child} "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({when[suffix]}) "
            f"EXECUTE FUNCTION {qn(apply_fn)}()",
        ]
    return statements


def _apply_sql(counter: Counter, group: list[Counter], alias: str, sources: Any) -> str:
    """The PL/pgSQL that applies one statement's rows (``sources``) to ``counter``."""
    assert counter.fk is not None
    qn = connections[alias].ops.quote_name
    deltas = _nonzero(counter, alias, sources)
    if counter.mode == "deferred":
        from django_scalekit.denorm.deferred import TABLE

        label = counter.label.replace("'", "''")
        return (
            f"INSERT INTO {TABLE} (counter, parent_key, delta)\n"
            f"    SELECT '{label}', CAST(s.k AS varchar(255)), s.d FROM ({deltas}) AS s;"
        )
    parent = qn(counter.parent._meta.db_table)
    col = qn(counter.column)
    target = qn(column_of(counter.parent, counter.target))
    locked = " UNION ".join(f"SELECT k FROM ({_nonzero(c, alias, sources)}) AS n" for c in group)
    general = (
        f"PERFORM 1 FROM {parent} WHERE {target} IN ({locked})\n"
        f"    ORDER BY {target} FOR NO KEY UPDATE;\n"
        f"UPDATE {parent} AS p SET {col} = p.{col} + s.d\n"
        f"    FROM ({deltas}) AS s WHERE p.{target} = s.k;"
    )
    if len(sources) != 1:
        return general  # an UPDATE may move a row between two parents
    ((rows, sign),) = sources
    fk = qn(str(counter.fk.column))
    cond = filter_sql(counter, alias, "r")
    return (
        f"IF NOT EXISTS (SELECT 1 FROM {rows} OFFSET 1) THEN\n"
        f"    UPDATE {parent} SET {col} = {col} + {sign} WHERE {target} = (\n"
        f"        SELECT r.{fk} FROM {rows} AS r WHERE COALESCE(({cond}), FALSE));\n"
        "    RETURN NULL;\n"
        "END IF;\n" + general
    )


def drop_sql(counter: Counter, alias: str) -> list[str]:
    fn, _trigger = names(counter)
    return _drop(counter, alias, list(EVENTS), [fn]) + _drop_commit_sql(counter, alias)


def installed(counter: Counter, alias: str) -> bool:
    _fn, trigger = names(counter)
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s", [f"{trigger}_i"])
        return cursor.fetchone() is not None


class CounterTrigger(Operation):
    """Migration operation: install (or update, or drop) the triggers of one counter.

    ``CounterTrigger("product", "review_count")`` installs the triggers when the
    field is in trigger, commit or deferred mode in the migrated state and drops
    them otherwise; add it again after changing the relation, the filter or the mode.
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
        if new is not None and new.mode == "deferred":
            statements = install_sql(new, conn.alias)
        elif new is not None and new.mode in ("trigger", "commit"):
            siblings = [
                c
                for c in trigger_counters(new.parent, new.mode)
                if c.child is new.child and c.label != new.label
            ]
            statements = install_sql(new, conn.alias, siblings)
            for sibling in siblings:  # their lock sets now include this counter's
                statements += install_sql(sibling, conn.alias, [new, *siblings])
        elif old is not None and old.mode in TRIGGER_MODES:
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
        return f"Install the counter triggers of {self.model_name}.{self.field_name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"counter_trigger_{self.model_name.lower()}_{self.field_name}"
