"""django-postgres-extra is usable where it installs (the Django 5.2 leg)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.needs_psqlextra


def test_psqlextra_imports_alongside_this_django():
    from psqlextra.models import PostgresPartitionedModel
    from psqlextra.types import PostgresPartitioningMethod

    assert PostgresPartitioningMethod.RANGE
    assert PostgresPartitionedModel


def test_primary_uses_the_psqlextra_backend():
    from django.db import connections

    assert connections["default"].vendor == "postgresql"
    assert type(connections["default"]).__module__.startswith("psqlextra.backend")
