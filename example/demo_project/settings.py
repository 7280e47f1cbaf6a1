"""Settings of the demo project.

With no environment variables it needs no server: SQLite in ``example/demo.sqlite3`` and
the local-memory cache. ``DATABASE_URL`` (``postgres://user:pass@host:port/name``),
``REPLICA_URL`` (a read replica of it) and ``REDIS_URL`` (``redis://host:port/db``)
switch to the real servers, so the same report can be read on production-like storage.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def database_from_url(url: str) -> dict[str, Any]:
    """A DATABASES entry for a ``postgres://`` URL (urllib: no extra dependency)."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(f"{url!r}: the demo supports postgres:// URLs only.")
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is None:
        raise ImproperlyConfigured(
            "A postgres:// URL needs psycopg: pip install 'psycopg[binary]'."
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        "OPTIONS": {"connect_timeout": 5, **dict(parse_qsl(parts.query))},
    }


def cache_from_url(url: str | None) -> dict[str, Any]:
    """Redis through django-redis when ``url`` is set, else the in-process cache."""
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "demo"}
    if importlib.util.find_spec("django_redis") is None:
        raise ImproperlyConfigured("REDIS_URL needs django-redis: pip install django-redis.")
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    }


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
# Off by default so that the timings are not those of a debug cursor.
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_scalekit",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
STATIC_URL = "static/"

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REPLICA_URL = os.environ.get("REPLICA_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")

if DATABASE_URL:
    DATABASES: dict[str, dict[str, Any]] = {"default": database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DEMO_SQLITE_PATH", str(BASE_DIR / "demo.sqlite3")),
        }
    }
if REPLICA_URL:
    # Filled by replication from "default": Django must neither migrate nor create it.
    DATABASES["replica"] = {**database_from_url(REPLICA_URL), "TEST": {"MIRROR": "default"}}

CACHES = {"default": cache_from_url(REDIS_URL)}
# Defining it switches django_scalekit.cache on (its write-path receivers); the defaults
# cache in CACHES["default"], locmem or Redis as above.
SCALEKIT_CACHE: dict[str, Any] = {}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

REST_FRAMEWORK = {
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
}
