"""The maintenance plan: which ranges to create, which partitions have expired.

Pure functions over what the catalog reported, so the same plan is printed by
``scalekit_partitions`` and executed by ``--apply``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from . import bounds
from .bounds import Bound
from .catalog import Partition
from .conf import ModelOptions

Action = Literal["create_default", "create", "finalize", "detach", "drop"]
# PostgreSQL keeps 63 bytes of a name, and names a table's array type "_" + name: at 63
# bytes, partitions differing only at the end would all want the same truncated "_..." type.
MAX_NAME_BYTES = 62
_NAME_FORMATS = {
    "hour": "%Y%m%d%H",
    "day": "%Y%m%d",
    "week": "%G_w%V",
    "month": "%Y%m",
    "year": "%Y",
}


@dataclass(frozen=True)
class Step:
    """One change. ``rows`` estimates the rows it touches (moved out of the default
    partition for ``create``; held by the partition for ``detach``/``drop``)."""

    action: Action
    name: str
    lower: Bound | None = None
    upper: Bound | None = None
    rows: int = 0
    allowed: bool = True  # False: destructive and ALLOW_DROP/--allow-drop not given


@dataclass(frozen=True)
class Plan:
    table: str
    key: str
    interval: str
    steps: tuple[Step, ...]
    partitions: tuple[Partition, ...] = ()
    default_rows: int = 0
    label: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def pending(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.allowed)


def as_key_value(now: dt.datetime, key_type: str, tz: zoneinfo.ZoneInfo) -> Bound:
    """``now`` in the partition key's own type."""
    aware = now if now.tzinfo else now.replace(tzinfo=tz)
    if key_type == "timestamp with time zone":
        return aware.astimezone(dt.UTC)
    local = aware.astimezone(tz).replace(tzinfo=None)
    return local if key_type == "timestamp without time zone" else local.date()


def _uncovered(lower: Bound, upper: Bound, taken: list[tuple[Bound | None, Bound | None]]):  # type: ignore[no-untyped-def]
    """Parts of ``[lower, upper)`` no existing range covers."""
    pieces: list[tuple[Bound, Bound]] = []
    cursor = lower
    for lo, hi in taken:  # sorted by lower bound, MINVALUE first
        if hi is not None and hi <= cursor:
            continue
        if lo is not None and lo >= upper:
            break
        if lo is not None and lo > cursor:
            pieces.append((cursor, lo))
        cursor = upper if hi is None else max(cursor, hi)  # type: ignore[type-var]
        if cursor >= upper:  # type: ignore[operator]
            break
    if cursor < upper:  # type: ignore[operator]
        pieces.append((cursor, upper))
    return pieces


def partition_name(
    table: str, lower: Bound, interval: str, tz: zoneinfo.ZoneInfo, aligned: bool
) -> str:
    """``<table>_p<start>``, shortened with a hash of the table name to fit 63 bytes."""
    local: Bound = lower
    if isinstance(lower, dt.datetime) and lower.tzinfo:
        local = lower.astimezone(tz)
    if not aligned:
        fmt = "%Y%m%d_%H%M%S" if isinstance(local, dt.datetime) else "%Y%m%d"
        suffix = "p" + local.strftime(fmt)
    elif interval == "quarter":
        suffix = f"p{local.year}q{(local.month - 1) // 3 + 1}"
    else:
        suffix = "p" + local.strftime(_NAME_FORMATS[interval])
    if interval == "hour" and aligned and isinstance(local, dt.datetime) and local.fold:
        suffix += "b"  # the second 01:00 of a DST fall-back
    name = f"{table}_{suffix}"
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.md5(table.encode(), usedforsecurity=False).hexdigest()[:8]
    room = MAX_NAME_BYTES - len(f"_{digest}_{suffix}".encode())
    head = table.encode()[:room].decode(errors="ignore")
    return f"{head}_{digest}_{suffix}"


def unique_names(wanted: list[str], is_taken: Callable[[list[str]], set[str]]) -> list[str]:
    """Make each name unique among themselves and the relations that exist."""
    result: list[str] = []
    taken = is_taken(wanted) if wanted else set()
    for name in wanted:
        candidate, n = name, 1
        while candidate in taken or candidate in result:
            n += 1
            tail = f"_{n}"
            candidate = name.encode()[: MAX_NAME_BYTES - len(tail)].decode(errors="ignore") + tail
            taken |= is_taken([candidate])
        result.append(candidate)
    return result


def expiry_cutoff(now_value: Bound, options: ModelOptions, tz: zoneinfo.ZoneInfo) -> Bound | None:
    if options.retention is None:
        return None
    amount, unit = options.retention
    return bounds.subtract(now_value, amount, unit, tz)


def compute(
    *,
    table: str,
    key: str,
    key_type: str,
    partitions: Iterable[Partition],
    options: ModelOptions,
    now: dt.datetime,
    default_hours: Iterable[tuple[Bound | None, int]] = (),
    allow_drop: bool = False,
    is_taken: Callable[[list[str]], set[str]] = lambda names: set(),
    label: str = "",
) -> Plan:
    """The steps that bring the table to: every slot from the oldest kept partition to
    ``premake`` intervals ahead (or to the newest partition, if that is further) covered
    exactly once, no row left in the DEFAULT partition, and no partition whose upper
    bound is older than the retention."""
    tz = zoneinfo.ZoneInfo(options.timezone)
    interval = options.interval
    parts = sorted(partitions, key=lambda p: (p.lower is not None, p.lower or 0))  # type: ignore[arg-type]
    ranged = [p for p in parts if not p.default]
    default = next((p for p in parts if p.default), None)
    now_value = as_key_value(now, key_type, tz)
    cutoff = expiry_cutoff(now_value, options, tz)

    def expired(p: Partition) -> bool:
        return cutoff is not None and p.upper is not None and p.upper <= cutoff  # type: ignore[operator]

    steps: list[Step] = []
    for p in ranged:
        if p.detach_pending:  # an interrupted DETACH ... CONCURRENTLY: complete it
            if expired(p) and options.on_expire == "drop" and allow_drop:
                steps.append(Step("drop", p.name, p.lower, p.upper, p.rows))
            else:
                steps.append(Step("finalize", p.name, p.lower, p.upper, p.rows))
    kept = [p for p in ranged if not p.detach_pending]
    taken = [(p.lower, p.upper) for p in kept]

    if options.default_partition and default is None:
        steps.append(Step("create_default", f"{table}_default"))

    # Rows waiting in the DEFAULT partition get their slot created, whatever its age.
    waiting: dict[Bound, int] = {}
    needed: dict[Bound, Bound] = {}
    for hour, count in default_hours:
        if hour is None:  # a NULL key: no range can take these rows
            continue
        for value in {hour, _hour_end(hour)}:
            lo, hi = bounds.slot(value, interval, tz)
            needed[lo] = hi
        lo = bounds.floor(hour, interval, tz)
        waiting[lo] = waiting.get(lo, 0) + count

    # Slots to cover: from the oldest partition (or waiting row, or now) to premake ahead
    # or to the newest partition (or waiting row), whichever is further, so that every gap
    # is filled; but never a slot that would already be expired.
    floor_now = bounds.floor(now_value, interval, tz)
    known = [b for p in kept for b in (p.lower, p.upper) if b is not None]
    start = bounds.floor(min([now_value, *known, *needed]), interval, tz)  # type: ignore[type-var]
    if cutoff is not None:
        start = max(start, bounds.floor(cutoff, interval, tz))  # type: ignore[type-var]
    end = bounds.add(floor_now, interval, tz, options.premake + 1)
    newest = max([end, *known, *needed.values()])  # type: ignore[type-var]
    slots = dict(needed)
    cut: dict[Bound, Bound] = {}  # past premake, a slot is filled only up to the newest bound
    cursor = start
    while cursor < newest:  # type: ignore[operator]
        nxt = bounds.add(cursor, interval, tz)
        slots.setdefault(cursor, nxt)
        if nxt > newest:  # type: ignore[operator]
            cut[cursor] = newest
        cursor = nxt

    creates: list[tuple[Bound, Bound, bool, int]] = []
    first = 0  # ranges never overlap, so sorted by lower bound they are sorted by upper too
    for lo in sorted(slots):  # type: ignore[type-var]
        hi = slots[lo]
        while first < len(taken) and taken[first][1] is not None and taken[first][1] <= lo:  # type: ignore[operator]
            first += 1
        for piece_lo, piece_hi in _uncovered(lo, cut.get(lo, hi), taken[first:]):
            aligned = (piece_lo, piece_hi) == (lo, hi)
            creates.append((piece_lo, piece_hi, aligned, waiting.get(lo, 0) if aligned else 0))
    wanted = [partition_name(table, lo, interval, tz, aligned) for lo, _, aligned, _ in creates]
    if options.default_partition and default is None:
        wanted.insert(0, steps[-1].name)
    names = unique_names(wanted, is_taken)
    if options.default_partition and default is None:
        steps[-1] = Step("create_default", names.pop(0))
    for name, (lo, hi, _, rows) in zip(names, creates, strict=True):
        steps.append(Step("create", name, lo, hi, rows))

    for p in kept:
        if expired(p):
            if options.on_expire == "drop":
                steps.append(Step("drop", p.name, p.lower, p.upper, p.rows, allowed=allow_drop))
            else:
                steps.append(Step("detach", p.name, p.lower, p.upper, p.rows))
    notes: list[str] = []
    if default is not None and not options.default_partition:
        notes.append(
            f"a DEFAULT partition {default.name!r} exists although default_partition=False"
        )
    return Plan(
        table=table,
        key=key,
        interval=interval,
        steps=tuple(steps),
        partitions=tuple(parts),
        default_rows=sum(c for _, c in default_hours),
        label=label,
        notes=tuple(notes),
    )


def _hour_end(value: Bound) -> Bound:
    if isinstance(value, dt.datetime):
        return value + dt.timedelta(minutes=59, seconds=59, microseconds=999999)
    return value
