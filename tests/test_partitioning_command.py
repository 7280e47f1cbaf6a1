"""``scalekit_partitions`` prints the plan, applies it only when asked, drops only when allowed."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_scalekit.partitioning.conf import settings as conf
from tests.test_partitioning_helpers import at, count, drop_partitions
from tests.testapp.models import Metric

pytestmark = pytest.mark.django_db(transaction=True)
CONFIG = {
    "MODELS": {
        "testapp.Metric": {
            "interval": "month",
            "premake": 1,
            "retention": "3 months",
            "on_expire": "drop",
            "default_partition": True,
        }
    }
}


@pytest.fixture(autouse=True)
def metric_partitions():
    with override_settings(SCALEKIT_PARTITIONING=CONFIG):
        assert conf.MODELS  # read through the override
        yield
    drop_partitions(Metric._meta.db_table)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("scalekit_partitions", *args, stdout=out)
    return out.getvalue()


def partitions() -> int:
    return count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'testapp_metric'::regclass")


def test_dry_run_prints_the_plan_and_changes_nothing():
    out = run("--now", "2026-05-10T10:00:00Z")
    assert "create_default" in out
    assert "create         testapp_metric_p202605  [2026-05-01 00:00:00+00:00" in out
    assert "Dry run: nothing changed" in out
    assert partitions() == 0


def test_apply_then_drop_needs_allow_drop():
    run("--apply", "--now", "2026-01-10T10:00:00Z")
    assert partitions() == 3  # default, January, February
    Metric.objects.create(name="old", created=at(2026, 1, 5))
    for month in ("02", "03", "04", "05"):
        run("--apply", "--now", f"2026-{month}-10T10:00:00Z")
    out = run("--apply", "--now", "2026-05-10T10:00:00Z")
    assert "drop           testapp_metric_p202601" in out
    assert "SKIPPED: destructive" in out
    assert Metric.objects.filter(name="old").count() == 1

    out = run("--apply", "--allow-drop", "--now", "2026-05-10T10:00:00Z")
    assert "SKIPPED" not in out
    assert Metric.objects.filter(name="old").count() == 0
    assert count("SELECT count(*) FROM pg_class WHERE relname = 'testapp_metric_p202601'") == 0


def test_check_reports_rows_in_the_default_partition():
    run("--apply", "--now", "2026-05-10T10:00:00Z")
    assert run("--check", "--now", "2026-05-10T10:00:00Z").count("\n") >= 1
    Metric.objects.create(name="far", created=at(2027, 3, 1))
    with pytest.raises(CommandError, match="due"):
        run("--check", "--now", "2026-05-10T10:00:00Z")
    out = run("--now", "2026-05-10T10:00:00Z")
    assert "DEFAULT partition holds 1 rows" in out
    assert "moves 1 rows out of the DEFAULT partition" in out


def test_bad_arguments_are_command_errors():
    with pytest.raises(CommandError, match="ISO 8601"):
        run("--now", "yesterday")
    with (
        pytest.raises(CommandError, match=r"testapp\.Event: table 'testapp_event' is not"),
        override_settings(SCALEKIT_PARTITIONING={"MODELS": {"testapp.Event": {"interval": "day"}}}),
    ):
        run("--model", "testapp.Event")


def test_celery_task_runs_the_same_maintenance(celery_worker):
    from django_scalekit.partitioning.tasks import maintain_partitions

    # Projects list the module in CELERY_IMPORTS or import it from their tasks.py; the
    # test worker is already running, so let it pick up the task now.
    celery_worker.consumer.update_strategies()
    summary = maintain_partitions.delay().get(timeout=30)
    assert summary["testapp.Metric"]["skipped"] is False
    assert summary["testapp.Metric"]["applied"][0] == "create_default testapp_metric_default"
    assert partitions() == 3
