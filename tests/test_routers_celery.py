"""Celery tasks read what the request that enqueued them wrote (a real worker thread)."""

# ruff: noqa: F811  (fixtures imported from test_routers_support)

from __future__ import annotations

import pytest
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path

from django_scalekit.routers.celery import HEADER, connect_signals
from django_scalekit.routers.middleware import COOKIE_NAME
from django_scalekit.routers.state import reset_state
from django_scalekit.routers.testing import served_by
from tests.test_routers_support import BOTH, MIDDLEWARE, routed  # noqa: F401
from tests.testapp.models import Tag

pytestmark = BOTH


@shared_task
def lookup(name: str) -> dict[str, object]:
    with served_by("default", "replica") as served:
        found = Tag.objects.filter(name=name).exists()
    return {"found": found, "db": served.aliases[-1]}


@shared_task
def write_then_lookup(name: str) -> dict[str, object]:
    Tag.objects.create(name=name)
    return lookup(name)


@shared_task(scalekit_reads="primary")
def lookup_on_primary(name: str) -> dict[str, object]:
    return lookup(name)


@shared_task
def header(name: str) -> object:
    from celery import current_task

    return getattr(current_task.request, HEADER, None)


def create_and_enqueue(request: HttpRequest) -> JsonResponse:
    Tag.objects.create(name=request.POST["name"])
    result = lookup.delay(request.POST["name"])
    return JsonResponse({"task": result.id})


def read(request: HttpRequest, name: str) -> JsonResponse:
    with served_by("default", "replica") as served:
        found = Tag.objects.filter(name=name).exists()
    return JsonResponse({"found": found, "db": served.aliases[-1]})


urlpatterns = [path("create/", create_and_enqueue), path("read/<str:name>/", read)]


@pytest.fixture
def worker(celery_worker, routed, replica):
    connect_signals()
    routed(MAX_LAG_SECONDS=3600)  # a paused replica stays in use unless a mark says otherwise
    return celery_worker


def run(task, *args):
    return task.delay(*args).get(timeout=20)


def test_tasks_enqueued_after_a_write_never_read_stale_rows(worker, replica):
    replica.pause()
    results = []
    for i in range(1000):
        reset_state()  # a new request
        Tag.objects.create(name=f"t{i}")
        results.append(lookup.delay(f"t{i}"))
    outcomes = [r.get(timeout=60) for r in results]
    assert sum(not o["found"] for o in outcomes) == 0
    assert {o["db"] for o in outcomes} == {"default"}


def test_tasks_without_a_prior_write_read_from_the_replica(worker, replica):
    reset_state()
    assert run(lookup, "nothing") == {"found": False, "db": "replica"}
    assert run(header, "x") is None


def test_the_mark_travels_as_a_wal_position(worker, replica):
    reset_state()
    Tag.objects.create(name="a")
    mark = run(header, "a")
    assert isinstance(mark, str)
    assert mark.startswith("l")
    assert int(mark[1:]) > 0


def test_tasks_read_from_the_replica_once_it_has_replayed_the_write(worker, replica):
    reset_state()
    Tag.objects.create(name="a")
    replica.wait()
    # the worker's cached replay position may be up to one poll interval old
    outcomes = [run(lookup, "a") for _ in range(30)]
    assert outcomes[-1] == {"found": True, "db": "replica"}
    assert all(o["found"] for o in outcomes)


def test_state_resets_between_tasks(worker, replica):
    replica.pause()
    reset_state()
    assert run(write_then_lookup, "w") == {"found": True, "db": "default"}
    # The next task on the same worker thread starts unpinned.
    assert run(lookup, "w") == {"found": False, "db": "replica"}


def test_enqueued_inside_the_transaction_reads_from_the_primary(worker, replica):
    replica.pause()
    reset_state()
    with transaction.atomic():
        Tag.objects.create(name="in-tx")
        result = lookup.delay("in-tx")
    assert result.get(timeout=20) == {"found": True, "db": "default"}


def test_mode_replica_ignores_the_mark(worker, routed, replica):
    routed(CELERY_MODE="replica", MAX_LAG_SECONDS=3600)
    replica.pause()
    reset_state()
    Tag.objects.create(name="r")
    assert run(lookup, "r") == {"found": False, "db": "replica"}


def test_mode_primary_and_per_task_override(worker, routed, replica):
    reset_state()
    assert run(lookup_on_primary, "x")["db"] == "default"
    routed(CELERY_MODE="primary", MAX_LAG_SECONDS=3600)
    reset_state()
    assert run(lookup, "x")["db"] == "default"


def test_a_request_that_enqueued_a_task_still_sets_its_cookie(worker, routed, replica):
    routed(
        MAX_LAG_SECONDS=3600,
        django={"ROOT_URLCONF": __name__, "MIDDLEWARE": [MIDDLEWARE, *settings.MIDDLEWARE]},
    )
    replica.pause()
    client = Client()
    task_id = client.post("/create/", {"name": "c"}).json()["task"]
    assert COOKIE_NAME in client.cookies
    assert client.get("/read/c/").json() == {"found": True, "db": "default"}
    assert lookup.AsyncResult(task_id).get(timeout=20) == {"found": True, "db": "default"}


def test_eager_tasks_follow_the_callers_write(routed, replica):
    """``task.apply()`` runs inline: no header is published, the caller's state counts."""
    connect_signals()
    routed(MAX_LAG_SECONDS=3600)
    replica.pause()
    reset_state()
    assert lookup.apply(args=("e",)).get() == {"found": False, "db": "replica"}
    Tag.objects.create(name="e")
    assert lookup.apply(args=("e",)).get() == {"found": True, "db": "default"}
    # The task's state ended with it: the caller is still pinned by its own write.
    assert Tag.objects.all().db == "default"
