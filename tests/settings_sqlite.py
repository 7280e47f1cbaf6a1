"""The test settings on SQLite, for the tests that need a database other than PostgreSQL.

Only system checks run against it (in a subprocess): the test app's trigger and
deferred counters must be reported there.
"""

from tests.settings import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "psqlextra"]  # noqa: F405
