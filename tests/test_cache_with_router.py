"""Cache and router together: the cache learns the router's replicas."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_scalekit.apps import share_replica_map
from django_scalekit.cache import replicas as cache_replicas
from django_scalekit.cache import set_primary_resolver
from django_scalekit.routers import primary_of


@pytest.fixture
def shared_map():
    share_replica_map()
    yield
    set_primary_resolver(None)


def test_router_names_its_replicas_primary():
    with override_settings(SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}}):
        assert primary_of("replica") == "default"
        assert primary_of("default") is None
    assert primary_of("replica") is None  # no replicas configured


@pytest.mark.usefixtures("shared_map")
def test_cache_sees_a_router_replica_without_test_mirror():
    with override_settings(SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}}):
        assert cache_replicas.primary_of("replica") == "default"
        assert cache_replicas.has_replicas("default")
    assert cache_replicas.primary_of("replica") == "replica"  # the router knows none now


def test_app_ready_shares_the_map_when_both_are_configured():
    import subprocess
    import sys

    code = """
import django
from django.conf import settings
db = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
settings.configure(
    INSTALLED_APPS=["django_scalekit"],
    DATABASES={"default": db, "r1": db},
    SCALEKIT_CACHE={},
    SCALEKIT_ROUTER={"REPLICAS": {"r1": 1}},
)
django.setup()
from django_scalekit.cache import replicas
print(replicas.primary_of("r1"))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "default"
