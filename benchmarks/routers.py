"""Routers: µs per ``db_for_read`` through Django's ConnectionRouter, and the time after a
write until reads return to the replica.

    nox -s bench -- routers
    .nox/tests-django5-2/bin/python benchmarks/routers.py      # needs django-multidb-router

Candidates, one run, interleaved rounds:
- no router: ``ConnectionRouter([])`` (Django falls back to ``default``);
- Django's documentation router (random replica, no state);
- django-multidb-router 0.11 ``PinningReplicaRouter`` (thread-local pin, round-robin);
- ours, ``PrimaryReplicaRouter``, in a request that has not written (the common read).
"""

from __future__ import annotations

import random
import statistics
import time

from _env import interleaved, setup, table

CALLS = 20_000


class DocsRouter:
    """The primary/replica router from Django's multiple-databases documentation."""

    def db_for_read(self, model, **hints):
        return random.choice(["replica"])

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        db_set = {"default", "replica"}
        if obj1._state.db in db_set and obj2._state.db in db_set:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return True


def per_call(router, model):
    def run():
        read = router.db_for_read
        for _ in range(CALLS):
            read(model)

    return run


def overhead() -> None:
    from django.conf import settings
    from django.db.utils import ConnectionRouter
    from django.test import override_settings

    settings.REPLICA_DATABASES = ["replica"]
    import multidb

    from django_scalekit.routers import PrimaryReplicaRouter
    from django_scalekit.routers.state import reset_state
    from tests.testapp.models import Tag

    with override_settings(SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}}):
        ours = ConnectionRouter([PrimaryReplicaRouter()])
        reset_state()
        assert ours.db_for_read(Tag) == "replica"
        candidates = {
            "no router": per_call(ConnectionRouter([]), Tag),
            "Django docs router": per_call(ConnectionRouter([DocsRouter()]), Tag),
            "multidb pinning 0.11": per_call(
                ConnectionRouter([multidb.PinningReplicaRouter()]), Tag
            ),
            "scalekit": per_call(ours, Tag),
        }
        times = interleaved(candidates, rounds=15)
    per = {name: [t / CALLS for t in samples] for name, samples in times.items()}
    print(f"µs per db_for_read through ConnectionRouter ({CALLS} calls x 15 rounds)")
    print(table(per, baseline="Django docs router", unit=1e-6, unit_name="µs"))


def return_to_replica(poll_ms: int, rounds: int = 20) -> list[float]:
    """Seconds from a committed write until the writer's reads go to the replica again."""
    from django.test import override_settings

    from django_scalekit.routers import PrimaryReplicaRouter
    from django_scalekit.routers.middleware import decode_mark, write_mark
    from django_scalekit.routers.state import State, begin, end
    from tests.testapp.models import Tag

    samples = []
    with override_settings(
        DATABASE_ROUTERS=[PrimaryReplicaRouter()],
        SCALEKIT_ROUTER={"REPLICAS": {"replica": 1}, "POLL_INTERVAL_MS": poll_ms},
    ):
        from django.db import router

        router._routers = None
        router.__dict__.pop("routers", None)
        for i in range(rounds):
            writing = State()
            token = begin(writing)
            Tag.objects.create(name=f"bench-{poll_ms}-{i}")
            mark = write_mark(writing)  # what the middleware puts in the cookie
            end(token)
            start = time.perf_counter()
            while True:
                reading = State()
                decode_mark(mark, reading)
                token = begin(reading)
                alias = router.db_for_read(Tag)
                end(token)
                if alias == "replica":
                    break
                time.sleep(0.0005)
            samples.append(time.perf_counter() - start)
            time.sleep(random.random() * poll_ms / 1000)  # land anywhere in the poll cycle
        router._routers = None
        router.__dict__.pop("routers", None)
    return samples


def catch_up() -> None:
    print()
    print("ms from a committed write until the writer's next read goes to the replica")
    print(f"{'':24}  {'min':>7}  {'median':>7}  {'max':>7}")
    for poll_ms in (100, 20):
        s = [x * 1000 for x in return_to_replica(poll_ms)]
        print(
            f"{'POLL_INTERVAL_MS=' + str(poll_ms):24}  {min(s):7.1f}  "
            f"{statistics.median(s):7.1f}  {max(s):7.1f}"
        )
    print("fixed windows elsewhere: multidb 15 s cookie, django_replicated 5 s, Rails 2 s")


if __name__ == "__main__":
    setup()
    overhead()
    catch_up()
