"""Read-your-writes across requests: the signed cookie, sync and async views, a paused replica."""

# ruff: noqa: F811  (fixtures imported from test_routers_support)

from __future__ import annotations

import asyncio
import random
import time

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, Client
from django.urls import path

from django_scalekit.routers.middleware import COOKIE_NAME, COOKIE_SALT
from django_scalekit.routers.testing import served_by
from tests.rig.urls import conninfo
from tests.test_routers_support import (  # noqa: F401
    BOTH,
    MIDDLEWARE,
    close_async_connections,
    routed,
)
from tests.testapp.models import Tag

pytestmark = BOTH
BASE_MIDDLEWARE = tuple(settings.MIDDLEWARE)  # the test settings' own list


def _lookup(name: str) -> dict[str, object]:
    with served_by() as served:
        found = Tag.objects.filter(name=name).exists()
    return {"found": found, "db": served.aliases[-1]}


def create(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"pk": Tag.objects.create(name=request.POST["name"]).pk})


def read(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse(_lookup(name))


async def acreate(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"pk": (await Tag.objects.acreate(name=request.POST["name"])).pk})


async def aread(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse(await sync_to_async(_lookup)(name))


# Steps of the interleaving test: the writing request stops half-way.
steps: dict[str, asyncio.Event] = {}


async def write_then_wait(request: HttpRequest) -> JsonResponse:
    await Tag.objects.acreate(name="w")
    steps["wrote"].set()
    await steps["reader_done"].wait()
    return JsonResponse(await sync_to_async(_lookup)("w"))


async def wait_then_read(request: HttpRequest) -> JsonResponse:
    await steps["wrote"].wait()
    try:
        return JsonResponse(await sync_to_async(_lookup)("w"))
    finally:
        steps["reader_done"].set()


def remember(request: HttpRequest) -> JsonResponse:
    request.session["who"] = request.POST["who"]  # saved by SessionMiddleware on the way out
    return JsonResponse({})


def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"who": request.session.get("who")})


urlpatterns = [
    path("remember/", remember),
    path("whoami/", whoami),
    path("create/", create),
    path("read/<str:name>/", read),
    path("acreate/", acreate),
    path("aread/<str:name>/", aread),
    path("write-then-wait/", write_then_wait),
    path("wait-then-read/", wait_then_read),
]


@pytest.fixture
def site(routed):
    # A paused replica must stay in use for clients without a mark, however long a test runs.
    routed(
        MAX_LAG_SECONDS=3600,
        django={"ROOT_URLCONF": __name__, "MIDDLEWARE": [MIDDLEWARE, *BASE_MIDDLEWARE]},
    )


def test_the_next_request_never_reads_stale_rows(site, routed, replica):
    routed(MAX_LAG_SECONDS=3600)  # the paused replica stays in use for strangers
    writer, stranger = Client(), Client()
    replica.pause()
    stale = 0
    for i in range(1000):
        assert writer.post("/create/", {"name": f"t{i}"}).status_code == 200
        got = writer.get(f"/read/t{i}/").json()
        stale += not got["found"]
        assert got["db"] == "default"
    assert stale == 0
    # Without the cookie the same read goes to the (paused, stale) replica.
    assert stranger.get("/read/t0/").json() == {"found": False, "db": "replica"}


def test_reads_return_to_the_replica_once_it_has_replayed_the_write(site, replica):
    client = Client()
    client.post("/create/", {"name": "a"})
    assert COOKIE_NAME in client.cookies
    start = time.monotonic()
    while (got := client.get("/read/a/").json())["db"] != "replica":
        assert got["found"]
        assert time.monotonic() - start < 2
        time.sleep(0.005)
    assert got["found"]
    assert time.monotonic() - start < 1.0  # one poll interval (100 ms) and replay
    assert client.cookies[COOKIE_NAME].value == ""  # deleted once caught up


def test_a_tampered_cookie_is_ignored(site, replica):
    client = Client()
    client.post("/create/", {"name": "a"})
    replica.pause()
    value = client.cookies[COOKIE_NAME].value
    lsn_part, signature = value.split(":", 1)
    client.cookies[COOKIE_NAME] = f"l{int(lsn_part[1:]) + 1}:{signature}"
    assert client.get("/read/a/").json()["db"] == "replica"
    client.cookies[COOKIE_NAME] = "l99999999999"  # unsigned
    assert client.get("/read/a/").json()["db"] == "replica"


def test_time_window_mark_keeps_reads_on_the_primary_until_it_ends(site):
    """Where the primary has no WAL position (not PostgreSQL) the cookie holds a time."""
    client = Client()
    response = HttpResponse()
    response.set_signed_cookie(COOKIE_NAME, f"t{time.time() + 0.3:.3f}", salt=COOKIE_SALT)
    client.cookies[COOKIE_NAME] = response.cookies[COOKIE_NAME].value
    assert client.get("/read/a/").json()["db"] == "default"
    time.sleep(0.35)
    assert client.get("/read/a/").json()["db"] == "replica"


def test_requests_that_only_read_set_no_cookie(site):
    client = Client()
    client.get("/read/a/")
    assert COOKIE_NAME not in client.cookies


def test_async_views_read_their_writes(site, replica):
    replica.pause()

    async def scenario() -> list[dict[str, object]]:
        client = AsyncClient()
        results = []
        try:
            for i in range(200):
                await client.post("/acreate/", {"name": f"a{i}"})
                results.append((await client.get(f"/aread/a{i}/")).json())
            results.append((await AsyncClient().get("/aread/a0/")).json())
        finally:
            await close_async_connections()
        return results

    *own, stranger = asyncio.run(scenario())
    assert all(r == {"found": True, "db": "default"} for r in own)
    assert stranger == {"found": False, "db": "replica"}


def test_interleaved_async_requests_do_not_leak_pins(site, replica):
    """The writer stops after its write; the reader runs in between on the same loop."""
    replica.pause()

    async def scenario() -> tuple[dict[str, object], dict[str, object]]:
        steps["wrote"], steps["reader_done"] = asyncio.Event(), asyncio.Event()
        try:
            w, r = await asyncio.gather(
                AsyncClient().post("/write-then-wait/"), AsyncClient().get("/wait-then-read/")
            )
        finally:
            await close_async_connections()
        return w.json(), r.json()

    writer, reader = asyncio.run(scenario())
    assert writer == {"found": True, "db": "default"}
    assert reader == {"found": False, "db": "replica"}


def test_sync_request_after_a_writing_request_on_the_same_thread(site, replica):
    """A pin must not survive into the next request handled by the same thread."""
    replica.pause()
    Client().post("/create/", {"name": "x"})
    assert Client().get("/read/x/").json() == {"found": False, "db": "replica"}


def test_stress_random_interleavings_of_async_requests(site, routed, replica):
    """Writers always read their own rows from the primary; readers are never pinned by them."""
    routed(MAX_LAG_SECONDS=3600)
    replica.pause()
    rng = random.Random(7)

    async def writer(i: int) -> list[dict[str, object]]:
        client = AsyncClient()
        await asyncio.sleep(rng.random() / 200)
        await client.post("/acreate/", {"name": f"s{i}"})
        await asyncio.sleep(rng.random() / 200)
        return [(await client.get(f"/aread/s{i}/")).json() for _ in range(2)]

    async def reader(i: int) -> list[dict[str, object]]:
        await asyncio.sleep(rng.random() / 200)
        return [(await AsyncClient().get(f"/aread/s{i}/")).json()]

    async def scenario() -> tuple[list[list[dict[str, object]]], list[list[dict[str, object]]]]:
        try:
            writes = [writer(i) for i in range(40)]
            reads = [reader(i) for i in range(40)]
            results = await asyncio.gather(*writes, *reads)
        finally:
            await close_async_connections()
        return results[:40], results[40:]

    writes, reads = asyncio.run(scenario())
    assert all(r == {"found": True, "db": "default"} for rs in writes for r in rs)
    assert all(r == {"found": False, "db": "replica"} for rs in reads for r in rs)


@pytest.fixture
def delayed_replica(replica):
    """The replica applies each commit 10 ms after it was made: reads race replay."""
    admin = psycopg.connect(
        **conninfo(connections["replica"].settings_dict, dbname="postgres"), autocommit=True
    )
    admin.execute("ALTER SYSTEM SET recovery_min_apply_delay = '10ms'")
    admin.execute("SELECT pg_reload_conf()")
    time.sleep(0.1)
    yield replica
    admin.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
    admin.execute("SELECT pg_reload_conf()")
    admin.close()


def test_no_stale_reads_while_replay_races_the_reads(site, routed, delayed_replica):
    """Reads move from the primary to the replica as it catches up, never too early."""
    routed(POLL_INTERVAL_MS=5)
    client = Client()
    rng = random.Random(3)
    served: list[str] = []
    for i in range(200):
        client.post("/create/", {"name": f"d{i}"})
        time.sleep(rng.random() / 50)  # 0-20 ms: replayed or not, about half and half
        got = client.get(f"/read/d{i}/").json()
        assert got["found"], f"stale read of d{i} from {got['db']}"
        served.append(str(got["db"]))
    assert {"default", "replica"} <= set(served)  # the race went both ways
    time.sleep(0.1)
    assert client.get("/read/d0/").json() == {"found": True, "db": "replica"}


class OuterTransaction:
    """A middleware that runs the rest of a POST's chain inside atomic()."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method != "POST":
            return self.get_response(request)
        with transaction.atomic():
            return self.get_response(request)


def test_write_mark_falls_back_to_a_time_window_inside_a_transaction(site, routed, replica):
    """Inside an open transaction there is no WAL position yet: the cookie holds a time."""
    routed(
        STICKY_SECONDS=0.5,
        MAX_LAG_SECONDS=3600,
        django={
            "MIDDLEWARE": [
                *BASE_MIDDLEWARE,
                "tests.test_routers_http.OuterTransaction",
                MIDDLEWARE,
            ]
        },
    )
    client = Client()
    replica.pause()
    client.post("/create/", {"name": "tx"})
    assert client.get("/read/tx/").json() == {"found": True, "db": "default"}
    time.sleep(0.6)
    assert client.get("/read/tx/").json() == {"found": False, "db": "replica"}


def test_sync_views_under_asgi_share_no_pin(site, replica):
    """Sync views run on one shared thread under ASGI: a POST's pin must not reach a GET."""
    replica.pause()

    async def scenario() -> dict[str, object]:
        try:
            await AsyncClient().post("/create/", {"name": "asgi"})
            return (await AsyncClient().get("/read/asgi/")).json()
        finally:
            await close_async_connections()

    assert asyncio.run(scenario()) == {"found": False, "db": "replica"}


def test_a_session_saved_on_the_way_out_is_read_back(site, replica):
    """Like a login: the session row is written by SessionMiddleware after the view."""
    client = Client()
    client.get("/whoami/")
    replica.pause()
    client.post("/remember/", {"who": "ada"})
    assert client.get("/whoami/").json() == {"who": "ada"}


def test_below_the_session_middleware_the_session_write_is_missed(site, routed, replica):
    """Why check E058 wants the middleware above SessionMiddleware."""
    routed(django={"MIDDLEWARE": [*BASE_MIDDLEWARE, MIDDLEWARE]})
    client = Client()
    client.get("/whoami/")
    replica.pause()
    client.post("/remember/", {"who": "ada"})
    assert client.get("/whoami/").json() == {"who": None}  # the old session, from the replica
