"""Shared plumbing for the per-concern ``conf`` modules.

Each concern reads one dict setting (``SCALEKIT_ROUTER`` and so on) through a
``ConcernSettings``. Values are merged over the concern's defaults on first use
and cached until Django's ``setting_changed`` signal (sent by
``override_settings``) says the dict changed, so the hot paths pay one
attribute lookup, not a settings merge.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.signals import setting_changed


class ConcernSettings:
    """One concern's settings: ``conf.settings.TIMEOUT`` and friends."""

    def __init__(self, setting_name: str, defaults: Mapping[str, Any]) -> None:
        self.setting_name = setting_name
        self.defaults = dict(defaults)
        self._cache: dict[str, Any] | None = None
        setting_changed.connect(self._setting_changed, weak=False)

    def _setting_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting == self.setting_name:
            self._cache = None
            for name in [n for n in vars(self) if n.isupper()]:
                delattr(self, name)

    def user_value(self) -> Any:
        """The raw setting as the project wrote it (``{}`` when absent)."""
        return getattr(settings, self.setting_name, {})

    def as_dict(self) -> dict[str, Any]:
        if self._cache is None:
            merged = dict(self.defaults)
            user = self.user_value()
            if isinstance(user, Mapping):
                merged.update({k: v for k, v in user.items() if k in self.defaults})
            self._cache = merged
        return self._cache

    def __getattr__(self, name: str) -> Any:
        # only called for names not set on the instance: the value is kept there, so
        # the next read is a plain attribute lookup (dropped on setting_changed)
        if name.isupper():
            try:
                value = self.as_dict()[name]
            except KeyError:
                raise AttributeError(f"{self.setting_name} has no key {name!r}") from None
            setattr(self, name, value)
            return value
        raise AttributeError(name)

    def check_shape(self) -> list[checks.CheckMessage]:
        """E001 (not a dict) and E002 (unknown key, with the nearest valid one)."""
        user = self.user_value()
        if not isinstance(user, Mapping):
            return [
                checks.Error(
                    f"settings.{self.setting_name} must be a dict, not {type(user).__name__}.",
                    hint=f"Write {self.setting_name} = {{...}} with keys among: "
                    f"{', '.join(sorted(self.defaults))}.",
                    id="django_scalekit.E001",
                )
            ]
        errors: list[checks.CheckMessage] = []
        for key in user:
            if key in self.defaults:
                continue
            close = difflib.get_close_matches(str(key), self.defaults, n=1)
            hint = (
                f"Did you mean {close[0]!r}? " if close else ""
            ) + f"Valid keys: {', '.join(sorted(self.defaults))}."
            errors.append(
                checks.Error(
                    f"settings.{self.setting_name} has an unknown key {key!r}.",
                    hint=hint,
                    id="django_scalekit.E002",
                )
            )
        return errors


Validator = Callable[[Any], str | None]


def check_values(
    conf: ConcernSettings,
    rules: Mapping[str, tuple[str, Validator]],
) -> list[checks.CheckMessage]:
    """Run ``rules`` (key -> (check id, validator)) over the merged values.

    A validator returns ``None`` when the value is fine, or a hint saying what
    to write instead.
    """
    if not isinstance(conf.user_value(), Mapping):
        return []  # E001 already says it all
    values = conf.as_dict()
    errors: list[checks.CheckMessage] = []
    for key, (check_id, validator) in rules.items():
        hint = validator(values[key])
        if hint is not None:
            errors.append(
                checks.Error(
                    f"settings.{conf.setting_name}[{key!r}] = {values[key]!r} is not valid.",
                    hint=hint,
                    id=check_id,
                )
            )
    return errors


def positive_int(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return None
    return "Write a whole number greater than 0, e.g. 1000."


def non_negative_number(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return None
    return "Write a number of 0 or more, e.g. 2 or 0.5."


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "Write True or False."
