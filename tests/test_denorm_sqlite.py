"""Off PostgreSQL: recount on SQLite (the demo project), and check E035 for the modes that
need PostgreSQL. Both run in a subprocess, with its own settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

RECOUNT = """
import io, json
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.contrib.auth import get_user_model
from django_scalekit.denorm import recount
from shop.models import Product, Review

call_command("migrate", verbosity=0)
user = get_user_model().objects.create(username="u")
products = [Product.objects.create(name=f"p{i}", price=1) for i in range(5)]
for i, p in enumerate(products[:-1]):  # the last one has no reviews
    for j in range(i + 1):
        Review.objects.create(product=p, user=user, rating=1, approved=j % 2 == 0)

def drift():
    with connection.cursor() as c:
        c.execute("UPDATE shop_product SET approved_review_count = 99 WHERE id IN (%s, %s)",
                  [products[0].pk, products[-1].pk])

def stored():
    return list(Product.objects.order_by("pk").values_list("approved_review_count", flat=True))

def command(*args):
    out = io.StringIO()
    call_command("scalekit_recount", *args, stdout=out)
    return out.getvalue()

out = {"keys": [p.pk for p in products]}
drift()
out["drifted"] = stored()
dry = recount(Product.approved_review_count, dry_run=True)
out["dry"] = [dry.drifted, dry.rows, stored()]
out["dry_command"] = command("--dry-run", "shop.Product.approved_review_count")
out["after_dry"] = stored()
with CaptureQueriesContext(connection) as queries:
    applied = recount(Product.approved_review_count, batch_size=2)
out["applied"] = [applied.drifted, applied.rows, applied.parents, applied.batches, stored()]
out["updates"] = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
out["again"] = recount(Product.approved_review_count).drifted
drift()
out["command"] = command("shop.Product.approved_review_count")
out["final"] = stored()
print(json.dumps(out))
"""


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """``python args`` from the repository root, without the rig's server URLs."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REPLICA_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**clean, **env},
        timeout=120,
    )


def test_recount_and_its_command_on_sqlite(tmp_path: Path) -> None:
    done = run(
        ["-c", RECOUNT],
        PYTHONPATH=os.pathsep.join([str(ROOT / "example"), str(ROOT)]),
        DJANGO_SETTINGS_MODULE="demo_project.settings",
        DEMO_SQLITE_PATH=str(tmp_path / "demo.sqlite3"),
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    first, *_, last = out["keys"]
    # Approved reviews (every other one) per product: 1, 1, 2, 2 and 0 for the last.
    real = [1, 1, 2, 2, 0]
    assert out["drifted"] == [99, 1, 2, 2, 99]
    assert out["dry"] == [2, [[first, 99, 1], [last, 99, 0]], out["drifted"]]
    assert f"would fix 2 drifted\n  {first}: stored 99, real 1\n" in out["dry_command"]
    assert out["after_dry"] == out["drifted"]
    assert out["applied"] == [2, [[first, 99, 1], [last, 99, 0]], 5, 3, real]
    # Set-based: one UPDATE for each batch that had drift (the first and the third).
    assert len(out["updates"]) == 2
    assert all("COUNT(" in sql for sql in out["updates"])
    assert out["again"] == 0
    assert "5 parents in 1 batches, fixed 2 drifted" in out["command"]
    assert out["final"] == real


def test_e035_trigger_commit_and_deferred_modes_off_postgresql() -> None:
    done = run(["-m", "django", "check"], DJANGO_SETTINGS_MODULE="tests.settings_sqlite")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "(django_scalekit." in line]
    assert errors == [
        "testapp.Board: (django_scalekit.E035) testapp.Board.post_count: mode='trigger' "
        "needs PostgreSQL, but testapp.Post is written to 'default' (sqlite).",
        "testapp.Board: (django_scalekit.E035) testapp.Board.posts_deferred: mode='deferred' "
        "needs PostgreSQL, but testapp.Post is written to 'default' (sqlite).",
        "testapp.Board: (django_scalekit.E035) testapp.Board.posts_total: mode='trigger' "
        "needs PostgreSQL, but testapp.Post is written to 'default' (sqlite).",
        "testapp.Forum: (django_scalekit.E035) testapp.Forum.topic_count: mode='commit' "
        "needs PostgreSQL, but testapp.Topic is written to 'default' (sqlite).",
        "testapp.Forum: (django_scalekit.E035) testapp.Forum.topics_total: mode='commit' "
        "needs PostgreSQL, but testapp.Topic is written to 'default' (sqlite).",
    ]
    assert "Use mode='signals' on this database." in done.stderr
