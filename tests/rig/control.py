"""Helpers tests use to drive the servers: replica lag, outages, query counts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from tests.rig.servers import PostgresPair, RedisServer, RigError
from tests.rig.urls import conninfo


def _admin(alias: str) -> psycopg.Connection[Any]:
    """An autocommit connection to the maintenance database of ``alias``'s server."""
    return psycopg.connect(
        **conninfo(connections[alias].settings_dict, dbname="postgres"), autocommit=True
    )


@dataclass
class ReplicaControl:
    """The streaming replica of the ``default`` database, as tests need to steer it."""

    primary_alias: str = "default"
    replica_alias: str = "replica"
    servers: PostgresPair | None = None

    def primary_lsn(self) -> str:
        with _admin(self.primary_alias) as conn:
            return str(conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0])  # type: ignore[index]

    def replay_lsn(self) -> str:
        with _admin(self.replica_alias) as conn:
            return str(conn.execute("SELECT pg_last_wal_replay_lsn()").fetchone()[0])  # type: ignore[index]

    def wait(self, timeout: float = 15.0) -> None:
        """Block until the replica has replayed everything the primary has written."""
        target = self.primary_lsn()
        deadline = time.monotonic() + timeout
        with _admin(self.replica_alias) as conn:
            while True:
                row = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn, "
                    "pg_get_wal_replay_pause_state()",
                    [target],
                ).fetchone()
                assert row is not None
                if row[0]:
                    return
                if row[1] != "not paused":
                    raise RigError(f"replica replay is {row[1]}: resume it before waiting")
                if time.monotonic() > deadline:
                    raise RigError(f"replica did not reach {target} within {timeout}s")
                time.sleep(0.005)

    def pause(self) -> None:
        """Stop applying WAL: the replica serves its current, soon stale, state."""
        with _admin(self.replica_alias) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            while conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone() != ("paused",):
                time.sleep(0.005)

    def resume(self) -> None:
        with _admin(self.replica_alias) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def _servers(self) -> PostgresPair:
        if self.servers is None:
            pytest.skip("stopping the replica needs the throw-away servers (REPLICA_URL is set)")
        return self.servers

    def stop(self) -> None:
        """Shut the replica down (connection refused)."""
        connections[self.replica_alias].close()
        self._servers().stop_replica()

    def start(self) -> None:
        self._servers().start_replica()

    def freeze(self) -> None:
        """SIGSTOP the replica (connections hang until their timeout)."""
        self._servers().freeze_replica()

    def thaw(self) -> None:
        self._servers().thaw_replica()


@dataclass
class RedisControl:
    server: RedisServer | None = None

    def _server(self) -> RedisServer:
        if self.server is None:
            pytest.skip("stopping Redis needs the throw-away server (REDIS_URL is set)")
        return self.server

    def stop(self) -> None:
        self._server().stop()

    def start(self) -> None:
        self._server().start()

    def freeze(self) -> None:
        self._server().freeze()

    def thaw(self) -> None:
        self._server().thaw()

    @property
    def running(self) -> bool:
        return self.server is None or self.server.pid() is not None


@dataclass
class QueryCounts:
    contexts: dict[str, CaptureQueriesContext] = field(default_factory=dict)

    def __getitem__(self, alias: str) -> int:
        return len(self.contexts[alias].captured_queries)

    def queries(self, alias: str) -> list[str]:
        return [q["sql"] for q in self.contexts[alias].captured_queries]

    @property
    def total(self) -> int:
        return sum(len(c.captured_queries) for c in self.contexts.values())

    def as_dict(self) -> dict[str, int]:
        return {alias: self[alias] for alias in self.contexts}


@contextmanager
def count_queries(*aliases: str) -> Iterator[QueryCounts]:
    """Count the queries sent to each alias (all configured aliases by default)."""
    counts = QueryCounts()
    with ExitStack() as stack:
        for alias in aliases or tuple(connections):
            counts.contexts[alias] = stack.enter_context(CaptureQueriesContext(connections[alias]))
        yield counts
