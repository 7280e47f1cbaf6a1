"""The test rig itself: a real primary, a real streaming replica, Redis and a Celery worker."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import DatabaseError, connections

from tests.testapp.models import Product, Tag

pytestmark = pytest.mark.django_db(databases=["default", "replica"], transaction=True)


def _scalar(alias: str, sql: str) -> object:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_replica_is_a_hot_standby_of_the_primary():
    assert _scalar("default", "SELECT pg_is_in_recovery()") is False
    assert _scalar("replica", "SELECT pg_is_in_recovery()") is True
    assert _scalar("default", "SELECT current_database()") == _scalar(
        "replica", "SELECT current_database()"
    )
    primary, standby = connections["default"], connections["replica"]
    assert (primary.settings_dict["HOST"], primary.settings_dict["PORT"]) != (
        standby.settings_dict["HOST"],
        standby.settings_dict["PORT"],
    )


def test_rows_written_on_the_primary_reach_the_replica(replica):
    Tag.objects.create(name="fresh")
    replica.wait()
    assert Tag.objects.using("replica").filter(name="fresh").exists()


def test_replica_refuses_writes():
    with pytest.raises(DatabaseError, match="read-only transaction"):
        Tag.objects.using("replica").create(name="nope")


def test_paused_replay_serves_stale_rows_until_resumed(replica):
    Tag.objects.create(name="before")
    replica.wait()
    with replica.paused():
        Tag.objects.create(name="during")
        assert set(Tag.objects.using("replica").values_list("name", flat=True)) == {"before"}
    replica.wait()
    assert set(Tag.objects.using("replica").values_list("name", flat=True)) == {
        "before",
        "during",
    }


def test_a_stopped_replica_refuses_connections_and_comes_back(replica):
    replica.stop()
    with pytest.raises(DatabaseError):
        connections["replica"].ensure_connection()
    replica.start()
    connections["replica"].close()
    assert _scalar("replica", "SELECT 1") == 1


def test_query_counts_per_alias(queries):
    Tag.objects.create(name="counted")
    with queries("default", "replica") as counts:
        list(Tag.objects.all())
        list(Tag.objects.using("replica").all())
        list(Tag.objects.using("replica").all())
    assert counts.as_dict() == {"default": 1, "replica": 2}


def test_redis_cache_round_trip_and_outage(redis_server):
    cache.set("rig", {"ok": 1}, 30)
    assert cache.get("rig") == {"ok": 1}
    redis_server.stop()
    with pytest.raises(Exception, match=r"(?i)connect"):
        cache.get("rig")
    redis_server.start()
    cache.set("rig", 2, 30)
    assert cache.get("rig") == 2


def test_celery_worker_runs_tasks_against_the_test_database(celery_worker):
    from tests.testapp.tasks import add, create_tag

    assert add.delay(2, 3).get(timeout=20) == 5
    pk = create_tag.delay("from-worker").get(timeout=20)
    assert Tag.objects.get(pk=pk).name == "from-worker"


def test_models_round_trip_decimal_and_uuid():
    product = Product.objects.create(name="Lamp", price="19.90")
    product.refresh_from_db()
    assert str(product.price) == "19.90"
    assert product.sku is not None
