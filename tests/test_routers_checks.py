"""The router's own system checks, by id."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from django_scalekit.checks import check_settings
from tests.test_routers_support import MIDDLEWARE, ROUTER


def ids(errors):
    return [e.id for e in errors]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"STICKY_SECONDS": -1}, "django_scalekit.E056"),
        ({"POLL_INTERVAL_MS": "100"}, "django_scalekit.E056"),
        ({"CELERY_MODE": "always"}, "django_scalekit.E057"),
    ],
)
def test_bad_values(value, expected):
    with override_settings(SCALEKIT_ROUTER=value):
        errors = check_settings()
    assert ids(errors) == [expected]
    assert errors[0].hint


def test_middleware_missing_while_sticky():
    with override_settings(DATABASE_ROUTERS=[ROUTER], SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}}):
        (error,) = check_settings()
    assert error.id == "django_scalekit.E058"
    assert MIDDLEWARE in error.hint


def test_middleware_not_needed_when_not_sticky_or_installed():
    with override_settings(
        DATABASE_ROUTERS=[ROUTER], SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}, "STICKY": False}
    ):
        assert check_settings() == []
    with override_settings(
        DATABASE_ROUTERS=[ROUTER],
        SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}},
        MIDDLEWARE=[MIDDLEWARE, *settings.MIDDLEWARE],
    ):
        assert check_settings() == []
    with override_settings(SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}}):
        assert check_settings() == []  # router not installed: nothing to wire


def test_middleware_after_the_session_middleware():
    with override_settings(
        DATABASE_ROUTERS=[ROUTER],
        SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}},
        MIDDLEWARE=[*settings.MIDDLEWARE, MIDDLEWARE],
    ):
        (error,) = check_settings()
    assert error.id == "django_scalekit.E058"
    assert "SessionMiddleware" in error.hint


def test_replica_pointing_at_the_primary():
    databases = {
        "default": settings.DATABASES["default"],
        "replica": settings.DATABASES["replica"],
        "copy": {**settings.DATABASES["default"]},
    }
    with (
        pytest.warns(UserWarning, match="DATABASES"),
        override_settings(DATABASES=databases, SCALEKIT_ROUTER={"REPLICAS": ["copy"]}),
    ):
        errors = check_settings()
    assert ids(errors) == ["django_scalekit.E059"]
    assert "streaming replica" in errors[0].hint
