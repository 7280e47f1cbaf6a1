"""Each concern reads its settings through its conf module; override_settings works."""

from __future__ import annotations

from django.test import override_settings

from django_scalekit.cache import conf as cache_conf
from django_scalekit.routers import conf as routers_conf


def test_defaults_without_setting():
    assert cache_conf.settings.TIMEOUT == 300
    assert routers_conf.settings.PRIMARY == "default"
    assert routers_conf.replica_weights() == {}


def test_override_settings_is_seen_and_undone():
    with override_settings(SCALEKIT_CACHE={"TIMEOUT": 42}):
        assert cache_conf.settings.TIMEOUT == 42
        assert cache_conf.settings.KEY_PREFIX == "scalekit"  # other keys keep defaults
    assert cache_conf.settings.TIMEOUT == 300


def test_replica_list_means_equal_weights():
    with override_settings(SCALEKIT_ROUTER={"REPLICAS": ["replica"]}):
        assert routers_conf.replica_weights() == {"replica": 1}


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="NOPE"):
        _ = cache_conf.settings.NOPE
