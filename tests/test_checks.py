"""Every settings check by id: a bad value gives an error that says what to write."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from django_scalekit.checks import check_settings


def ids(errors: list[checks.CheckMessage]) -> list[str]:
    return [e.id for e in errors]


def test_default_settings_pass():
    assert check_settings() == []


def test_registered_with_django():
    assert check_settings in checks.registry.registry.get_checks()


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("SCALEKIT_ROUTER", ["replica"], "django_scalekit.E001"),
        ("SCALEKIT_CACHE", {"TIMOUT": 30}, "django_scalekit.E002"),
        ("SCALEKIT_SERIALIZERS", {"COERCE_DECIMAL_TO_STRING": "yes"}, "django_scalekit.E010"),
        ("SCALEKIT_CACHE", {"CACHE": "nope"}, "django_scalekit.E020"),
        ("SCALEKIT_CACHE", {"TIMEOUT": None}, "django_scalekit.E021"),
        ("SCALEKIT_CACHE", {"TIMEOUT": 0}, "django_scalekit.E021"),
        ("SCALEKIT_CACHE", {"KEY_PREFIX": ""}, "django_scalekit.E022"),
        ("SCALEKIT_DENORM", {"RECOUNT_BATCH_SIZE": 0}, "django_scalekit.E030"),
        ("SCALEKIT_PARTITIONING", {"MODELS": {"Event": {}}}, "django_scalekit.E040"),
        ("SCALEKIT_PARTITIONING", {"LOCK_TIMEOUT": "two seconds"}, "django_scalekit.E041"),
        ("SCALEKIT_PARTITIONING", {"ALLOW_DROP": "yes"}, "django_scalekit.E042"),
        ("SCALEKIT_ROUTER", {"PRIMARY": "main"}, "django_scalekit.E050"),
        ("SCALEKIT_ROUTER", {"REPLICAS": {"replica2": 1}}, "django_scalekit.E051"),
        ("SCALEKIT_ROUTER", {"REPLICAS": {"default": 1}}, "django_scalekit.E051"),
        ("SCALEKIT_ROUTER", {"REPLICAS": "replica"}, "django_scalekit.E051"),
        ("SCALEKIT_ROUTER", {"REPLICAS": {"replica": 0}}, "django_scalekit.E052"),
        ("SCALEKIT_ROUTER", {"MAX_LAG_SECONDS": -1}, "django_scalekit.E053"),
        ("SCALEKIT_ROUTER", {"COOLDOWN_SECONDS": "5"}, "django_scalekit.E054"),
        ("SCALEKIT_ROUTER", {"STICKY": 1}, "django_scalekit.E055"),
    ],
)
def test_bad_values_are_reported_by_id(setting, value, expected):
    with override_settings(**{setting: value}):
        errors = check_settings()
    assert ids(errors) == [expected]
    assert errors[0].hint  # says what to write instead
    assert setting in errors[0].msg


def test_unknown_key_suggests_the_nearest():
    with override_settings(SCALEKIT_CACHE={"TIMOUT": 30}):
        (error,) = check_settings()
    assert "Did you mean 'TIMEOUT'?" in error.hint


def test_good_router_settings_pass():
    with override_settings(
        SCALEKIT_ROUTER={"REPLICAS": {"replica": 2}, "MAX_LAG_SECONDS": 0.5, "STICKY": False}
    ):
        assert check_settings() == []
    with override_settings(SCALEKIT_ROUTER={"REPLICAS": ["replica"]}):
        assert check_settings() == []


def test_manage_py_check_reports_errors():
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with (
        override_settings(SCALEKIT_DENORM={"RECOUNT_BATCH_SIZE": -5}),
        pytest.raises(SystemCheckError, match=r"django_scalekit\.E030"),
    ):
        call_command("check")
