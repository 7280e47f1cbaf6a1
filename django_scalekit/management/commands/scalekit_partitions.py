"""``manage.py scalekit_partitions``: print the partition plan; change things only with --apply."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from django_scalekit.partitioning import PartitioningError, Plan, Step, maintain, plan
from django_scalekit.partitioning.conf import settings


def _bound(value: object) -> str:
    return "MINVALUE/MAXVALUE" if value is None else str(value)


def describe(step: Step) -> str:
    text = f"  {step.action:<14} {step.name}"
    if step.action != "create_default":
        text += f"  [{_bound(step.lower)}, {_bound(step.upper)})"
    if step.action == "create" and step.rows:
        text += f"  moves {step.rows:,} rows out of the DEFAULT partition"
    elif step.action in ("detach", "drop", "finalize"):
        text += f"  ~{step.rows:,} rows"
        if step.action == "detach":
            text += " (table kept)"
    if not step.allowed:
        text += "  SKIPPED: destructive, needs --allow-drop or ALLOW_DROP"
    return text


class Command(BaseCommand):
    help = (
        "Show the partitions to create, detach or drop for the models in "
        "SCALEKIT_PARTITIONING['MODELS']. Changes nothing unless --apply is given; "
        "dropping also needs --allow-drop (or ALLOW_DROP)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="Carry out the plan.")
        parser.add_argument(
            "--allow-drop", action="store_true", help="Allow DROP of expired partitions."
        )
        parser.add_argument(
            "--model",
            action="append",
            dest="models",
            metavar="APP_LABEL.MODEL",
            help="Only this model (repeatable). Default: every configured model.",
        )
        parser.add_argument("--database", default="default", help="Database alias.")
        parser.add_argument(
            "--no-wait",
            action="store_true",
            help="Skip a model whose maintenance is already running elsewhere.",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit with status 1 if a DEFAULT partition holds rows or changes are due.",
        )
        parser.add_argument("--now", help="Plan as if it were this ISO 8601 moment.")

    def handle(self, *args: Any, **options: Any) -> None:
        labels = options["models"] or list(settings.MODELS)
        if not labels:
            self.stdout.write("No models in SCALEKIT_PARTITIONING['MODELS'].")
            return
        now: dt.datetime | None = None
        if options["now"]:
            now = parse_datetime(options["now"])
            if now is None:
                raise CommandError(f"--now {options['now']!r} is not an ISO 8601 datetime.")
        allow_drop = True if options["allow_drop"] else None
        due = False
        for label in labels:
            try:
                if options["apply"]:
                    result = maintain(
                        label,
                        using=options["database"],
                        now=now,
                        allow_drop=allow_drop,
                        wait=not options["no_wait"],
                    )
                    if result.skipped:
                        self.stdout.write(f"{label}: skipped, another run holds its lock.")
                        continue
                    current = result.plan
                else:
                    current = plan(label, using=options["database"], now=now, allow_drop=allow_drop)
            except (PartitioningError, LookupError, ValueError) as exc:
                raise CommandError(f"{label}: {exc}") from exc
            self._print(label, current)
            due = due or bool(current.default_rows) or bool(current.pending)
        if not options["apply"]:
            self.stdout.write("Dry run: nothing changed. Run with --apply to make these changes.")
        if options["check"] and due:
            raise CommandError("partition maintenance is due", returncode=1)

    def _print(self, label: str, current: Plan) -> None:
        self.stdout.write(
            f"{label} (table {current.table}, key {current.key}, interval {current.interval}): "
            f"{len(current.partitions)} partitions, {len(current.steps)} steps"
        )
        for step in current.steps:
            self.stdout.write(describe(step))
        if current.default_rows:
            self.stdout.write(f"  DEFAULT partition holds {current.default_rows:,} rows")
        for note in current.notes:
            self.stdout.write(f"  note: {note}")
