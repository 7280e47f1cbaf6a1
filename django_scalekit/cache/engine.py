"""The read path: look up, or run the query once and store it if nothing changed meanwhile.

Order of a miss, and why:

1. read the per-table version tokens (and take a short lease) *before* the query;
2. run the query;
3. store the result with those tokens, only if the counters still hold them.

A writer bumps the tokens *after* its commit. So either the bump happened before
step 1 (the query sees the commit), or after it (the store is refused, or, on
backends without an atomic compare-and-set, the value carries the old token and is
never served). Reading the tokens after the query, or bumping before the commit,
would let an old row be stored as current.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import connections

from django_scalekit.cache import replicas, stores
from django_scalekit.cache.conf import settings as conf

log = logging.getLogger("django_scalekit.cache")

#: set by ``invalidation.connect_signals()``; without the write-path receivers
#: nothing may be cached, since no write would invalidate it
receivers_connected = False

T = TypeVar("T")


@dataclass
class Stats:
    """Process-wide counters: ``django_scalekit.cache.stats.as_dict()`` for monitoring."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    #: stores refused because a version changed during the query (the race, handled)
    store_conflicts: int = 0
    #: reads that skipped the cache (transaction state, disabled, cache server down)
    bypasses: int = 0
    #: replica reads not stored because the replica could not be shown to be caught up
    replica_not_stored: int = 0
    #: payloads that could not be unpickled (treated as misses)
    bad_payloads: int = 0
    #: errors talking to the cache server (reads then go to the database)
    errors: int = 0
    #: version bumps that could not be written when they happened (retried until they are)
    bump_failures: int = 0
    #: times this process made every stored value invalid after a cache server outage
    epoch_bumps: int = 0

    def add(self, name: str) -> None:
        with _stats_lock:  # exact under threads; += on an attribute is not atomic
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, int]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["pending_bumps"] = len(_pending)
        return data

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, 0)


_stats_lock = threading.Lock()
stats = Stats()

# Version bumps that could not be written: version key -> token. Every cache call of
# this process writes them first, and a background thread retries them.
_pending: dict[str, str] = {}
_lock = threading.Lock()
_down_until = 0.0
# Set by any failed cache call: once the server answers again, this process bumps the
# epoch that every stored value depends on. A writer that could not bump and died
# meanwhile thus leaves no stale value behind, as long as any process saw the outage.
_failures = 0  # failed cache calls so far
_epoch_written = 0  # the value of _failures when the epoch was last bumped
_retry_thread: threading.Thread | None = None
_store: stores.Store | None = None
_known_tables: frozenset[str] | None = None
_schema: str | None = None
_learned: dict[str, frozenset[str]] = {}

_IDENTIFIER = re.compile(r'["`]([^"`]+)["`]')


def _reset(**kwargs: Any) -> None:
    global _store, _known_tables, _schema
    if kwargs.get("setting") in {"CACHES", "SCALEKIT_CACHE", "DATABASES", "INSTALLED_APPS"}:
        _store, _known_tables, _schema = None, None, None


setting_changed.connect(_reset, dispatch_uid="django_scalekit.cache.engine")


def get_store() -> stores.Store:
    global _store
    if _store is None:  # reset when CACHES or SCALEKIT_CACHE change
        _store = stores.store_for(conf.CACHE, conf.THREAD_CONNECTIONS)
    return _store


def known_tables() -> frozenset[str]:
    global _known_tables
    if _known_tables is None:
        _known_tables = frozenset(
            m._meta.db_table for m in apps.get_models(include_auto_created=True)
        )
    return _known_tables


def tables_in(sql: str) -> frozenset[str]:
    """The known tables a SQL string names (quoted identifiers only, as the ORM writes)."""
    return frozenset(_IDENTIFIER.findall(sql)) & known_tables()


def version_key(primary: str, table: str) -> str:
    return f"{conf.KEY_PREFIX}:v:{primary}:{table}"


def value_key(alias: str, key_digest: str) -> str:
    """Where a value lives: the models' schema is part of it, so a deploy that changes
    a table or a default ordering never reads values stored by the old code."""
    return f"{conf.KEY_PREFIX}:q:{alias}:{schema()}:{key_digest}"


def schema() -> str:
    global _schema
    if _schema is None:
        parts = [
            (
                m._meta.label,
                m._meta.db_table,
                repr(m._meta.ordering),
                [(f.attname, f.column, type(f).__qualname__) for f in m._meta.concrete_fields],
            )
            for m in apps.get_models(include_auto_created=True)
        ]
        _schema = digest(repr(sorted(parts)).encode())[:12]
    return _schema


def epoch_key() -> str:
    return f"{conf.KEY_PREFIX}:epoch"


def new_token(lsn: int) -> str:
    return f"{secrets.token_hex(8)}:{lsn}"


def token_lsn(token: str) -> int:
    try:
        return int(token.rpartition(":")[2])
    except ValueError:
        return replicas.UNKNOWN_LSN


# -- cache server health -------------------------------------------------------------


def failed(exc: BaseException, doing: str) -> None:
    global _down_until, _failures
    stats.add("errors")
    with _lock:
        _failures += 1
        _down_until = time.monotonic() + float(conf.FAILURE_BACKOFF)
    _ensure_retry()
    log.warning("django_scalekit.cache: %s failed (%s); using the database", doing, exc)


def _ensure_retry() -> None:
    """A background thread writes what is owed as soon as the server answers."""
    global _retry_thread
    with _lock:
        if _retry_thread is None:
            _retry_thread = threading.Thread(
                target=_retry_loop, name="scalekit-cache-retry", daemon=True
            )
            _retry_thread.start()


def _owed() -> bool:
    """True while a bump or the epoch is waiting to be written."""
    return bool(_pending) or _failures != _epoch_written


def usable() -> bool:
    """True when the cache may be used: server not in back-off, no unwritten bump."""
    if time.monotonic() < _down_until:
        return False
    return not _owed() or flush_pending()


def flush_pending() -> bool:
    """Write the bumps that failed earlier (and the epoch after an outage), in one call.

    Until they are written, nothing is served.
    """
    global _epoch_written
    with _lock:
        todo = dict(_pending)
        failures = _failures
    epoch = failures != _epoch_written
    if epoch:
        todo[epoch_key()] = new_token(0)
    if not todo:
        return True
    try:
        get_store().bump(list(todo), list(todo.values()), int(conf.VERSION_TIMEOUT))
    except Exception as exc:
        failed(exc, "writing pending version bumps")
        return False
    with _lock:
        for key, token in todo.items():
            if _pending.get(key) == token:
                del _pending[key]
        _epoch_written = max(_epoch_written, failures)
    if epoch:
        stats.add("epoch_bumps")
        log.warning(
            "django_scalekit.cache: the cache server is back; values stored before it "
            "failed are no longer served"
        )
    if len(todo) > epoch:
        log.warning("django_scalekit.cache: wrote %d pending version bumps", len(todo) - epoch)
    return not _owed()


def _retry_loop() -> None:
    global _retry_thread
    while True:
        time.sleep(max(0.05, float(conf.FAILURE_BACKOFF)))
        if time.monotonic() >= _down_until and flush_pending():
            with _lock:
                if not _owed():
                    _retry_thread = None
                    return


def bump(primary: str, tables: Iterable[str], lsn: int) -> None:
    """Give each table a new version token; on failure keep it pending and retry."""
    vkeys = [version_key(primary, t) for t in sorted(set(tables))]
    if not vkeys:
        return
    tokens = [new_token(lsn) for _ in vkeys]
    if time.monotonic() >= _down_until and (not _owed() or flush_pending()):
        try:
            get_store().bump(vkeys, tokens, int(conf.VERSION_TIMEOUT))
            return
        except Exception as exc:
            failed(exc, "a version bump")
    stats.add("bump_failures")
    with _lock:
        first = not _pending
        _pending.update(zip(vkeys, tokens, strict=True))
    _ensure_retry()
    # one ERROR per outage, not one per write; the counter counts every failure
    log.log(
        logging.ERROR if first else logging.INFO,
        "django_scalekit.cache: could not bump %s; cached reads are off in this process "
        "until the bump is written",
        ", ".join(vkeys),
    )


# -- transaction state -----------------------------------------------------------------


class Bump:
    """An on-commit callback bumping the tables a transaction wrote.

    While it sits in ``connection.run_on_commit`` its tables count as written by the
    current transaction; Django drops it on rollback (and on rollback of the savepoint
    it was registered in), which is exactly when the write is undone.
    """

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.tables: set[str] = set()

    def __call__(self) -> None:
        from django_scalekit.cache.invalidation import bump_now

        bump_now(self.alias, self.tables)


def atomic_connections() -> list[Any]:
    """This thread's connections inside an atomic block (none: plain autocommit)."""
    return [c for c in connections.all(initialized_only=True) if c.in_atomic_block]


def written_tables(atomic: list[Any]) -> set[str]:
    """Tables written by the open transactions of the ``atomic`` connections."""
    out: set[str] = set()
    for connection in atomic:
        for _sids, func, *_ in connection.run_on_commit:
            if isinstance(func, Bump):
                out |= func.tables
    return out


_SNAPSHOT_LEVELS = {"REPEATABLE_READ", "SERIALIZABLE", 2, 3}


def snapshot_transaction(alias: str | None, atomic: list[Any]) -> bool:
    """True inside a transaction whose reads may be older than the latest commit.

    On PostgreSQL that is REPEATABLE READ or SERIALIZABLE (set through
    ``OPTIONS["isolation_level"]`` or the driver connection); on other databases any
    transaction, whose snapshot rules we do not rely on. ``atomic``: the connections
    in atomic blocks; ``alias``: only that one counts.
    """
    for connection in atomic:
        if alias is not None and connection.alias != alias:
            continue
        if connection.vendor != "postgresql":
            return True
        level = getattr(connection.connection, "isolation_level", None)
        if getattr(level, "name", level) in _SNAPSHOT_LEVELS:
            return True
    return False


# -- the read path ---------------------------------------------------------------------


class _Recorder:
    """An execute_wrapper noting every table the query actually touched."""

    def __init__(self) -> None:
        self.tables: set[str] = set()

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.tables |= tables_in(sql)
        return execute(sql, params, many, context)


def digest(material: bytes) -> str:
    return hashlib.blake2b(material, digest_size=16).hexdigest()


def decode(payload: bytes) -> tuple[bool, Any]:
    try:
        return True, pickle.loads(payload)
    except Exception as exc:
        stats.add("bad_payloads")
        log.info("django_scalekit.cache: unreadable cached value (%s); treated as a miss", exc)
        return False, None


def bypass(compute: Callable[[], T]) -> T:
    stats.add("bypasses")
    return compute()


def fetch(
    material: bytes,
    alias: str,
    tables: Callable[[], frozenset[str] | None],
    compute: Callable[[], T],
    timeout: int | None = None,
    record: bool = True,
    refresh: bool = False,
) -> T:
    """``compute()``'s result, from the cache when its tables have not changed since.

    ``material`` identifies the result (it is hashed into the key). ``tables()`` gives
    the tables it depends on (``None``: do not cache); it is called on misses only,
    because a hit finds the version counters to check in the stored value itself.
    With ``record`` the queries run on ``alias`` are watched, and a result that
    touched other tables is not stored (they are remembered for the next miss).
    ``refresh`` computes and stores a new value even when the stored one is valid.
    """
    if not conf.ENABLED:
        return compute()
    if not receivers_connected:
        raise ImproperlyConfigured(
            "django_scalekit.cache is not switched on, so writes would not invalidate "
            "cached values. Add 'django_scalekit' to INSTALLED_APPS and define "
            "SCALEKIT_CACHE in settings (SCALEKIT_CACHE = {} keeps the defaults)."
        )
    key_digest = digest(material)
    deps: frozenset[str] | None = None

    def dependencies() -> frozenset[str] | None:
        nonlocal deps
        if deps is None:
            found = tables()
            if found is None:
                return None
            deps = found | _learned.get(key_digest, frozenset())
        return deps

    atomic = atomic_connections()
    if atomic:
        if snapshot_transaction(alias if record else None, atomic):
            return bypass(compute)
        written = written_tables(atomic)
        if written:
            needed = dependencies()
            if needed is None or needed & written:
                return bypass(compute)
    if not usable():
        return bypass(compute)
    key = value_key(alias, key_digest)
    store = get_store()

    try:
        data = None if refresh else store.get(key)
    except Exception as exc:
        failed(exc, "a cache read")
        return bypass(compute)
    if data is not None:
        ok, value = decode(data)
        if ok:
            stats.add("hits")
            return value  # type: ignore[no-any-return]
    stats.add("misses")
    needed = dependencies()
    if needed is None:
        return compute()
    primary = replicas.primary_of(alias)
    vkeys = [version_key(primary, t) for t in sorted(needed)]
    if not vkeys or any(" " in k or "\n" in k for k in vkeys):
        return bypass(compute)
    vkeys.append(epoch_key())

    lease, lease_token = key + ":lease", secrets.token_hex(8)
    lease_seconds = float(conf.LEASE_TIMEOUT)
    deadline = time.monotonic() + lease_seconds + 0.1
    delay = 0.002
    try:
        waited = False
        while True:
            acquired, versions = store.begin(lease, lease_token, lease_seconds, vkeys)
            if acquired and waited:
                # the previous holder may have stored and released just after our last look
                data = store.get(key)
                if data is not None:
                    ok, value = decode(data)
                    if ok:
                        store.release(lease, lease_token)
                        stats.add("hits")
                        return value  # type: ignore[no-any-return]
            if acquired or refresh or time.monotonic() > deadline:
                break  # a refresh does not wait: whoever holds the lease stores a new value
            waited = True
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
            data = store.get(key)
            if data is not None:
                ok, value = decode(data)
                if ok:
                    stats.add("hits")
                    return value  # type: ignore[no-any-return]
        missing = [i for i, v in enumerate(versions) if v is None]
        if missing:
            lsn = replicas.write_position(primary) if replicas.has_replicas(primary) else 0
            created = store.create(
                [vkeys[i] for i in missing],
                [new_token(lsn) for _ in missing],
                int(conf.VERSION_TIMEOUT),
            )
            for i, token in zip(missing, created, strict=True):
                versions[i] = token
    except Exception as exc:
        failed(exc, "a cache lease")
        return bypass(compute)
    tokens = [str(v) for v in versions]

    try:
        storable = acquired
        if (
            storable
            and alias != primary
            and not replicas.caught_up(alias, max(token_lsn(t) for t in tokens))
        ):
            stats.add("replica_not_stored")
            storable = False
        if record:
            recorder = _Recorder()
            with connections[alias].execute_wrapper(recorder):
                value = compute()
            extra = frozenset(recorder.tables) - needed
            if extra:
                if len(_learned) > 10_000:
                    _learned.clear()
                _learned[key_digest] = needed | extra
                storable = False
        else:
            value = compute()
        if storable:
            _store_value(store, key, vkeys, tokens, value, timeout)
    finally:
        if acquired:
            try:
                store.release(lease, lease_token)
            except Exception as exc:
                failed(exc, "releasing a cache lease")
    return value


async def aget(material: bytes, alias: str, record: bool = True) -> tuple[bool, Any]:
    """``(True, value)`` for a valid stored value, read without blocking the event loop.

    Only the hit is asynchronous: on ``(False, None)`` the caller runs the sync
    ``fetch()`` (lease, query, store) in Django's sync thread.
    """
    if (
        not conf.ENABLED
        or not receivers_connected
        or time.monotonic() < _down_until
        or _owed()
        or atomic_connections()  # the sync path decides what a transaction may read
    ):
        return False, None
    key = value_key(alias, digest(material))
    try:
        data = await get_store().aget(key)
    except Exception as exc:
        failed(exc, "a cache read")
        return False, None
    if data is None:
        return False, None
    ok, value = decode(data)
    if ok:
        stats.add("hits")
    return ok, value


def _store_value(
    store: stores.Store,
    key: str,
    vkeys: list[str],
    tokens: list[str],
    value: Any,
    timeout: int | None,
) -> None:
    try:
        payload = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        log.info("django_scalekit.cache: result cannot be pickled (%s); not stored", exc)
        return
    header = " ".join(
        [stores.FORMAT.decode(), *(f"{k} {t}" for k, t in zip(vkeys, tokens, strict=True))]
    )
    data = header.encode() + b"\n" + payload
    try:
        stored = store.put(key, data, int(timeout or conf.TIMEOUT), vkeys, tokens)
    except Exception as exc:
        failed(exc, "a cache write")
        return
    if stored:
        stats.add("stores")
    else:
        stats.add("store_conflicts")
