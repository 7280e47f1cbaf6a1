"""Every check CI runs: ``nox`` (all sessions) is the test command.

Legs: Python 3.11 + Django 5.2 LTS (with django-postgres-extra) and Python 3.12 +
Django 6.1 (without it: it would downgrade Django). Each leg asserts the Django
version it meant to test.
"""

from __future__ import annotations

import glob
import os

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
# `nox` alone runs these (the test command); `nox -s bench` runs the benchmarks.
nox.options.sessions = ["tests", "lint", "typing", "docs", "package", "demo"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
LEGS = [
    # (python, django, extras)
    ("3.11", "5.2", "all,partitioning"),
    ("3.12", "6.1", "all"),
]


def group(name: str) -> list[str]:
    return nox.project.dependency_groups(PYPROJECT, name)


@nox.session(name="tests")
@nox.parametrize(("python", "django", "extras"), LEGS, ids=[f"django{d}" for _, d, _ in LEGS])
def tests(session: nox.Session, django: str, extras: str) -> None:
    """The test suite against a real primary + replica, Redis and a Celery worker."""
    session.install("-e", f".[{extras}]", f"django~={django}.0", *group("test"))
    session.run("python", "-m", "pytest", *session.posargs, env={"SCALEKIT_EXPECT_DJANGO": django})


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.12")
def typing(session: nox.Session) -> None:
    session.install("-e", ".[all]", "django~=6.1.0", *group("test"), *group("typing"))
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    session.install(*group("docs"))
    session.run("mkdocs", "build", "--strict", "--site-dir", f"{session.create_tmp()}/site")


@nox.session(reuse_venv=False)
def package(session: nox.Session) -> None:
    """The wheel installs alone and each concern imports with Django only."""
    tmp = session.create_tmp()
    session.install("build")
    session.run("python", "-m", "build", "--wheel", "--outdir", f"{tmp}/dist", ".")
    (wheel,) = glob.glob(os.path.abspath(f"{tmp}/dist/*.whl"))
    session.install(wheel)
    session.run("python", "scripts/check_package.py")
    session.install(f"django-scalekit[all] @ file://{wheel}")
    session.run("python", "-c", "import rest_framework, serpy, django_redis, celery, psycopg")


@nox.session
def demo(session: nox.Session) -> None:
    """The README's demo, on SQLite and local memory (no server)."""
    session.install("-e", ".[drf]")
    session.run("python", "example/manage.py", "demo", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Side-by-side benchmarks, not part of the test command: ``nox -s bench -- NAME``."""
    extra = group("bench") if "bench" in PYPROJECT.get("dependency-groups", {}) else []
    session.install("-e", ".[all,partitioning]", "django~=5.2.0", *group("test"), *extra)
    # django-counter-field 2.0 (and the django-model-changes it needs) declare Python >= 3.14
    # although their code runs on 3.11; its 0.x releases no longer build (setup.py imports
    # pip.req). The denorm benchmark compares against it when it is installed.
    # (uv has no --ignore-requires-python: it is told the target is 3.14 instead)
    uv = session.venv_backend == "uv"
    session.install(
        "--no-deps",
        *(["--python-version", "3.14"] if uv else ["--ignore-requires-python"]),
        "django-counter-field==2.0.0",
        "django-model-changes==1.0.3",
    )
    scripts = sorted(glob.glob("benchmarks/[!_]*.py"))
    for name in session.posargs or [os.path.basename(p)[:-3] for p in scripts]:
        session.run("python", f"benchmarks/{name}.py")
