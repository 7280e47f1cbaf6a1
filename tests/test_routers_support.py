"""Fixtures the router tests share (imported by each ``test_routers_*`` module).

``routed(**settings)`` installs ``PrimaryReplicaRouter`` with ``override_settings``
and clears Django's cached router list (``ConnectionRouter.routers`` is a
``cached_property`` that also stores the setting in ``_routers``), so each test
starts with fresh settings, state and health.

``second_replica`` adds an alias ``replica2`` pointing at the same streaming
replica server: it is added to ``connections.settings`` (a copy of the
configured ``replica`` entry) rather than through ``override_settings(DATABASES=...)``,
which Django warns against, and removed afterwards.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from django.db import connections, router
from django.test import override_settings

from django_scalekit.routers import testing
from django_scalekit.routers.router import _retry_elsewhere

ROUTER = "django_scalekit.routers.PrimaryReplicaRouter"
MIDDLEWARE = "django_scalekit.routers.ReadYourWritesMiddleware"
BOTH = pytest.mark.django_db(databases=["default", "replica"], transaction=True)
THREE = pytest.mark.django_db(databases=["default", "replica", "replica2"], transaction=True)


async def close_async_connections() -> None:
    """Close what ``sync_to_async`` opened in its executor thread."""
    from asgiref.sync import sync_to_async

    await sync_to_async(connections.close_all)()


def forget_router() -> None:
    # ConnectionRouter copies settings.DATABASE_ROUTERS into _routers on first use.
    router._routers = None
    router.__dict__.pop("routers", None)
    testing.reset()
    for conn in connections.all(initialized_only=True):
        while _retry_elsewhere in conn.execute_wrappers:
            conn.execute_wrappers.remove(_retry_elsewhere)


@pytest.fixture
def routed(replica: Any) -> Iterator[Callable[..., None]]:
    """``routed(REPLICAS={...}, ...)``: the router on, with these SCALEKIT_ROUTER keys.

    ``django={...}`` overrides other Django settings in the same stack (kept by
    later calls), so that overrides are undone in the order they were made.
    """
    replica.wait()  # start from a caught-up replica, whatever earlier tests wrote
    stack = ExitStack()
    extra: dict[str, Any] = {}

    def enable(django: dict[str, Any] | None = None, **conf: Any) -> None:
        stack.close()
        extra.update(django or {})
        values = {"REPLICAS": {"replica": 1}, **conf}
        stack.enter_context(
            override_settings(DATABASE_ROUTERS=[ROUTER], SCALEKIT_ROUTER=values, **extra)
        )
        forget_router()

    yield enable
    stack.close()
    forget_router()


@pytest.fixture(scope="module")
def second_replica() -> Iterator[str]:
    """Module scope, so the alias exists before pytest-django sets up the test's databases
    (mark the test with ``THREE``)."""
    connections.settings["replica2"] = copy.deepcopy(connections.settings["replica"])
    yield "replica2"
    if "replica2" in connections.settings:
        connections["replica2"].close()
        del connections["replica2"]
        del connections.settings["replica2"]
