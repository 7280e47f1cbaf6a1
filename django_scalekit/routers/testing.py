"""Helpers for tests of code that runs behind ``PrimaryReplicaRouter``.

``served_by()`` records which alias executed each query of a block;
``wait_for_replicas()`` blocks until every replica has replayed the primary's
current WAL position; ``reset()`` forgets routing state and replica health.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from django.db import connections

from django_scalekit.routers import replicas
from django_scalekit.routers.router import RETRIED_ON, forget_connections
from django_scalekit.routers.state import reset_state

__all__ = ["Served", "reset", "served_by", "wait_for_replicas"]


class Served(list[tuple[str, str]]):
    """``(alias, sql)`` for each query, in order."""

    @property
    def aliases(self) -> list[str]:
        return [alias for alias, _ in self]

    def count(self, alias: str) -> int:  # type: ignore[override]
        return sum(1 for a, _ in self if a == alias)


@contextmanager
def served_by(*aliases: str) -> Iterator[Served]:
    """Record the alias of every query run in this thread inside the block.

    A read retried on another alias after a replica failed is recorded where
    it was finally served. The router's own position and health queries are
    not recorded.
    """
    served = Served()

    def record(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        result = execute(sql, params, many, context)
        if RETRIED_ON not in context:  # else recorded by the retry on the other alias
            served.append((context["connection"].alias, sql))
        return result

    with ExitStack() as stack:
        for alias in aliases or tuple(connections):
            stack.enter_context(connections[alias].execute_wrapper(record))
        yield served


def wait_for_replicas(timeout: float = 10.0) -> None:
    """Block until every configured replica has replayed the primary's WAL position."""
    cfg = replicas.config()
    target = replicas.primary_lsn(cfg.primary)
    if target is None:
        return
    deadline = time.monotonic() + timeout
    for alias in cfg.replicas:
        while True:
            row = replicas._query(connections[alias], replicas.POLL_SQL)
            if row is not None and row[1] is not None and int(row[1]) >= target:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica {alias!r} did not replay {target} in {timeout}s")
            time.sleep(0.005)


def reset() -> None:
    """Forget this context's routing state, compiled settings and replica health."""
    reset_state()
    replicas.reset()
    forget_connections()
