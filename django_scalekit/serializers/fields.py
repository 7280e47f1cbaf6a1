"""Fields: what to read from an object and how to turn it into JSON-ready data.

The API is serpy's (``attr``, ``call``, ``label``, ``required``, ``to_value``,
``as_getter``) plus DRF's ``source`` spelling. A field does no work per object:
the serializer compiles its fields once into a plain function, asking each field
for a snippet of Python code (``convert``) or, for a custom ``to_value``, calling
that method directly.
"""

from __future__ import annotations

import datetime
import decimal
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from django_scalekit.serializers import _convert
from django_scalekit.serializers.conf import settings

if TYPE_CHECKING:
    from django_scalekit.serializers._compile import Gen

__all__ = [
    "BoolField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "DurationField",
    "EnumField",
    "Field",
    "FileField",
    "FloatField",
    "ImageField",
    "IntField",
    "ListField",
    "MethodField",
    "PrimaryKeyRelatedField",
    "StrField",
    "TimeField",
    "UUIDField",
]


def _base_implementation(func: Callable[..., Any]) -> Callable[..., Any]:
    # serpy marks its default ``to_value`` this way; a field whose ``to_value`` lacks
    # the mark has a user override, which the compiled code then calls.
    func._serpy_base_implementation = True  # type: ignore[attr-defined]
    return func


class Field:
    """Copies a value from the object: ``obj.<attr or source or field name>``.

    ``attr="a.b"`` follows serpy: a ``None`` on the way raises ``AttributeError``.
    ``source="a.b"`` follows DRF's spelling but gives ``None`` when ``a`` is ``None``.
    ``source="*"`` passes the object itself. ``call=True`` calls the value.
    ``required=False`` omits the key when the attribute is missing and skips
    ``to_value`` for ``None``. Built-in typed fields always write ``None`` as
    ``null``; ``many=True`` converts each item of a list or related manager.
    """

    #: serpy: when True, the getter from ``as_getter`` receives the serializer first.
    getter_takes_serializer: ClassVar[bool] = False

    # Defaults as class attributes: a top-level serializer skips ``__init__`` work.
    attr: str | None = None
    source: str | None = None
    call: bool = False
    label: str | None = None
    required: bool = True
    many: bool = False
    help_text: str | None = None
    allow_null: bool | None = None

    def __init__(
        self,
        attr: str | None = None,
        call: bool = False,
        label: str | None = None,
        required: bool = True,
        *,
        source: str | None = None,
        many: bool = False,
        help_text: str | None = None,
        read_only: bool = True,
        allow_null: bool | None = None,
    ) -> None:
        if attr is not None and source is not None:
            raise TypeError("Give either attr= (serpy) or source= (DRF), not both.")
        if not read_only:
            raise TypeError(
                "django_scalekit serializers are read-only: read_only=False is not supported."
            )
        self.attr = attr
        self.source = source
        self.call = call
        self.label = label
        self.required = required
        self.many = many
        self.help_text = help_text
        self.allow_null = allow_null

    @_base_implementation
    def to_value(self, value: Any) -> Any:
        """Override to transform the value (serpy's hook); called once per object."""
        return value

    def _is_to_value_overridden(self) -> bool:
        to_value = self.to_value
        func = getattr(to_value, "__func__", to_value)
        return not getattr(func, "_serpy_base_implementation", False)

    def as_getter(
        self, serializer_field_name: str, serializer_cls: type[Any]
    ) -> Callable[..., Any] | None:
        """Return a function fetching the value, or ``None`` for the default attribute read."""
        return None

    def convert(self, gen: Gen, value: str) -> str | None:
        """Python code converting the not-``None`` variable ``value``; ``None`` keeps it."""
        return None

    def source_path(self, name: str) -> str:
        """The dotted attribute path this field reads (for ``optimize()``)."""
        return self.source or self.attr or name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StrField(Field):
    """``str(value)``, as DRF's ``CharField`` writes it."""

    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return str(value)

    def convert(self, gen: Gen, value: str) -> str:
        return f"str({value})"


class IntField(Field):
    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return int(value)

    def convert(self, gen: Gen, value: str) -> str:
        return f"int({value})"


class FloatField(Field):
    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return float(value)

    def convert(self, gen: Gen, value: str) -> str:
        return f"float({value})"


class BoolField(Field):
    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return bool(value)

    def convert(self, gen: Gen, value: str) -> str:
        return f"bool({value})"


class DecimalField(Field):
    """A string such as ``"10.50"`` (DRF's default), or a float with
    ``coerce_to_string=False`` / ``SCALEKIT_SERIALIZERS["COERCE_DECIMAL_TO_STRING"]``.

    With ``decimal_places`` the value is quantized first, as DRF does.
    """

    def __init__(
        self,
        *args: Any,
        max_digits: int | None = None,
        decimal_places: int | None = None,
        coerce_to_string: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self.coerce_to_string = coerce_to_string

    def _as_string(self) -> bool:
        if self.coerce_to_string is None:
            return bool(settings.COERCE_DECIMAL_TO_STRING)
        return self.coerce_to_string

    def _converter(self) -> Callable[[Any], Any]:
        return _convert.decimal_converter(self.decimal_places, self.max_digits, self._as_string())

    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return self._converter()(value)

    def convert(self, gen: Gen, value: str) -> str:
        convert = gen.bind(self._converter(), "dec")
        fast = _convert.decimal_fast_path(self.decimal_places, self.max_digits, self._as_string())
        if fast is None:
            return f"{convert}({value})"
        exponent, context = gen.bind(fast[0], "exp"), gen.bind(fast[1], "ctx")
        decimal_type = gen.bind(decimal.Decimal, "Decimal")
        # inline for the usual case (a Decimal), the function for the rest
        return (
            f"(str({value}.quantize({exponent}, context={context})) "
            f"if {value}.__class__ is {decimal_type} else {convert}({value}))"
        )


class DateTimeField(Field):
    """ISO 8601 in the current time zone with ``Z`` for UTC, exactly as DRF writes it.

    ``format`` (or ``SCALEKIT_SERIALIZERS["DATETIME_FORMAT"]``) may be a
    ``strftime`` pattern instead of ``"iso-8601"``.
    """

    def __init__(self, *args: Any, format: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.format = format

    def _converter(self) -> Callable[[Any, Any], Any]:
        fmt = self.format or settings.DATETIME_FORMAT
        if fmt.lower() == "iso-8601":
            return _convert.iso_datetime
        return _convert.strftime_datetime(fmt)

    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return self._converter()(value, _convert.current_tz())

    def convert(self, gen: Gen, value: str) -> str:
        convert = gen.bind(self._converter(), "dt")
        tz = gen.need("tz")
        if self._converter() is not _convert.iso_datetime:
            return f"{convert}({value}, {tz})"
        # inline for the usual case (already in the current zone), the function for the rest
        text = gen.tmp("s")
        return (
            f"(({text}[:-6] + 'Z' if ({text} := {value}.isoformat()).endswith('+00:00') "
            f"else {text}) if {value}.__class__ is {gen.bind(datetime.datetime, 'datetime')} "
            f"and {value}.tzinfo is {tz} "
            f"else {convert}({value}, {tz}))"
        )


class DateField(Field):
    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return _convert.iso_date(value)

    def convert(self, gen: Gen, value: str) -> str:
        return f"{gen.bind(_convert.iso_date, 'date')}({value})"


class TimeField(Field):
    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return _convert.iso_time(value)

    def convert(self, gen: Gen, value: str) -> str:
        return f"{gen.bind(_convert.iso_time, 'time')}({value})"


class DurationField(Field):
    """``"[DD] HH:MM:SS[.uuuuuu]"``, Django's and DRF's duration format."""

    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return _convert.duration(value)

    def convert(self, gen: Gen, value: str) -> str:
        return f"{gen.bind(_convert.duration, 'dur')}({value})"


class UUIDField(Field):
    """The hyphenated string form, as DRF's ``UUIDField`` writes it."""

    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return str(value)

    def convert(self, gen: Gen, value: str) -> str:
        return f"str({value})"


class EnumField(Field):
    """An ``enum.Enum`` member as its ``.value``; other values pass unchanged."""

    def __init__(self, *args: Any, enum: type[enum.Enum] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enum = enum

    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return _convert.enum_value(value)

    def convert(self, gen: Gen, value: str) -> str:
        return f"{gen.bind(_convert.enum_value, 'enum')}({value})"


class FileField(Field):
    """The file's URL, absolute when the context has a ``request`` (as in DRF)."""

    @_base_implementation
    def to_value(self, value: Any) -> Any:
        return _convert.file_url(value, None)

    def convert(self, gen: Gen, value: str) -> str:
        return f"{gen.bind(_convert.file_url, 'file')}({value}, {gen.need('request')})"


class ImageField(FileField):
    pass


class ListField(Field):
    """A list of scalars: ``child`` converts each item (``None`` items stay ``None``)."""

    def __init__(self, child: Field | None = None, *args: Any, **kwargs: Any) -> None:
        kwargs["many"] = True
        super().__init__(*args, **kwargs)
        self.child = child if child is not None else Field()

    def convert(self, gen: Gen, value: str) -> str | None:
        return self.child.convert(gen, value)


class PrimaryKeyRelatedField(Field):
    """The related object's ``pk`` (a list of them with ``many=True``), as DRF writes it.

    ``pk_field`` converts each key, e.g. ``UUIDField()`` for UUID keys.
    """

    def __init__(self, *args: Any, pk_field: Field | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pk_field = pk_field

    def convert(self, gen: Gen, value: str) -> str:
        pk = f"{value}.pk"
        if self.pk_field is not None:
            converted = self.pk_field.convert(gen, pk)
            if converted is not None:
                return converted
        return pk


class MethodField(Field):
    """The return value of ``serializer.get_<name>(obj)`` (or of ``method``).

    As in serpy, the method's result is used as is: no ``call`` and no ``to_value``.
    The method sees ``self.context`` (the request) also in nested serializers.
    """

    getter_takes_serializer = True

    def __init__(self, method: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.method = method

    def as_getter(
        self, serializer_field_name: str, serializer_cls: type[Any]
    ) -> Callable[..., Any] | None:
        name = self.method or f"get_{serializer_field_name}"
        try:
            getter: Callable[..., Any] = getattr(serializer_cls, name)
        except AttributeError:
            raise AttributeError(
                f"{serializer_cls.__name__}.{serializer_field_name} is a MethodField but "
                f"{serializer_cls.__name__} has no method {name!r}."
            ) from None
        return getter
