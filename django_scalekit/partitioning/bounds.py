"""Calendar-aligned partition bounds in a chosen time zone.

A bound is a value of the partition key's type: an aware ``datetime`` (in UTC)
for ``timestamptz``, a naive ``datetime`` (wall-clock time) for ``timestamp``
and a ``date`` for ``date``. Bounds depend only on the value and the zone,
never on when maintenance runs, so runs at any hour produce the same ranges.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
import zoneinfo
from typing import TypeAlias

Bound: TypeAlias = dt.datetime | dt.date

UTC = dt.UTC
_MONTHS = {"month": 1, "quarter": 3, "year": 12}

__all__ = ["Bound", "add", "floor", "slot", "subtract"]


def _local_date(value: Bound, tz: zoneinfo.ZoneInfo) -> dt.date:
    if isinstance(value, dt.datetime):
        return (value.astimezone(tz) if value.tzinfo else value).date()
    return value


def _from_local_date(day: dt.date, like: Bound, tz: zoneinfo.ZoneInfo) -> Bound:
    if isinstance(like, dt.datetime):
        if like.tzinfo:
            # A local midnight that does not exist (a DST jump at midnight) maps,
            # with fold=0, to the first instant after the jump: still one fixed value.
            return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(UTC)
        return dt.datetime.combine(day, dt.time())
    return day


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = _calendar.monthrange(year, month + 1)[1]
    return day.replace(year=year, month=month + 1, day=min(day.day, last))


def _floor_date(day: dt.date, interval: str) -> dt.date:
    if interval == "day":
        return day
    if interval == "week":  # ISO weeks start on Monday, as date_trunc('week') does
        return day - dt.timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    if interval == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if interval == "year":
        return day.replace(month=1, day=1)
    raise ValueError(f"unknown interval {interval!r}")


def floor(value: Bound, interval: str, tz: zoneinfo.ZoneInfo) -> Bound:
    """The start of the ``interval`` holding ``value`` in zone ``tz``."""
    if interval == "hour":
        if not isinstance(value, dt.datetime):
            raise ValueError("an hourly interval needs a datetime partition key, not a date")
        if value.tzinfo is None:
            return value.replace(minute=0, second=0, microsecond=0)
        # Keep the fold: the repeated hour of a DST fall-back is two distinct slots.
        local = value.astimezone(tz)
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    return _from_local_date(_floor_date(_local_date(value, tz), interval), value, tz)


def add(start: Bound, interval: str, tz: zoneinfo.ZoneInfo, count: int = 1) -> Bound:
    """``start`` (a floored value) moved by ``count`` intervals, calendar-aligned."""
    if interval == "hour":
        if not isinstance(start, dt.datetime):
            raise ValueError("an hourly interval needs a datetime partition key, not a date")
        if start.tzinfo is None:
            return start + dt.timedelta(hours=count)
        return start.astimezone(UTC) + dt.timedelta(hours=count)  # absolute hours
    day = _local_date(start, tz)
    if interval == "day":
        day = day + dt.timedelta(days=count)
    elif interval == "week":
        day = day + dt.timedelta(weeks=count)
    else:
        day = _add_months(day, _MONTHS[interval] * count)
    return _from_local_date(day, start, tz)


def slot(value: Bound, interval: str, tz: zoneinfo.ZoneInfo) -> tuple[Bound, Bound]:
    """The ``[lower, upper)`` range of the interval holding ``value``."""
    lower = floor(value, interval, tz)
    return lower, add(lower, interval, tz)


def subtract(value: Bound, amount: int, unit: str, tz: zoneinfo.ZoneInfo) -> Bound:
    """``value`` minus ``amount`` ``unit``s, on the calendar of ``tz`` (for retention)."""
    if unit == "hour":
        if isinstance(value, dt.datetime):
            if value.tzinfo:
                return value.astimezone(UTC) - dt.timedelta(hours=amount)
            return value - dt.timedelta(hours=amount)
        return value - dt.timedelta(days=(amount + 23) // 24)
    if isinstance(value, dt.datetime) and value.tzinfo:
        local = value.astimezone(tz).replace(tzinfo=None)
    else:
        local = value  # type: ignore[assignment]
    if unit in ("day", "week"):
        moved = local - dt.timedelta(days=amount * (7 if unit == "week" else 1))
    else:
        months = amount * {"month": 1, "quarter": 3, "year": 12}[unit]
        if isinstance(local, dt.datetime):
            moved = dt.datetime.combine(_add_months(local.date(), -months), local.time())
        else:
            moved = _add_months(local, -months)
    if isinstance(value, dt.datetime) and value.tzinfo:
        assert isinstance(moved, dt.datetime)
        return moved.replace(tzinfo=tz).astimezone(UTC)
    return moved
