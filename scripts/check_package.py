"""Run inside a venv holding only the built wheel (and Django): imports stay light."""

import importlib
import importlib.util
import subprocess
import sys
from importlib.metadata import files, version

OPTIONAL = ("rest_framework", "serpy", "redis", "django_redis", "celery", "psqlextra")
CONCERNS = ("serializers", "cache", "denorm", "partitioning", "routers")

missing = [m for m in OPTIONAL if importlib.util.find_spec(m) is not None]
if missing:
    sys.exit(f"expected a venv without optional dependencies, found: {missing}")

shipped = {str(f) for f in files("django-scalekit") or ()}
assert "django_scalekit/py.typed" in shipped, "py.typed missing from the wheel"

for concern in CONCERNS:
    code = (
        "import django; from django.conf import settings; "
        "settings.configure(INSTALLED_APPS=['django_scalekit']); django.setup(); "
        f"import django_scalekit.{concern}; "
        "from django.core.management import call_command; call_command('check')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
print(f"django-scalekit {version('django-scalekit')}: wheel OK, {len(CONCERNS)} concerns import")
