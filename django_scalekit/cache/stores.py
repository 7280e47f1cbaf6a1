"""Where values, version counters and leases live: Redis (Lua) or any Django cache.

A stored value is ``b"SK1 <vkey> <token> <vkey> <token> ...\\n" + payload``: the header
names the version counters the value was computed under. A value is served only if
every counter still holds the token in its header, so a value written late (after a
bump) is never served, whatever the backend.

``RedisStore`` does each step in one round trip with a Lua script, and stores only if
the counters are unchanged at that instant (atomic compare-and-set); a hit on a key
whose counters it already knows is a single ``MGET`` of the value and the counters. ``DjangoStore``
works on any Django cache backend: its compare-and-set is not atomic, and correctness
rests on the check at read time instead (a value stored after a bump carries the old
token and is never served).
"""

from __future__ import annotations

import inspect
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

from django.core.cache import caches

FORMAT = b"SK1"

HIT = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
local nl = string.find(v, '\\n', 1, true)
if not nl then return false end
local key = nil
local first = true
for word in string.gmatch(string.sub(v, 1, nl - 1), '%S+') do
  if first then
    first = false
  elseif key == nil then
    key = word
  else
    if redis.call('GET', key) ~= word then return false end
    key = nil
  end
end
return v
"""

BEGIN = """
local got = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
local out = {}
if got then out[1] = 1 else out[1] = 0 end
for i = 2, #KEYS do out[i] = redis.call('GET', KEYS[i]) end
return out
"""

CREATE = """
local ttl = ARGV[#ARGV]
local out = {}
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i], 'NX', 'PX', ttl)
  out[i] = redis.call('GET', KEYS[i])
end
return out
"""

PUT = """
local ttl = tonumber(ARGV[1])
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[i + 1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
for i = 2, #KEYS do
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

BUMP = """
local ttl = ARGV[#ARGV]
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i], 'PX', ttl) end
return #KEYS
"""


class Store(Protocol):
    def get(self, key: str) -> bytes | None:
        """The payload stored at ``key`` if every version named in its header is current."""

    async def aget(self, key: str) -> bytes | None:
        """``get()`` without blocking the event loop."""

    def begin(
        self, lease: str, token: str, seconds: float, vkeys: Sequence[str]
    ) -> tuple[bool, list[str | None]]:
        """Try to take the lease on a miss; read the version counters (``None``: missing)."""

    def create(self, vkeys: Sequence[str], tokens: Sequence[str], seconds: int) -> list[str]:
        """Set each missing counter; return what each counter holds now."""

    def put(
        self, key: str, data: bytes, seconds: int, vkeys: Sequence[str], tokens: Sequence[str]
    ) -> bool:
        """Store ``data`` only if every counter still holds its token."""

    def release(self, lease: str, token: str) -> None: ...

    def bump(self, vkeys: Sequence[str], tokens: Sequence[str], seconds: int) -> None: ...


def parse_header(data: bytes) -> tuple[list[str], list[str], bytes] | None:
    head, sep, payload = data.partition(b"\n")
    words = head.decode("utf-8", "replace").split()
    if not sep or not words or words[0] != FORMAT.decode() or len(words) % 2 == 0:
        return None
    return words[1::2], words[2::2], payload


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _checked(found: list[Any], vkeys: list[str]) -> tuple[bool, bytes | None]:
    """An ``MGET`` of a value and the counters ``vkeys``: (decided, payload or None).
    Undecided when the value names other counters than ``vkeys``: the script then reads it."""
    data = found[0]
    parsed = parse_header(data) if data else None
    if parsed is None:
        return True, None
    if parsed[0] != vkeys:
        return False, None
    return True, parsed[2] if [_text(v) for v in found[1:]] == parsed[1] else None


def _command(conn: Any, *args: Any) -> Any:
    """One command on ``conn``; on any error the connection is closed, never half read."""
    try:
        conn.send_command(*args)
        return conn.read_response()
    except BaseException:
        conn.disconnect()
        raise


class RedisStore:
    """django-redis's raw client, one Lua script per step."""

    def __init__(self, client: Any, own_connections: bool = True) -> None:
        self.client = client
        self._hit = client.register_script(HIT)
        self._begin = client.register_script(BEGIN)
        self._create = client.register_script(CREATE)
        self._put = client.register_script(PUT)
        self._release = client.register_script(RELEASE)
        self._bump = client.register_script(BUMP)
        self._async: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._vkeys: dict[str, list[str]] = {}  # value key -> the counters it was under
        import redis  # only made for django-redis, which depends on it

        pool = client.connection_pool
        plain = (redis.ConnectionPool, redis.BlockingConnectionPool)
        self._direct = (
            own_connections and type(pool) in plain and getattr(pool, "cache", None) is None
        )
        self._closed_error = redis.ConnectionError
        self._own = threading.local()

    def get(self, key: str) -> bytes | None:
        vkeys = self._vkeys.get(key)
        if vkeys is not None:
            # the counters this key was stored under last time: one MGET reads the
            # value and their current tokens at one instant, cheaper than a script
            decided, payload = _checked(self._mget([key, *vkeys]), vkeys)
            if decided:
                return payload
        return self._learn(key, self._hit(keys=[key]))

    def _learn(self, key: str, value: Any) -> bytes | None:
        """The script's answer; the counters it names serve the next hit by ``MGET``."""
        parsed = parse_header(value) if value else None
        if parsed is None:
            return None
        if len(self._vkeys) > 10_000:
            self._vkeys.clear()
        self._vkeys[key] = parsed[0]
        return parsed[2]

    def _mget(self, keys: list[str]) -> list[Any]:
        """``MGET`` on this thread's own connection when the pool is a plain one.

        Checking a connection out of redis-py's pool and back in costs more than the
        ``MGET`` itself; like Django's database connections, one stays with each thread.
        """
        if not self._direct:
            return self.client.mget(keys)  # type: ignore[no-any-return]
        own = self._own
        conn = getattr(own, "conn", None)
        if conn is None or own.pid != os.getpid():  # new thread, or a forked child
            pool = self.client.connection_pool
            conn = own.conn = pool.connection_class(**pool.connection_kwargs)
            own.pid = os.getpid()
        try:
            return _command(conn, "MGET", *keys)  # type: ignore[no-any-return]
        except self._closed_error:  # a closed idle socket gets one retry, like redis-py's
            return _command(conn, "MGET", *keys)  # type: ignore[no-any-return]

    async def aget(self, key: str) -> bytes | None:
        client, hit = self._async_client()
        vkeys = self._vkeys.get(key)
        if vkeys is not None:  # as in get(): one MGET once the counters are known
            decided, payload = _checked(await client.mget([key, *vkeys]), vkeys)
            if decided:
                return payload
        return self._learn(key, await hit(keys=[key]))

    def _async_client(self) -> tuple[Any, Any]:
        """A redis.asyncio client for the running loop (same server) and its hit script."""
        import asyncio

        from redis import asyncio as aioredis

        loop = asyncio.get_running_loop()
        found = self._async.get(loop)
        if found is None:
            pool = self.client.connection_pool
            conn_class = getattr(aioredis, pool.connection_class.__name__, aioredis.Connection)
            accepted = inspect.signature(conn_class.__init__).parameters
            kwargs = {k: v for k, v in pool.connection_kwargs.items() if k in accepted}
            client = aioredis.Redis(
                connection_pool=aioredis.ConnectionPool(connection_class=conn_class, **kwargs)
            )
            found = self._async[loop] = (client, client.register_script(HIT))
        return found

    def begin(
        self, lease: str, token: str, seconds: float, vkeys: Sequence[str]
    ) -> tuple[bool, list[str | None]]:
        out = self._begin(keys=[lease, *vkeys], args=[token, max(1, int(seconds * 1000))])
        return bool(out[0]), [_text(v) for v in out[1:]]

    def create(self, vkeys: Sequence[str], tokens: Sequence[str], seconds: int) -> list[str]:
        out = self._create(keys=list(vkeys), args=[*tokens, seconds * 1000])
        return [str(_text(v)) for v in out]

    def put(
        self, key: str, data: bytes, seconds: int, vkeys: Sequence[str], tokens: Sequence[str]
    ) -> bool:
        return bool(self._put(keys=[key, *vkeys], args=[seconds * 1000, data, *tokens]))

    def release(self, lease: str, token: str) -> None:
        self._release(keys=[lease], args=[token])

    def bump(self, vkeys: Sequence[str], tokens: Sequence[str], seconds: int) -> None:
        self._bump(keys=list(vkeys), args=[*tokens, seconds * 1000])


class DjangoStore:
    """Any Django cache backend (locmem, memcached, ...), through the public cache API."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @property
    def cache(self) -> Any:
        # Django's cache objects are per thread (a memcached client is not thread-safe)
        return caches[self.alias]

    def _current(self, vkeys: Sequence[str]) -> list[str | None]:
        found = self.cache.get_many(list(vkeys))
        return [found.get(k) for k in vkeys]

    def get(self, key: str) -> bytes | None:
        data = self.cache.get(key)
        if not isinstance(data, bytes):
            return None
        parsed = parse_header(data)
        if parsed is None:
            return None
        vkeys, tokens, payload = parsed
        return payload if self._current(vkeys) == tokens else None

    async def aget(self, key: str) -> bytes | None:
        cache = self.cache
        data = await cache.aget(key)
        parsed = parse_header(data) if isinstance(data, bytes) else None
        if parsed is None:
            return None
        vkeys, tokens, payload = parsed
        found = await cache.aget_many(vkeys)
        return payload if [found.get(k) for k in vkeys] == tokens else None

    def begin(
        self, lease: str, token: str, seconds: float, vkeys: Sequence[str]
    ) -> tuple[bool, list[str | None]]:
        got = self.cache.add(lease, token, timeout=seconds)
        return bool(got), self._current(vkeys)

    def create(self, vkeys: Sequence[str], tokens: Sequence[str], seconds: int) -> list[str]:
        for key, token in zip(vkeys, tokens, strict=True):
            self.cache.add(key, token, timeout=seconds)
        current = self._current(vkeys)
        # evicted between add and get: the caller's read then simply is not stored
        return [c if c is not None else "-" for c in current]

    def put(
        self, key: str, data: bytes, seconds: int, vkeys: Sequence[str], tokens: Sequence[str]
    ) -> bool:
        # Not atomic: a bump may land between this check and the set. The value then
        # carries the old token and get() never serves it.
        if self._current(vkeys) != list(tokens):
            return False
        self.cache.set(key, data, timeout=seconds)
        return True

    def release(self, lease: str, token: str) -> None:
        if self.cache.get(lease) == token:
            self.cache.delete(lease)

    def bump(self, vkeys: Sequence[str], tokens: Sequence[str], seconds: int) -> None:
        self.cache.set_many(dict(zip(vkeys, tokens, strict=True)), timeout=seconds)


def store_for(alias: str, own_connections: bool = True) -> Store:
    """``RedisStore`` for django-redis caches, ``DjangoStore`` for everything else."""
    cache = caches[alias]
    client_wrapper: Any = getattr(cache, "client", None)
    if type(cache).__module__.startswith("django_redis") and hasattr(client_wrapper, "get_client"):
        return RedisStore(client_wrapper.get_client(write=True), own_connections)
    return DjangoStore(alias)
