"""pytest plugin (``-p tests.rig.plugin``): servers up before Django reads its settings.

It runs before pytest-django configures Django, so ``tests/settings.py`` only
reads ``DATABASE_URL``, ``REPLICA_URL`` and ``REDIS_URL``.
"""

from __future__ import annotations

import atexit
import signal
import sys
from typing import Any

import pytest

from tests.rig.servers import Rig

_rig: Rig | None = None


def current() -> Rig:
    if _rig is None:
        raise RuntimeError("the test rig has not been started")
    return _rig


def _terminate(signum: int, frame: Any) -> None:
    sys.exit(128 + signum)  # unwinds through atexit, which stops the servers


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: Any, args: list[str]
) -> None:
    global _rig
    if any(a in {"--help", "-h", "--version", "-V"} for a in args):
        return
    _rig = Rig.from_environment()
    atexit.register(_rig.stop)
    signal.signal(signal.SIGTERM, _terminate)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _rig is not None:
        _rig.stop()


def pytest_report_header(config: pytest.Config) -> list[str]:
    if _rig is None:
        return []
    lines = []
    if _rig.postgres:
        pg = _rig.postgres
        lines.append(
            f"rig: PostgreSQL primary :{pg.primary_port}, streaming replica :{pg.replica_port} "
            f"({pg.bindir})"
        )
    if _rig.redis:
        lines.append(f"rig: redis-server :{_rig.redis.port}")
    if not lines:
        lines.append("rig: using the servers named by DATABASE_URL, REPLICA_URL, REDIS_URL")
    return lines
