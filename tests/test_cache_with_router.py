"""Cache and router together: the cache learns the router's replicas."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_scalekit.apps import share_replica_map
from django_scalekit.cache import replicas as cache_replicas
from django_scalekit.cache import set_caught_up_check, set_primary_resolver
from django_scalekit.routers import primary_of


@pytest.fixture
def shared_map():
    share_replica_map()
    yield
    set_primary_resolver(None)
    set_caught_up_check(None)


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


@pytest.mark.django_db(transaction=True, databases=["default", "replica"])
@pytest.mark.usefixtures("shared_map")
def test_cache_takes_the_replay_position_the_router_polled(monkeypatch):
    from django_scalekit.routers import replicas as router_replicas

    with override_settings(SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}}):
        state = router_replicas.replica("replica")
        state.poll(router_replicas.config())
        polled = state.replay_lsn
        assert polled

        def asked(alias):
            raise AssertionError("the cache asked the replica")

        with monkeypatch.context() as patch:
            patch.setattr(cache_replicas, "replay_position", asked)
            assert cache_replicas.caught_up("replica", polled)
            assert cache_replicas.caught_up("replica", polled - 1)
        # past what the router saw: the replica itself is asked, and it is not there yet
        assert not cache_replicas.caught_up("replica", polled + 2**40)
    # no router replicas: the cache asks the replica, which has replayed that far
    with monkeypatch.context() as patch:
        patch.setattr(cache_replicas, "replay_position", lambda alias: polled)
        assert cache_replicas.caught_up("replica", polled)


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
print(replicas.primary_of("r1"), replicas._caught_up_check.__name__)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "default replayed_past"
