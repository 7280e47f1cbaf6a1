"""Server URLs to Django settings (no extra dependency for three small parsers)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


def database_settings(url: str) -> dict[str, Any]:
    """``postgres://user:password@host:port/name?option=value`` as a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"{url!r}: only postgres:// URLs are supported by the test settings")
    options: dict[str, Any] = {"connect_timeout": 2}
    options.update(parse_qsl(parts.query))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "scalekit",
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        "OPTIONS": options,
    }


def conninfo(settings_dict: dict[str, Any], dbname: str | None = None) -> dict[str, Any]:
    """psycopg connection keywords for a DATABASES entry (or another database on it)."""
    return {
        "host": settings_dict["HOST"],
        "port": settings_dict["PORT"],
        "user": settings_dict["USER"],
        "password": settings_dict["PASSWORD"] or None,
        "dbname": dbname or settings_dict["NAME"],
        "connect_timeout": 2,
    }


def redis_db(url: str, db: int) -> str:
    """The same Redis server, another logical database (cache 0, broker 1, results 2)."""
    parts = urlsplit(url)
    return parts._replace(path=f"/{db}").geturl()
