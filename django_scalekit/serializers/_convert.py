"""Value converters: the JSON DRF writes for each type, without DRF.

Each function takes a value that is not ``None`` (the compiled code checks that
first) and returns something ``json.dumps`` and orjson accept unchanged.
"""

from __future__ import annotations

import datetime
import decimal
import enum
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models.manager import BaseManager
from django.utils import timezone
from django.utils.duration import duration_string

UTC = datetime.UTC


def current_tz() -> datetime.tzinfo | None:
    """The time zone DRF would render datetimes in (``None`` without ``USE_TZ``).

    UTC is returned as ``datetime.timezone.utc``, the tzinfo Django's PostgreSQL
    backend puts on the values it loads, so they need no conversion.
    """
    if not settings.USE_TZ:
        return None
    tz = timezone.get_current_timezone()
    return UTC if getattr(tz, "key", None) == "UTC" else tz


def iso_datetime(value: Any, tz: datetime.tzinfo | None) -> Any:
    # DRF's DateTimeField: empty values are null, strings pass through, aware values
    # move to the current time zone, and a UTC offset is written as "Z".
    if not value:
        return None
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        if tz is not None:
            value = timezone.make_aware(value, tz)
    elif tz is None:
        value = timezone.make_naive(value, UTC)
    elif value.tzinfo is not tz:
        value = value.astimezone(tz)
    text: str = value.isoformat()
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    return text


def strftime_datetime(fmt: str) -> Callable[[Any, datetime.tzinfo | None], Any]:
    def convert(value: Any, tz: datetime.tzinfo | None) -> Any:
        if not value:
            return None
        if isinstance(value, str):
            return value
        if value.tzinfo is None:
            if tz is not None:
                value = timezone.make_aware(value, tz)
        elif tz is None:
            value = timezone.make_naive(value, UTC)
        else:
            value = value.astimezone(tz)
        return value.strftime(fmt)

    return convert


def iso_date(value: Any) -> Any:
    if not value:
        return None
    if isinstance(value, str):
        return value
    return value.isoformat()


def iso_time(value: Any) -> Any:
    if isinstance(value, str):
        return value
    return value.isoformat()


def duration(value: Any) -> str:
    return duration_string(value)


def decimal_converter(
    decimal_places: int | None, max_digits: int | None, as_string: bool
) -> Callable[[Any], Any]:
    """DRF's DecimalField output: quantized to the field's places, ``'{:f}'`` formatted."""
    exponent = None if decimal_places is None else decimal.Decimal(".1") ** decimal_places
    context = decimal.getcontext().copy()
    if max_digits is not None:
        context.prec = max_digits

    def convert(value: Any) -> Any:
        if not isinstance(value, decimal.Decimal):
            value = decimal.Decimal(str(value).strip())
        if exponent is not None:
            value = value.quantize(exponent, context=context)
        if as_string:
            return f"{value:f}"
        return float(value)

    if as_string and decimal_places is not None and decimal_places <= 6:
        # Quantized to at most 6 places, str() never uses an exponent: same text, faster.
        def convert_short(value: Any) -> Any:
            if not isinstance(value, decimal.Decimal):
                value = decimal.Decimal(str(value).strip())
            return str(value.quantize(exponent, context=context))

        return convert_short
    return convert


def decimal_fast_path(
    decimal_places: int | None, max_digits: int | None, as_string: bool
) -> tuple[decimal.Decimal, decimal.Context] | None:
    """(exponent, context) when ``str(value.quantize(...))`` equals DRF's text, else None.

    Quantized to at most 6 places, ``str()`` never uses an exponent.
    """
    if not as_string or decimal_places is None or decimal_places > 6:
        return None
    context = decimal.getcontext().copy()
    if max_digits is not None:
        context.prec = max_digits
    return decimal.Decimal(".1") ** decimal_places, context


def uuid_str(value: Any) -> str:
    return str(value)


def enum_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def file_url(value: Any, request: Any) -> Any:
    # DRF's FileField with UPLOADED_FILES_USE_URL: an absolute URL when a request is
    # in the context, the storage URL otherwise, null for an empty file.
    if not value:
        return None
    try:
        url = value.url
    except AttributeError:
        return None
    if request is not None:
        return request.build_absolute_uri(url)
    return url


def items(value: Any) -> Any:
    """What a ``many`` field iterates: a related manager's ``all()``, or the value itself."""
    if isinstance(value, BaseManager):
        return value.all()
    return value
