"""Django settings for the test suite.

The servers come from ``DATABASE_URL``, ``REPLICA_URL`` and ``REDIS_URL``; when
they are unset, ``tests.rig.plugin`` starts throw-away ones and sets them.
"""

import importlib.util
import os

from tests.rig.urls import database_settings, redis_db

DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/scalekit")
REPLICA_URL = os.environ.get("REPLICA_URL", DATABASE_URL)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "tests.urls"
AUTH_USER_MODEL = "testapp.User"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "rest_framework",
    "django_scalekit",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

DATABASES = {
    "default": database_settings(DATABASE_URL),
    # A real streaming replica of "default": it receives the test database by
    # replication, so Django must not create it (MIRROR only swaps the NAME).
    "replica": {**database_settings(REPLICA_URL), "TEST": {"MIRROR": "default"}},
}

# Where django-postgres-extra installs (Django < 6), the primary uses its backend so
# PostgresPartitionedModel and its migrations work; it subclasses Django's own.
if importlib.util.find_spec("psqlextra") is not None:
    INSTALLED_APPS.append("psqlextra")
    for alias in DATABASES:
        DATABASES[alias]["ENGINE"] = "psqlextra.backend"

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    },
    "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}

# Defining it switches the cache's write-path receivers on (see docs/cache.md).
SCALEKIT_CACHE = {"CACHE": "default"}

CELERY_BROKER_URL = redis_db(REDIS_URL, 1)
CELERY_RESULT_BACKEND = redis_db(REDIS_URL, 2)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
