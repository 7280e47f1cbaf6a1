"""``ReadYourWritesMiddleware``: a client's next requests see its last write.

A request that wrote gets a signed cookie holding the primary's WAL position
after the write (one ``pg_current_wal_lsn()`` per writing request). Later
requests from that client read from a replica only once it has replayed that
position; until then from the primary. Where there is no WAL position (not
PostgreSQL), the cookie holds a time instead: reads go to the primary for
``STICKY_SECONDS``. The cookie is removed once every replica has caught up.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.db import connections
from django.http import HttpRequest, HttpResponseBase

from django_scalekit.routers import replicas
from django_scalekit.routers.state import State, begin, end

__all__ = ["COOKIE_NAME", "ReadYourWritesMiddleware", "decode_mark", "write_mark"]

COOKIE_NAME = "scalekit_rw"
COOKIE_SALT = "django_scalekit.routers"
# An LSN cookie only matters until a replica replays it; this bounds a lost one.
LSN_COOKIE_MAX_AGE = 300


def write_mark(st: State) -> str | None:
    """What a later reader must wait for after this request's writes.

    ``"l<lsn>"`` (a WAL position), ``"t<unix time>"`` (a window) or ``"p"``
    (the primary, while a transaction is still open and has no position yet).
    """
    cfg = replicas.config()
    if connections[cfg.primary].in_atomic_block:
        return "p"
    if st.dirty or not st.write_lsn:
        lsn = replicas.primary_lsn(cfg.primary)
        if lsn is None:
            return f"t{time.time() + cfg.sticky_seconds:.3f}"
        st.write_lsn = lsn
        st.dirty = False
    return f"l{st.write_lsn}"


def decode_mark(value: object, st: State) -> None:
    """Apply a mark from a cookie or task header to a fresh state."""
    if not isinstance(value, str) or not value:
        return
    kind, rest = value[0], value[1:]
    try:
        if kind == "l":
            st.min_lsn = max(st.min_lsn, int(rest))
        elif kind == "t":
            st.until = max(st.until, float(rest))
        elif kind == "p":
            st.pinned = True
    except ValueError:
        return


def carried_mark(st: State) -> str | None:
    """The mark to pass on from a state that did not write itself."""
    if st.min_lsn:
        return f"l{st.min_lsn}"
    if st.until > time.time():
        return f"t{st.until:.3f}"
    return None


class ReadYourWritesMiddleware:
    """Per-request routing state, and the signed cookie that carries a write forward."""

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        st = self._begin(request)
        token = begin(st)
        try:
            response = self.get_response(request)  # type: ignore[assignment]
        finally:
            end(token)
        assert isinstance(response, HttpResponseBase)
        self._finish(request, response, st, self._mark(st))
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        st = self._begin(request)
        token = begin(st)
        try:
            response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
        finally:
            end(token)
        # The LSN query runs where the view's queries ran: the request's sync thread.
        mark = await sync_to_async(self._mark)(st)
        self._finish(request, response, st, mark)
        return response

    def _begin(self, request: HttpRequest) -> State:
        st = State()
        if replicas.config().sticky:
            value = request.get_signed_cookie(COOKIE_NAME, default=None, salt=COOKIE_SALT)
            decode_mark(value, st)
            st.pinned = False  # only task headers may pin; a cookie never sets "p"
        return st

    def _mark(self, st: State) -> str | None:
        cfg = replicas.config()
        if not cfg.sticky or not cfg.replicas or not st.wrote:
            return None
        mark = write_mark(st)
        if mark == "p":  # still inside a transaction: no position yet, use a window
            return f"t{time.time() + cfg.sticky_seconds:.3f}"
        return mark

    def _finish(
        self, request: HttpRequest, response: HttpResponseBase, st: State, mark: str | None
    ) -> None:
        if mark is not None:
            max_age = LSN_COOKIE_MAX_AGE if mark[0] == "l" else replicas.config().sticky_seconds
            response.set_signed_cookie(
                COOKIE_NAME,
                mark,
                salt=COOKIE_SALT,
                max_age=int(max_age) + 1,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        elif COOKIE_NAME in request.COOKIES and (
            (st.min_lsn and replicas.caught_up(st.min_lsn))
            or (not st.min_lsn and st.until <= time.time())
        ):
            response.delete_cookie(COOKIE_NAME, samesite="Lax")
