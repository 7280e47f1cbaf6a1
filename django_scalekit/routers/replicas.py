"""What the process knows about each replica: replay position, lag, health.

One ``Replica`` per alias, shared by all threads. Its numbers are refreshed by
one query on the replica at most every ``POLL_INTERVAL_MS`` (by whichever
thread reads first after the interval), never per read. While one thread
polls, the others keep its last answer for ``POLL_GRACE`` and then leave that
replica alone, so a blackholed replica costs one connect timeout per cool-down
window, not one per thread or request.

WAL positions only grow, so a stale replay position is still a safe answer to
"has this replica replayed the client's last write?".
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import setting_changed
from django.db import DatabaseError, connections

from django_scalekit.routers import conf

__all__ = ["Config", "Replica", "config", "replica", "reset"]

# Receive and replay positions of the standby, and how far behind replay is in
# time (0 when it has replayed everything it received: an idle primary writes
# nothing, and the last replayed transaction then only looks old).
POLL_SQL = (
    "SELECT pg_is_in_recovery(), "
    "pg_last_wal_replay_lsn() - '0/0'::pg_lsn, "
    "pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn(), "
    "CASE WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0 "
    "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
)
PRIMARY_LSN_SQL = "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
MAX_COOLDOWN_FACTOR = 16
# A poll normally takes well under a millisecond. While another thread's poll
# is younger than this, its last answer stands; after that the replica is
# treated as down (it is probably hanging in a connect).
POLL_GRACE = 0.05


@dataclass(frozen=True, slots=True)
class Config:
    """``SCALEKIT_ROUTER``, compiled for the hot path."""

    primary: str
    replicas: tuple[str, ...]
    weights: tuple[int, ...]
    max_lag_seconds: float
    max_lag_bytes: float
    cooldown: float
    sticky: bool
    sticky_seconds: float
    poll_interval: float
    celery_mode: str
    aliases: frozenset[str] = field(default=frozenset())


_config: Config | None = None


def config() -> Config:
    global _config
    if _config is None:
        weights = conf.replica_weights()
        primary = conf.settings.PRIMARY
        _config = Config(
            primary=primary,
            replicas=tuple(weights),
            weights=tuple(weights.values()),
            max_lag_seconds=float(conf.settings.MAX_LAG_SECONDS),
            max_lag_bytes=float(conf.settings.MAX_LAG_BYTES),
            cooldown=float(conf.settings.COOLDOWN_SECONDS),
            sticky=bool(conf.settings.STICKY),
            sticky_seconds=float(conf.settings.STICKY_SECONDS),
            poll_interval=float(conf.settings.POLL_INTERVAL_MS) / 1000,
            celery_mode=str(conf.settings.CELERY_MODE),
            aliases=frozenset([primary, *weights]),
        )
    return _config


@dataclass(eq=False)
class Replica:
    """Health and position of one replica, as last polled."""

    alias: str
    replay_lsn: int | None = None
    lag_bytes: int = 0
    lag_seconds: float = 0.0
    lagging: bool = False
    next_poll: float = 0.0  # monotonic
    # the router's fast path: fit to serve without further checks until then
    ok_until: float = 0.0  # monotonic
    down_until: float = 0.0  # monotonic
    failures: int = 0
    polls: int = 0
    polling: bool = False
    poll_started: float = 0.0  # monotonic
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def usable(self, now: float, min_lsn: int, cfg: Config, may_poll: bool = True) -> bool:
        """May a read that needs ``min_lsn`` replayed go here now?"""
        if may_poll and now >= self.next_poll:
            self.poll(cfg)
            now = time.monotonic()
        if self.lagging or now < self.down_until:
            return False
        if self.polling and now - self.poll_started > POLL_GRACE:
            return False
        if min_lsn:
            return self.replay_lsn is not None and self.replay_lsn >= min_lsn
        return True

    def poll(self, cfg: Config) -> None:
        """Refresh position and lag with one query; mark down on failure."""
        if not self.lock.acquire(blocking=False):
            return  # another thread is polling: its answer will do
        self.poll_started = time.monotonic()
        self.polling = True
        try:
            conn = connections[self.alias]
            if conn.in_atomic_block:  # never query inside someone's transaction
                self.next_poll = time.monotonic() + cfg.poll_interval
                return  # ok_until stays as it was: no new information
            try:
                row = _query(conn, POLL_SQL) if conn.vendor == "postgresql" else None
            except DatabaseError:
                self.mark_down(cfg)
                return
            self._record(row, cfg)
        finally:
            self.polling = False
            self.lock.release()

    def _record(self, row: tuple[Any, ...] | None, cfg: Config) -> None:
        self.polls += 1
        if row is not None:
            in_recovery, replay, lag_bytes, lag_seconds = row
            self.replay_lsn = int(replay) if in_recovery and replay is not None else None
            self.lag_bytes = int(lag_bytes or 0)
            self.lag_seconds = float(lag_seconds or 0)
        self.lagging = self.lag_bytes > cfg.max_lag_bytes or (
            self.lag_bytes > 0 and self.lag_seconds > cfg.max_lag_seconds
        )
        self.failures = 0
        self.down_until = 0.0
        self.next_poll = time.monotonic() + cfg.poll_interval
        self.ok_until = 0.0 if self.lagging else self.next_poll

    def mark_down(self, cfg: Config) -> None:
        """Leave this replica out for a cool-down that doubles with each failure."""
        self.failures += 1
        factor = min(2 ** (self.failures - 1), MAX_COOLDOWN_FACTOR)
        self.down_until = time.monotonic() + cfg.cooldown * factor
        self.next_poll = self.down_until
        self.ok_until = 0.0
        close_quietly(self.alias)

    @property
    def down(self) -> bool:
        return time.monotonic() < self.down_until


def _query(conn: Any, sql: str) -> tuple[Any, ...] | None:
    """One query on the raw connection: not logged as the application's query."""
    conn.ensure_connection()
    with conn.wrap_database_errors, conn.connection.cursor() as cursor:
        cursor.execute(sql)
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row


def close_quietly(alias: str) -> None:
    """Drop this thread's connection to ``alias`` so the next use reconnects."""
    conn = connections[alias]
    if conn.in_atomic_block:
        return
    try:
        conn.close()
    except Exception:  # a broken connection may fail to close; it is gone either way
        conn.connection = None


def primary_lsn(alias: str) -> int | None:
    """The primary's current WAL position, or None where there is none."""
    conn = connections[alias]
    if conn.vendor != "postgresql":
        return None
    try:
        row = _query(conn, PRIMARY_LSN_SQL)
    except DatabaseError:
        return None
    return int(row[0]) if row and row[0] is not None else None


_replicas: dict[str, Replica] = {}
_replicas_lock = threading.Lock()


def replica(alias: str) -> Replica:
    try:
        return _replicas[alias]
    except KeyError:
        with _replicas_lock:
            return _replicas.setdefault(alias, Replica(alias))


def caught_up(min_lsn: int) -> bool:
    """Have all usable replicas replayed ``min_lsn`` (as last polled)?"""
    cfg = config()
    now = time.monotonic()
    states = [replica(a) for a in cfg.replicas]
    live = [r for r in states if not r.lagging and now >= r.down_until]
    return bool(live) and all(r.replay_lsn is not None and r.replay_lsn >= min_lsn for r in live)


def reset() -> None:
    """Forget compiled settings and every replica's health (settings changed, tests)."""
    global _config
    _config = None
    with _replicas_lock:
        _replicas.clear()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"SCALEKIT_ROUTER", "DATABASES"}:
        reset()


setting_changed.connect(_setting_changed, dispatch_uid="scalekit_router_replicas")
