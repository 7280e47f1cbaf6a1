"""``PrimaryReplicaRouter``: the hot path, and the retry of a read a replica failed.

A plain read costs two ``ContextVar`` reads, one thread-local dict of this
thread's connections (``connections[alias]`` is ten times slower) and a few
comparisons against the replica's last poll.
The replica's position and health come from ``replicas``, refreshed at most
every ``POLL_INTERVAL_MS``.
"""

from __future__ import annotations

import importlib.util
import random
import threading
import time
from asyncio import _get_running_loop
from collections.abc import Callable
from typing import Any

from django.core.signals import request_started, setting_changed
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from django_scalekit.routers import replicas
from django_scalekit.routers.replicas import Config, config, replica
from django_scalekit.routers.state import State, _forced, _state, current_state, reset_state

__all__ = ["PrimaryReplicaRouter", "may_use_replica", "read_alias"]

# SQLSTATEs after which a read is retried elsewhere: connection errors, a
# replica shutting down, and hot-standby conflicts ("conflict with recovery").
RETRY_SQLSTATES = frozenset({"40001", "57P01", "57P02", "57P03"})

# Set in an execute wrapper's context when the query was served by another alias.
RETRIED_ON = "scalekit_retried_on"

_local = threading.local()


def _conn(alias: str) -> BaseDatabaseWrapper:
    """This thread's connection object for ``alias``, without ``connections[...]``."""
    try:
        return _local.conns[alias]  # type: ignore[no-any-return]
    except AttributeError:
        _local.conns = {}
    except KeyError:
        pass
    conn = _local.conns[alias] = connections[alias]
    return conn


def _ready(alias: str, cfg: Config) -> bool:
    """Connect to the replica now, where a failure can still be routed around."""
    conn = _conn(alias)
    raw = conn.connection
    if raw is None or getattr(raw, "closed", False):  # psycopg knows a broken connection
        try:
            if raw is not None:
                replicas.close_quietly(alias)
            conn.ensure_connection()
        except DatabaseError:
            replica(alias).mark_down(cfg)
            return False
    if _retry_elsewhere not in conn.execute_wrappers:
        conn.execute_wrappers.append(_retry_elsewhere)
    return True


def pick(cfg: Config, st: State) -> str:
    """The replica this request reads from, or the primary when none may serve it.

    Called from an event loop (``QuerySet.aiterator()`` asks for ``qs.db`` there)
    it decides from what is known, without polling or connecting: the query
    itself runs later in a worker thread with its own connection.
    """
    now = time.monotonic()
    io = _get_running_loop() is None
    chosen = st.replica
    if (
        chosen is not None
        and replica(chosen).usable(now, st.min_lsn, cfg, io)
        and (not io or _ready(chosen, cfg))
    ):
        return chosen
    aliases: list[str] = []
    weights: list[int] = []
    for alias, weight in zip(cfg.replicas, cfg.weights, strict=True):
        if alias != chosen and replica(alias).usable(now, st.min_lsn, cfg, io):
            aliases.append(alias)
            weights.append(weight)
    while aliases:
        index = random.choices(range(len(aliases)), weights)[0] if len(aliases) > 1 else 0
        alias = aliases.pop(index)
        weights.pop(index)
        if not io or _ready(alias, cfg):
            st.replica = alias
            return alias
    return cfg.primary


class PrimaryReplicaRouter:
    """Writes to ``PRIMARY``; reads to a replica when that cannot show stale rows.

    Reads go to the primary inside ``use_primary()``, while the primary is in
    ``atomic()``, after a write in the same request or task (when ``STICKY``),
    and when no replica has replayed the client's last write.
    """

    def __init__(self) -> None:
        request_started.connect(_request_started, dispatch_uid="scalekit_router_request")
        if importlib.util.find_spec("celery") is not None:
            from django_scalekit.routers.celery import connect_signals

            connect_signals()

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        cfg = replicas._config or config()
        if not cfg.replicas or _forced.get():
            return cfg.primary
        st = _state.get()
        if st is None:
            st = State()
            _state.set(st)
        elif st.pinned:
            return cfg.primary
        try:
            conns = _local.conns
            primary = conns[cfg.primary]
        except (AttributeError, KeyError):
            primary = _conn(cfg.primary)
            conns = _local.conns
        if primary.in_atomic_block:
            return cfg.primary
        if st.until and st.until > time.time():
            return cfg.primary
        alias = st.replica
        if alias is not None:
            # Fast path: this request's replica, polled recently and fit to serve.
            health = replicas._replicas.get(alias)
            if (
                health is not None
                and time.monotonic() < health.ok_until
                and (not st.min_lsn or (health.replay_lsn or 0) >= st.min_lsn)
                and alias in conns
                and conns[alias].connection is not None
            ):
                return alias
        return pick(cfg, st)

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        cfg = replicas._config or config()
        st = _state.get()
        if st is None:
            st = State()
            _state.set(st)
        st.wrote = st.dirty = True
        if cfg.sticky:
            st.pinned = True
        return cfg.primary

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        aliases = config().aliases
        if obj1._state.db in aliases and obj2._state.db in aliases:
            return True
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        cfg = config()
        if db == cfg.primary:
            return True
        if db in cfg.replicas:
            return False
        return None


def _request_started(**kwargs: Any) -> None:
    # A new request on a reused thread must not inherit the last one's pin.
    reset_state()


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, InterfaceError):
        return True
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in RETRY_SQLSTATES


def _retry_elsewhere(
    execute: Callable[..., Any],
    sql: str,
    params: Any,
    many: bool,
    context: dict[str, Any],
) -> Any:
    """Execute wrapper on replica connections: a failed read runs once elsewhere."""
    try:
        return execute(sql, params, many, context)
    except (OperationalError, InterfaceError) as exc:
        conn = context["connection"]
        cfg = config()
        if many or conn.alias not in cfg.replicas or conn.in_atomic_block or not _retryable(exc):
            raise
        replica(conn.alias).mark_down(cfg)
        target = pick(cfg, current_state())
        cursor = connections[target].cursor()
        cursor.execute(sql, params)
        # The caller fetches from the cursor it holds: hand it the rows from here.
        context["cursor"].cursor = cursor.cursor
        context[RETRIED_ON] = target
        return None


def read_alias(model: type[Model] | None = None) -> str:
    """The alias a read made here and now would use.

    For other parts of an application (a cache deciding whether a value may
    be stale) to ask the router without running the read; like a read, it may
    connect to or poll a replica when that is due. Without
    ``PrimaryReplicaRouter`` in ``DATABASE_ROUTERS`` it asks Django's router.
    """
    from django.db import DEFAULT_DB_ALIAS, router

    for candidate in router.routers:
        if isinstance(candidate, PrimaryReplicaRouter):
            return candidate.db_for_read(model or Model)
    if model is None:
        return DEFAULT_DB_ALIAS
    return router.db_for_read(model)


def may_use_replica(model: type[Model] | None = None) -> bool:
    """Would a read made here and now go to a replica (rows possibly behind the primary)?"""
    cfg = config()
    return read_alias(model) in cfg.replicas


def primary_of(alias: str) -> str | None:
    """The primary alias a configured replica serves; ``None`` for any other alias.

    Lets other parts (the cache deciding whether a read may be behind) share the
    router's view of which database copies which.
    """
    cfg = config()
    return cfg.primary if alias in cfg.replicas else None


def replayed_past(alias: str, lsn: int) -> bool | None:
    """``True`` when the router last saw replica ``alias`` replayed at or past ``lsn``.

    WAL positions only grow, so an old poll that is already past ``lsn`` is proof. ``None``
    otherwise (not a configured replica, or not known to be that far yet): the caller
    then asks the replica itself.
    """
    cfg = config()
    if alias not in cfg.replicas:
        return None
    position = replica(alias).replay_lsn
    return True if position is not None and position >= lsn else None


def forget_connections() -> None:
    """Drop the per-thread connection cache (connections were replaced)."""
    global _local
    _local = threading.local()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "DATABASES":
        forget_connections()


setting_changed.connect(_setting_changed, dispatch_uid="scalekit_router_connections")
