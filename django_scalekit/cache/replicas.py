"""Which alias is a replica of which primary, and how far a replica has replayed.

A read served by a replica may be older than the last committed write. The cache
stores such a read only when it can prove the replica had replayed every bump of the
tables involved: each bump records the primary's WAL insert position after the
commit, and before querying a replica the cache checks its replay position.

By default an alias is a replica of the alias named by its ``TEST["MIRROR"]`` (Django's
own way of saying "this database is a copy of that one"). A router that knows better
calls ``set_primary_resolver()`` once, e.g. in its ``AppConfig.ready()``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connections

__all__ = ["caught_up", "primary_of", "set_caught_up_check", "set_primary_resolver"]

# Larger than any real WAL position: "unknown", so no replica read can be proven fresh.
UNKNOWN_LSN = 2**64 - 1

_resolver: Callable[[str], str | None] | None = None
_caught_up_check: Callable[[str, int], bool | None] | None = None


def set_primary_resolver(resolver: Callable[[str], str | None] | None) -> None:
    """Tell the cache which primary each alias replicates (``None``: it is a primary).

    Pass ``None`` to go back to the default, ``DATABASES[alias]["TEST"]["MIRROR"]``.
    """
    global _resolver
    _resolver = resolver


def set_caught_up_check(check: Callable[[str, int], bool | None] | None) -> None:
    """Let a router answer "has replica ``alias`` replayed WAL position ``lsn``?".

    ``check(alias, lsn)`` returns ``True``/``False``, or ``None`` to let the cache ask the
    replica itself (``pg_last_wal_replay_lsn()``). ``lsn`` is an int
    (``parse_lsn("16/B374D848")``). Answer ``True`` only when it is certain.
    """
    global _caught_up_check
    _caught_up_check = check


def caught_up(alias: str, lsn: int) -> bool:
    """True when replica ``alias`` has provably replayed everything up to ``lsn``."""
    if lsn >= UNKNOWN_LSN:
        return False
    if _caught_up_check is not None:
        answer = _caught_up_check(alias, lsn)
        if answer is not None:
            return answer
    replayed = replay_position(alias)
    return replayed is not None and replayed >= lsn


def primary_of(alias: str) -> str:
    """The alias whose writes ``alias`` serves: ``alias`` itself for a primary."""
    if _resolver is not None:
        return _resolver(alias) or alias
    settings_dict = connections.settings.get(alias) or {}
    mirror = (settings_dict.get("TEST") or {}).get("MIRROR")
    return str(mirror) if mirror else alias


def has_replicas(primary: str) -> bool:
    return any(a != primary and primary_of(a) == primary for a in connections.settings)


def parse_lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _scalar(alias: str, sql: str) -> str | None:
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return None
    # The driver's own cursor: a bookkeeping probe, not one of the application's
    # queries, so it is neither logged, nor counted, nor passed to execute wrappers.
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return None if row is None or row[0] is None else str(row[0])


def write_position(primary: str) -> int:
    """A WAL position at or after every commit that has returned on ``primary``."""
    try:
        text = _scalar(primary, "SELECT pg_current_wal_insert_lsn()")
    except Exception:
        return UNKNOWN_LSN
    return UNKNOWN_LSN if text is None else parse_lsn(text)


def replay_position(alias: str) -> int | None:
    """How far replica ``alias`` has replayed; ``None`` when that cannot be told."""
    try:
        text = _scalar(alias, "SELECT pg_last_wal_replay_lsn()")
    except Exception:
        return None
    return None if text is None else parse_lsn(text)
