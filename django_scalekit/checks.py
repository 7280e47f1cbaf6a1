"""System checks for every concern's settings (ids ``django_scalekit.E0xx``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks

from django_scalekit.cache import conf as cache_conf
from django_scalekit.denorm import conf as denorm_conf
from django_scalekit.partitioning import conf as partitioning_conf
from django_scalekit.routers import conf as routers_conf
from django_scalekit.serializers import conf as serializers_conf

CONCERNS = (serializers_conf, cache_conf, denorm_conf, partitioning_conf, routers_conf)


@checks.register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for conf in CONCERNS:
        errors.extend(conf.check())
    return errors
