"""The cache's write-path receivers are connected only in projects that use the cache."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.contenttypes", "django_scalekit"],
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    {extra}
)
django.setup()
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_delete
from django_scalekit.cache import CachedQuerySet
print("receivers", post_delete.has_listeners(ContentType))
try:
    CachedQuerySet(model=ContentType).cached().count()
except ImproperlyConfigured as exc:
    print("refused", "SCALEKIT_CACHE" in str(exc))
"""


def run(extra: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.replace("{extra}", extra)],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout + out.stderr


def test_projects_without_the_cache_keep_fast_deletes_and_pay_nothing_per_write():
    out = run("")
    assert "receivers False" in out
    assert "refused True" in out  # a cached read says how to switch the cache on


def test_defining_the_setting_switches_the_receivers_on():
    out = run("SCALEKIT_CACHE={},")
    assert "receivers True" in out
    assert "refused True" not in out
