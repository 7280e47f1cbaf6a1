"""Each concern imports with Django alone: no DRF, Redis, Celery or psqlextra pulled in."""

from __future__ import annotations

import subprocess
import sys

import pytest

import django_scalekit

OPTIONAL = ("rest_framework", "serpy", "redis", "django_redis", "celery", "psqlextra")
CONCERNS = ("serializers", "cache", "denorm", "partitioning", "routers")


@pytest.mark.parametrize("concern", CONCERNS)
def test_importing_a_concern_pulls_in_no_optional_dependency(concern):
    code = (
        "import sys, django; from django.conf import settings; settings.configure(); "
        f"django.setup(); import django_scalekit.{concern}; "
        f"print(','.join(m for m in {OPTIONAL!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"django_scalekit.{concern} imported {out}"


def test_version_is_defined_once():
    assert django_scalekit.__version__.count(".") >= 2


def test_typed_marker_ships():
    from importlib.resources import files

    assert files("django_scalekit").joinpath("py.typed").is_file()
