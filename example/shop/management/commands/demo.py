"""``manage.py demo``: migrate, seed a deterministic shop, print the before/after report."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connection

from shop import report, seed

DEFAULTS = {"products": 2000, "reviews_per_product": 10, "events": 200_000}
QUICK = {"products": 300, "reviews_per_product": 5, "events": 5_000}


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of 1 or more")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of 0 or more")
    return value


def describe_database() -> str:
    conf = connection.settings_dict
    if connection.vendor == "postgresql":
        version = connection.pg_version
        where = f"{conf['HOST']}:{conf['PORT']}/{conf['NAME']}"
        return f"PostgreSQL {version // 10000}.{version % 10000} at {where}"
    return f"{connection.display_name} {conf['NAME']}"


def describe_cache() -> str:
    conf = settings.CACHES["default"]
    backend = conf["BACKEND"].rsplit(".", 1)[-1]
    return f"{backend} {conf['LOCATION']}" if "redis" in backend.lower() else backend


def can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Command(BaseCommand):
    help = (
        "Seed the demo shop with deterministic data and print, for each django_scalekit "
        "subpackage, the plain Django figure next to the subpackage's."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--products", type=positive_int, help=f"default {DEFAULTS['products']:,}"
        )
        parser.add_argument(
            "--reviews-per-product",
            type=non_negative_int,
            help=f"default {DEFAULTS['reviews_per_product']}",
        )
        parser.add_argument(
            "--events", type=non_negative_int, help=f"default {DEFAULTS['events']:,}"
        )
        parser.add_argument(
            "--quick",
            action="store_true",
            help="a small shop and fewer timing runs (seconds, for CI); explicit sizes win",
        )
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        # The raw stream: the progress bar redraws with "\r" and no newline.
        err: TextIO = options.get("stderr") or sys.stderr
        base = QUICK if options["quick"] else DEFAULTS
        sizes = seed.Sizes(
            **{key: base[key] if options[key] is None else options[key] for key in base}
        )
        run = report.Run(repeats=3, reads=60) if options["quick"] else report.Run()

        self.check_cache()
        call_command("migrate", database=DEFAULT_DB_ALIAS, interactive=False, verbosity=0)
        self.stdout.write(f"database: {describe_database()}")
        self.stdout.write(f"cache:    {describe_cache()}")

        seeding = time.perf_counter()
        counts = seed.seed(sizes, options["seed"], seed.progress_to(err))
        summary = ", ".join(f"{n:,} {table}" for table, n in counts.items())
        self.stdout.write(
            f"data:     {summary} (seed {options['seed']}, {time.perf_counter() - seeding:.1f}s)"
        )
        self.stdout.write("")

        measuring = time.perf_counter()
        results = report.run_report(run, on_section=lambda name: err.write(f"measuring {name}\n"))
        self.stdout.write(report.render(results, unicode=can_encode(self.stdout, "\u2014\u00d7")))
        self.stdout.write(
            f"measured in {time.perf_counter() - measuring:.1f}s, "
            f"whole demo {time.perf_counter() - started:.1f}s"
        )

    def check_cache(self) -> None:
        """Fail early, with the URL, when the configured cache server is unreachable."""
        try:
            cache.set("scalekit-demo:ping", 1, 10)
            cache.delete("scalekit-demo:ping")
        except Exception as exc:
            raise CommandError(f"the cache ({describe_cache()}) is unreachable: {exc}") from exc
