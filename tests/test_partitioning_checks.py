"""Per-model options and model shapes are checked by id, with a hint saying what to write."""

from __future__ import annotations

import pytest
from django.db import connection, models
from django.test import override_settings
from django.test.utils import isolate_apps

from django_scalekit.checks import check_settings
from django_scalekit.partitioning import CreatePartitionedModel, PartitioningError, maintain
from django_scalekit.partitioning.checks import model_errors
from django_scalekit.partitioning.conf import model_options
from tests.test_partitioning_helpers import at


def errors_for(options: dict) -> list:
    with override_settings(SCALEKIT_PARTITIONING={"MODELS": {"testapp.Metric": options}}):
        return check_settings()


def test_good_options_pass():
    good = {
        "interval": "quarter",
        "premake": 0,
        "retention": "18 months",
        "on_expire": "drop",
        "timezone": "Europe/Berlin",
        "default_partition": True,
        "key": "created",
    }
    assert errors_for(good) == []
    assert model_options(good).retention == (18, "month")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"interval": "month", "premaek": 3}, "django_scalekit.E040"),
        ({}, "django_scalekit.E043"),
        ({"interval": "fortnight"}, "django_scalekit.E043"),
        ({"interval": "month", "premake": -1}, "django_scalekit.E044"),
        ({"interval": "month", "premake": True}, "django_scalekit.E044"),
        ({"interval": "month", "retention": "6 moons"}, "django_scalekit.E045"),
        ({"interval": "month", "retention": 6}, "django_scalekit.E045"),
        ({"interval": "month", "retention": "0 days"}, "django_scalekit.E045"),
        ({"interval": "month", "on_expire": "delete"}, "django_scalekit.E046"),
        ({"interval": "month", "timezone": "Mars/Olympus"}, "django_scalekit.E047"),
        ({"interval": "month", "default_partition": "yes"}, "django_scalekit.E048"),
        ({"interval": "month", "key": 3}, "django_scalekit.E048"),
        ({"interval": "month", "key": "name"}, "django_scalekit.E049"),
        ({"interval": "month", "key": "value"}, "django_scalekit.E049"),
    ],
)
def test_bad_option_is_reported_by_id(options, expected):
    errors = errors_for(options)
    assert [e.id for e in errors] == [expected]
    assert errors[0].hint


def test_lock_retries_is_checked():
    with override_settings(SCALEKIT_PARTITIONING={"LOCK_RETRIES": 0}):
        assert [e.id for e in check_settings()] == ["django_scalekit.E041"]


def test_unknown_model_is_reported():
    with override_settings(SCALEKIT_PARTITIONING={"MODELS": {"testapp.Nope": {"interval": "day"}}}):
        assert [e.id for e in check_settings()] == ["django_scalekit.E049"]


def test_bad_options_raise_when_used():
    with pytest.raises(ValueError, match="Write one of: hour, day"):
        model_options({"interval": "fortnight"})


def test_primary_key_without_the_partition_key_explains_the_composite_key():
    with isolate_apps("tests.testapp") as registry:
        _primary_key_case(registry)


def _primary_key_case(registry):
    class Reading(models.Model):  # noqa: DJ008
        created = models.DateTimeField()
        code = models.CharField(max_length=10, unique=True)

        class Meta:
            app_label = "testapp"

    pk_error, unique_error = model_errors(
        {"testapp.Reading": {"interval": "day", "key": "created"}}, registry
    )
    assert pk_error.id == "django_scalekit.E049"
    assert "CompositePrimaryKey" in pk_error.msg
    assert "code" in unique_error.msg


def test_foreign_key_into_a_partitioned_table_is_reported():
    with isolate_apps("tests.testapp") as registry:
        _foreign_key_case(registry)


def _foreign_key_case(registry):
    class Sample(models.Model):  # noqa: DJ008
        pk = models.CompositePrimaryKey("uid", "created")
        uid = models.IntegerField()
        created = models.DateField()

        class Meta:
            app_label = "testapp"

    class Ref(models.Model):  # noqa: DJ008
        sample = models.ForeignKey(Sample, on_delete=models.CASCADE, db_constraint=True)

        class Meta:
            app_label = "testapp"

    errors = model_errors({"testapp.Sample": {"interval": "hour", "key": "created"}}, registry)
    assert {e.id for e in errors} == {"django_scalekit.E043", "django_scalekit.E049"}
    assert any("foreign key into the partitioned table" in e.msg for e in errors)


@isolate_apps("tests.testapp")
@pytest.mark.django_db(transaction=True)
def test_create_partitioned_model_refuses_a_primary_key_without_the_key():
    class Plain(models.Model):  # noqa: DJ008
        created = models.DateTimeField()

        class Meta:
            app_label = "testapp"
            db_table = "pt_plain"

    op = CreatePartitionedModel(
        "Plain",
        [("id", models.BigAutoField(primary_key=True)), ("created", models.DateTimeField())],
        partition_key="created",
    )
    from django.db.migrations.state import ProjectState

    state = ProjectState()
    new = state.clone()
    op.state_forwards("testapp", new)
    with (
        connection.schema_editor() as editor,
        pytest.raises(PartitioningError, match="CompositePrimaryKey"),
    ):
        op.database_forwards("testapp", editor, state, new)
    assert op.deconstruct()[2]["partition_key"] == "created"


@pytest.mark.django_db(transaction=True)
def test_maintaining_a_table_that_is_not_partitioned_says_how_to_fix_it():
    with pytest.raises(PartitioningError, match=r"not partitioned.*CreatePartitionedModel"):
        maintain(table="testapp_event", options={"interval": "day"}, now=at(2026, 5, 1))
    with pytest.raises(PartitioningError, match="does not exist"):
        maintain(table="no_such_table", options={"interval": "day"})
    with pytest.raises(PartitioningError, match="not in SCALEKIT_PARTITIONING"):
        maintain("testapp.Metric")
    with pytest.raises(PartitioningError, match=r"declares partition key 'uid'.*by 'created'"):
        maintain("testapp.Metric", options={"interval": "day", "key": "uid"})


@pytest.mark.django_db
def test_maintenance_refuses_to_run_inside_a_transaction():
    with pytest.raises(PartitioningError, match=r"outside transaction\.atomic"):
        maintain(table="testapp_metric", options={"interval": "day"})


@pytest.mark.django_db(transaction=True)
def test_database_check_reports_rows_in_default_and_unpartitioned_tables():
    from django_scalekit.partitioning.checks import check_partitioned_tables
    from tests.test_partitioning_helpers import drop_partitions
    from tests.testapp.models import Metric

    config = {
        "MODELS": {
            "testapp.Metric": {"interval": "month", "default_partition": True},
            "testapp.Event": {"interval": "month"},
        }
    }
    try:
        with override_settings(SCALEKIT_PARTITIONING=config):
            assert check_partitioned_tables(databases=None) == []
            maintain("testapp.Metric", now=at(2026, 5, 10))
            Metric.objects.create(name="late", created=at(2030, 1, 1))
            messages = check_partitioned_tables(databases=["default"])
            assert [m.id for m in messages] == ["django_scalekit.W040", "django_scalekit.W041"]
            assert "holds 1 rows" in messages[0].msg
            assert "testapp_event" in messages[1].msg
            maintain("testapp.Metric", now=at(2026, 5, 10))
            assert [m.id for m in check_partitioned_tables(databases=["default"])] == [
                "django_scalekit.W041"
            ]
        missing = {"MODELS": {"testapp.Metric": {"interval": "month"}}}
        with override_settings(SCALEKIT_PARTITIONING=missing):
            Metric._meta.db_table, table = "pt_not_yet_migrated", Metric._meta.db_table
            try:
                assert check_partitioned_tables(databases=["default"]) == []
            finally:
                Metric._meta.db_table = table
    finally:
        drop_partitions(Metric._meta.db_table)
