#!/usr/bin/env python
"""Django's command-line utility for the django-scalekit demo project."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent


def main() -> None:
    # Runnable as `python example/manage.py` from anywhere: the project lives next to this
    # file, and a checkout's django_scalekit is used when the library is not installed.
    sys.path.insert(0, str(HERE))
    if (REPO_ROOT / "django_scalekit").is_dir() and str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Django is not installed: run `pip install -r example/requirements.txt`."
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
