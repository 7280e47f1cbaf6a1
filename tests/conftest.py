"""Fixtures every concern's tests use: the replica, Redis, a Celery worker, query counts."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest

from tests.rig import plugin
from tests.rig.control import RedisControl, ReplicaControl, count_queries

HAS_PSQLEXTRA = importlib.util.find_spec("psqlextra") is not None


def pytest_report_header(config: pytest.Config) -> list[str]:
    extra = "installed" if HAS_PSQLEXTRA else "not installed: needs_psqlextra tests deselected"
    return [f"django {django.get_version()}; django-postgres-extra {extra}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    expected = os.environ.get("SCALEKIT_EXPECT_DJANGO")
    if (
        expected
        and django.get_version().rsplit(".", 1)[0] != expected
        and not (django.get_version() == expected)
    ):
        raise pytest.UsageError(
            f"this leg is meant to test Django {expected} but Django {django.get_version()} "
            "is installed (did an extra downgrade it?)"
        )
    if HAS_PSQLEXTRA:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("needs_psqlextra") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    # The replica gets the test database by replication: wait until it has it.
    with django_db_blocker.unblock():
        rig = plugin.current()
        ReplicaControl(servers=rig.postgres).wait()


@pytest.fixture
def replica() -> Iterator[ReplicaControl]:
    """Steer the streaming replica; replay is resumed and the server restored afterwards."""
    control = ReplicaControl(servers=plugin.current().postgres)
    yield control
    servers = control.servers
    if servers is not None:
        pid_file = servers.replica_dir / "postmaster.pid"
        if pid_file.exists():
            control.thaw()
        else:
            control.start()
    control.resume()


@pytest.fixture
def redis_server() -> Iterator[RedisControl]:
    """Stop, freeze or restart the test Redis; it is running again afterwards."""
    control = RedisControl(plugin.current().redis)
    yield control
    if control.server is not None:
        if control.running:
            control.thaw()
        else:
            control.start()


@pytest.fixture
def queries() -> Callable[..., Any]:
    """``with queries("default", "replica") as counts: ...; counts["replica"]``."""
    return count_queries


@pytest.fixture(scope="session")
def celery_app() -> Any:
    from tests.celery_app import app

    return app


@pytest.fixture(scope="session")
def celery_worker(celery_app: Any, django_db_setup: None, django_db_blocker: Any) -> Iterator[Any]:
    """A real Celery worker (thread, solo pool) consuming from the test Redis."""
    from celery.contrib.testing.worker import start_worker

    celery_app.loader.import_module("celery.contrib.testing.tasks")
    with start_worker(celery_app, pool="solo", perform_ping_check=True, shutdown_timeout=10) as w:
        yield w
