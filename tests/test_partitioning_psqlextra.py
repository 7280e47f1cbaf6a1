"""Interop with django-postgres-extra: its PostgresPartitionedModel and its own partitions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection

from django_scalekit.partitioning import maintain
from django_scalekit.partitioning.checks import partition_key
from tests.test_partitioning_helpers import assert_contiguous, at, drop_family, ranges

pytestmark = [pytest.mark.needs_psqlextra, pytest.mark.django_db(transaction=True)]
_MODEL: dict[str, Any] = {}


def reading_model() -> Any:
    """Defined on first use: importing psqlextra at collection would break the 6.x leg."""
    if "model" not in _MODEL:
        from django.db import models
        from psqlextra.models import PostgresPartitionedModel
        from psqlextra.types import PostgresPartitioningMethod

        class Reading(PostgresPartitionedModel):
            class PartitioningMeta:
                method = PostgresPartitioningMethod.RANGE
                key = ["created"]

            pk = models.CompositePrimaryKey("uid", "created")
            uid = models.UUIDField()
            created = models.DateTimeField()

            class Meta:
                app_label = "testapp"
                db_table = "pt_psqlextra_reading"

            def __str__(self) -> str:
                return str(self.uid)

        _MODEL["model"] = Reading
    return _MODEL["model"]


@pytest.fixture
def reading():
    model = reading_model()
    drop_family(model._meta.db_table)
    with connection.schema_editor() as editor:
        editor.create_partitioned_model(model)
    yield model
    drop_family(model._meta.db_table)


def test_partition_key_is_read_from_partitioning_meta(reading):
    assert partition_key(reading, {}) == "created"


def test_maintains_a_psqlextra_model_next_to_its_own_manager(reading):
    from psqlextra.partitioning import PostgresPartitioningManager
    from psqlextra.partitioning.shorthands import partition_by_current_time

    # django-postgres-extra's bounds start at the moment its job runs.
    manager = PostgresPartitioningManager([partition_by_current_time(reading, count=2, months=1)])
    manager.plan().apply()
    theirs = {p.name for p in ranges(reading._meta.db_table)}
    assert theirs

    now = dt.datetime.now(dt.UTC)
    result = maintain(reading, options={"interval": "month", "premake": 4}, now=now)
    parts = ranges(reading._meta.db_table)
    assert_contiguous(parts)
    assert theirs <= {p.name for p in parts}  # none of theirs touched
    assert (parts[-1].upper.day, parts[-1].upper.hour) == (1, 0)  # ours are aligned
    assert result.applied
    assert maintain(reading, options={"interval": "month", "premake": 4}, now=now).applied == []


def test_psqlextra_partitions_expire_by_upper_bound(reading):
    with connection.schema_editor() as editor:
        editor.add_range_partition(reading, "2026_jan", at(2026, 1, 1, 10), at(2026, 2, 1, 10))
    options = {"interval": "month", "premake": 0, "retention": "6 months", "on_expire": "drop"}
    kept = maintain(reading, options=options, now=at(2026, 8, 1, 5), allow_drop=True)
    assert not [s for s in kept.applied if s.action == "drop"]
    gone = maintain(reading, options=options, now=at(2026, 8, 1, 11), allow_drop=True)
    assert [s.action for s in gone.applied if s.name.endswith("2026_jan")] == ["drop"]
