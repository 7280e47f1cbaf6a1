"""Compile a serializer class into two plain functions: ``one(obj, s)`` and ``many(objs, s)``.

The generated code reads attributes directly and returns a dict literal; converters
are module globals of the generated code; nested serializers are inlined, so a list
of 10,000 objects costs one comprehension and no per-object method calls. Compiled
code is cached per (class, field subset) and dropped when ``SCALEKIT_SERIALIZERS``
changes (it decides the converters).
"""

from __future__ import annotations

import copy
import keyword
import operator
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.signals import setting_changed
from django.db.models.manager import BaseManager

from django_scalekit.serializers import _convert
from django_scalekit.serializers.fields import Field

if TYPE_CHECKING:
    from django_scalekit.serializers.serializer import Serializer


@dataclass(frozen=True)
class Compiled:
    one: Callable[[Any, Any], Any]
    many: Callable[[Any, Any], list[Any]]
    source: str


_cache: dict[tuple[type[Any], frozenset[str] | None], Compiled] = {}
MAX_CACHED = 2048
_lock = threading.RLock()


def _clear(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SCALEKIT_SERIALIZERS", "USE_TZ"):
        _cache.clear()


setting_changed.connect(_clear, weak=False)


def compiled(cls: type[Serializer], only: frozenset[str] | None = None) -> Compiled:
    key = (cls, only)
    try:
        return _cache[key]
    except KeyError:
        pass
    with _lock:
        if key not in _cache:
            if only is not None and len(_cache) >= MAX_CACHED:
                # ?fields= combinations come from requests: keep their number bounded
                for stale in [k for k in _cache if k[1] is not None]:
                    del _cache[stale]
            _cache[key] = _build(cls, only)
        return _cache[key]


def bind_nested(field: Serializer, parent: Serializer) -> Serializer:
    """A copy of a nested serializer that knows its parent, for ``self.context`` in methods."""
    bound = copy.copy(field)
    bound.parent = parent
    return bound


def _request(s: Serializer) -> Any:
    return s.context.get("request")


class _SelfRef:
    """The variable holding the serializer instance a method field is called on.

    The root is ``s``; a nested serializer gets a bound copy, created once per
    call in the preamble and only if one of its fields needs it.
    """

    def __init__(self, gen: Gen, field: Field | None = None, parent: _SelfRef | None = None):
        self.gen = gen
        self.field = field
        self.parent = parent
        self.name: str | None = "s" if parent is None else None

    def get(self) -> str:
        if self.name is None:
            assert self.parent is not None
            parent = self.parent.get()
            field = self.gen.bind(self.field, "F")
            self.name = self.gen.tmp("n")
            self.gen.preamble.append(f"{self.name} = _bind_nested({field}, {parent})")
        return self.name


class Gen:
    """Collects the generated code's globals, temporaries and preamble."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "_items": _convert.items,
            "_Manager": BaseManager,
            "_drop_none": _drop_none,
            "_one_to_one": _one_to_one,
            "_bind_nested": bind_nested,
            "_current_tz": _convert.current_tz,
            "_request": _request,
        }
        self.preamble: list[str] = []
        self._needs: dict[str, str] = {}
        self._count = 0
        self._ids: dict[int, str] = {}
        self.stack: list[type[Any]] = []

    def tmp(self, prefix: str = "t") -> str:
        self._count += 1
        return f"_{prefix}{self._count}"

    def bind(self, value: Any, prefix: str = "g") -> str:
        """A global name for ``value`` in the generated code."""
        name = self._ids.get(id(value))
        if name is None:
            name = self.tmp(prefix)
            self.namespace[name] = value
            self._ids[id(value)] = name
        return name

    def need(self, what: str) -> str:
        """A per-call value computed once in the preamble: ``"tz"`` or ``"request"``."""
        if what not in self._needs:
            code = {"tz": "_current_tz()", "request": "_request(s)"}[what]
            self._needs[what] = what
            self.preamble.insert(0, f"{what} = {code}")
        return self._needs[what]


def _attr(objvar: str, name: str) -> str:
    if name.isidentifier() and not keyword.iskeyword(name):
        return f"{objvar}.{name}"
    return f"getattr({objvar}, {name!r})"


def _guard(gen: Gen, src: str, build: Callable[[str], str | None]) -> str:
    """``None`` stays ``None``; anything else goes through ``build(var)``."""
    var = gen.tmp()
    built = build(var)
    if built is None:
        return src
    return f"(None if ({var} := {src}) is None else {built})"


def _getter(gen: Gen, cls: type[Any], name: str, field: Field, objvar: str) -> str:
    getter = field.as_getter(name, cls)
    if getter is not None:
        return f"{gen.bind(getter)}({objvar})"
    if field.source == "*":
        return objvar
    path = field.source or field.attr or name
    default_getter = cls.default_getter
    if default_getter is operator.attrgetter:
        parts = path.split(".")
        code = _attr(objvar, parts[0])
        if parts[0] in _missing_one_to_one(cls):
            # a missing reverse one-to-one raises DoesNotExist; DRF writes null
            code = f"_one_to_one({objvar}, {parts[0]!r})"
        for part in parts[1:]:
            if field.source is not None:  # DRF spelling: None on the way gives None
                code = _guard(gen, code, lambda v, p=part: _attr(v, p))  # type: ignore[misc]
            else:  # serpy: exactly attrgetter
                code = _attr(code, part)
        return code
    if default_getter is operator.itemgetter:
        if field.source is None:  # serpy: itemgetter("a.b") is the key "a.b"
            return f"{objvar}[{path!r}]"
        parts = path.split(".")  # DRF: source="a.b" walks nested dicts
        code = f"{objvar}[{parts[0]!r}]"
        for part in parts[1:]:
            code = _guard(gen, code, lambda v, p=part: f"{v}[{p!r}]")  # type: ignore[misc]
        return code
    return f"{gen.bind(default_getter(path))}({objvar})"


def _missing_one_to_one(cls: type[Any]) -> frozenset[str]:
    """Accessors of reverse one-to-one relations on the serializer's model, if it has one."""
    meta = getattr(cls, "Meta", None)
    model = getattr(meta, "model", None)
    if model is None:
        return frozenset()
    return frozenset(
        rel.get_accessor_name() for rel in model._meta.related_objects if rel.one_to_one
    )


def _one_to_one(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


def _value(
    gen: Gen,
    src: str,
    field: Field,
    selfref: _SelfRef,
    guard_user: bool,
    child_only: frozenset[str] | None = None,
) -> str:
    """Apply ``field``'s conversion (scalar, list or nested serializer) to ``src``."""
    from django_scalekit.serializers.fields import PrimaryKeyRelatedField
    from django_scalekit.serializers.serializer import Serializer

    if isinstance(field, Serializer):
        return _nested(gen, src, field, selfref, child_only)
    if field._is_to_value_overridden():
        to_value = gen.bind(field.to_value, "to_value")
        if guard_user:
            return _guard(gen, src, lambda v: f"{to_value}({v})")
        return f"{to_value}({src})"  # serpy: a required field's to_value also sees None
    if field.many:
        item = gen.tmp("i")
        converted = field.convert(gen, item)
        if converted is None:
            each = item
        elif isinstance(field, PrimaryKeyRelatedField):
            each = converted
        else:
            each = f"(None if {item} is None else {converted})"
        return _guard(gen, src, lambda v: f"[{each} for {item} in {_iterable(v)}]")
    return _guard(gen, src, lambda v: field.convert(gen, v))


def _iterable(var: str) -> str:
    # a related manager is iterated through .all() (its prefetch cache when present)
    return f"({var}.all() if isinstance({var}, _Manager) else {var})"


def _nested(
    gen: Gen, src: str, field: Serializer, parent: _SelfRef, only: frozenset[str] | None
) -> str:
    from django_scalekit.serializers.serializer import Serializer

    ncls = type(field)
    selfref = _SelfRef(gen, field, parent)
    if ncls.to_value is not Serializer.to_value:  # a serpy-style override of to_value
        return f"{selfref.get()}.to_value({src})"
    var = gen.tmp("o")
    body = None if ncls in gen.stack else _object_expr(gen, ncls, only, var, selfref)
    if body is None:  # recursive, or needing statements: call its own compiled function
        body = f"{gen.bind(_LazyOne(ncls, only), 'unit')}({var}, {selfref.get()})"
    if field.many:
        return _guard(gen, src, lambda v: f"[{body} for {var} in {_iterable(v)}]")
    return f"(None if ({var} := {src}) is None else {body})"


class _LazyOne:
    """Calls ``compiled(cls).one`` (resolved on first use, so recursion compiles)."""

    def __init__(self, cls: type[Serializer], only: frozenset[str] | None = None) -> None:
        self.cls = cls
        self.only = only

    def __call__(self, obj: Any, s: Any) -> Any:
        return compiled(self.cls, self.only).one(obj, s)


FieldSpec = tuple[str, str, Field, "frozenset[str] | None"]


def split_fields(only: frozenset[str] | None) -> tuple[set[str] | None, dict[str, set[str]]]:
    """``{"id", "reviews.rating"}`` -> top-level keys and the sub-keys asked per nested key."""
    if only is None:
        return None, {}
    top: set[str] = set()
    nested: dict[str, set[str]] = {}
    for entry in only:
        head, _, rest = entry.partition(".")
        top.add(head)
        if rest:
            nested.setdefault(head, set()).add(rest)
    return top, nested


def _fields(cls: type[Serializer], only: frozenset[str] | None) -> list[FieldSpec]:
    """(output key, field name, field, sub-keys for a nested serializer) in order."""
    top, nested = split_fields(only)
    out: list[FieldSpec] = []
    for name, field in cls._scalekit_fields().items():
        key = field.label or name
        if top is None or key in top:
            sub = nested.get(key)
            out.append((key, name, field, None if sub is None else frozenset(sub)))
    return out


def _omittable(field: Field) -> bool:
    return not field.required and not field.getter_takes_serializer


def _field_expr(
    gen: Gen,
    cls: type[Any],
    name: str,
    field: Field,
    obj: str,
    selfref: _SelfRef,
    child_only: frozenset[str] | None = None,
) -> str:
    if field.getter_takes_serializer:  # serpy: the method's result, unchanged
        getter = field.as_getter(name, cls)
        return f"{gen.bind(getter)}({selfref.get()}, {obj})"
    src = _getter(gen, cls, name, field, obj)
    tolerant = field.source is not None and "." in field.source
    if field.call:
        src = _guard(gen, src, lambda v: f"{v}()") if tolerant else f"{src}()"
    return _value(gen, src, field, selfref, guard_user=False, child_only=child_only)


def _omits_none(cls: type[Serializer]) -> bool:
    from django_scalekit.serializers.conf import settings

    own = cls.omit_none
    return bool(settings.OMIT_NONE) if own is None else own


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _object_expr(
    gen: Gen, cls: type[Serializer], only: frozenset[str] | None, obj: str, selfref: _SelfRef
) -> str | None:
    """A dict literal for one object, or ``None`` if the class needs statements."""
    fields = _fields(cls, only)
    if any(_omittable(f) for _, _, f, _ in fields):
        return None
    gen.stack.append(cls)
    try:
        items = [
            f"{key!r}: {_field_expr(gen, cls, name, f, obj, selfref, sub)}"
            for key, name, f, sub in fields
        ]
    finally:
        gen.stack.pop()
    literal = "{" + ", ".join(items) + "}"
    return f"_drop_none({literal})" if _omits_none(cls) else literal


def _object_statements(gen: Gen, cls: type[Serializer], only: frozenset[str] | None) -> list[str]:
    """serpy's rules for ``required=False``: a missing attribute omits the key."""
    selfref = _SelfRef(gen)
    lines = ["r = {}"]
    gen.stack.append(cls)
    for key, name, field, sub in _fields(cls, only):
        if not _omittable(field):
            code = _field_expr(gen, cls, name, field, "obj", selfref, sub)
            lines.append(f"r[{key!r}] = {code}")
            continue
        raw = gen.tmp("v")
        lines.append("try:")
        lines.append(f"    {raw} = {_getter(gen, cls, name, field, 'obj')}")
        lines.append("except (AttributeError, KeyError):")
        lines.append("    pass")
        lines.append("else:")
        src = _guard(gen, raw, lambda v: f"{v}()") if field.call else raw
        value = _value(gen, src, field, selfref, guard_user=True, child_only=sub)
        lines.append(f"    r[{key!r}] = {value}")
    gen.stack.pop()
    lines.append("return _drop_none(r)" if _omits_none(cls) else "return r")
    return lines


def _build(cls: type[Serializer], only: frozenset[str] | None) -> Compiled:
    gen = Gen()
    body = _object_expr(gen, cls, only, "obj", _SelfRef(gen))
    if body is not None:
        one_lines = ["return " + body]
    else:
        gen = Gen()
        one_lines = _object_statements(gen, cls, only)
    pre = list(gen.preamble)
    # Per-call values (time zone, request, bound nested serializers) are computed once
    # and passed to ``row``, whose temporaries stay fast locals.
    args = ", ".join(["obj", "s"] + [line.split(" = ", 1)[0] for line in pre])
    src = [f"def row({args}):"] + [f"    {line}" for line in one_lines]
    src.append("def one(obj, s):")
    src += [f"    {line}" for line in pre]
    src += (
        [f"    {line}" for line in one_lines] if body is not None else [f"    return row({args})"]
    )
    src.append("def many(objs, s):")
    src += [f"    {line}" for line in pre]
    src.append(f"    return [row({args}) for obj in _items(objs)]")
    code = "\n".join(src) + "\n"
    namespace = dict(gen.namespace)
    filename = f"<django_scalekit.serializers {cls.__module__}.{cls.__qualname__}>"
    exec(compile(code, filename, "exec"), namespace)
    return Compiled(one=namespace["one"], many=namespace["many"], source=code)
