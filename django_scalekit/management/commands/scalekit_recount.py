"""``manage.py scalekit_recount [--dry-run] [app.Model.field ...]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_scalekit.denorm.counters import Counter, all_counters, find
from django_scalekit.denorm.recount import recount


class Command(BaseCommand):
    help = (
        "Set denormalized counters to the real COUNT of their children, in small "
        "set-based batches, and report the rows that had drifted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "counters",
            nargs="*",
            metavar="app.Model.field",
            help="Counters to recount (app.Model.field, app.Model or app); all by default.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report drifted rows; write nothing."
        )
        parser.add_argument("--batch-size", type=int, help="Parents per batch.")
        parser.add_argument("--database", help="Database alias (default: the router's choice).")

    def handle(self, *args: str, **options: Any) -> None:
        labels = options["counters"]
        counters: list[Counter] = []
        for label in labels or [c.label for c in all_counters()]:
            found = find(label)
            if not found:
                known = ", ".join(c.label for c in all_counters()) or "none"
                raise CommandError(f"{label!r} is not a counter. Counters: {known}.")
            counters.extend(c for c in found if c not in counters)
        dry_run = options["dry_run"]
        for counter in counters:
            result = recount(
                counter,
                batch_size=options["batch_size"],
                dry_run=dry_run,
                using=options["database"],
            )
            verb = "would fix" if dry_run else "fixed"
            self.stdout.write(
                f"{result.counter}: {result.parents} parents in {result.batches} batches, "
                f"{verb} {result.drifted} drifted"
            )
            for key, stored, real in result.rows:
                self.stdout.write(f"  {key}: stored {stored}, real {real}")
            if result.drifted > len(result.rows):
                self.stdout.write(f"  ... and {result.drifted - len(result.rows)} more")
