"""Per-request routing state, kept in ``contextvars``.

Thread-locals leak between requests that share a thread (a pin from a POST
showing up on the next GET) and are shared by interleaved async requests.
A ``ContextVar`` follows the request instead: every asyncio task has its own
copy, ``sync_to_async`` carries it into the worker thread and back, and a new
thread starts empty.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, overload

__all__ = ["State", "current_state", "reset_state", "use_primary"]


@dataclass(slots=True)
class State:
    """What the router knows about one request or task."""

    # every read goes to the primary (a write happened, or a task in "primary" mode)
    pinned: bool = False
    # reads need a replica that has replayed this WAL position (0: any replica)
    min_lsn: int = 0
    # time-window fallback: reads go to the primary until this Unix time
    until: float = 0.0
    # the replica chosen for this request, kept while it stays usable
    replica: str | None = None
    # a write happened in this request or task
    wrote: bool = False
    # a write happened since the WAL position was last read (for the cookie/headers)
    dirty: bool = False
    write_lsn: int = 0


_state: ContextVar[State | None] = ContextVar("scalekit_router_state", default=None)
_forced: ContextVar[bool] = ContextVar("scalekit_router_use_primary", default=False)


def current_state() -> State:
    """The state of the running request or task, created on first use."""
    state = _state.get()
    if state is None:
        state = State()
        _state.set(state)
    return state


def begin(state: State | None = None) -> Token[State | None]:
    """Start a fresh request/task state; pass the token to ``end()``."""
    return _state.set(state if state is not None else State())


def end(token: Token[State | None]) -> None:
    try:
        _state.reset(token)
    except ValueError:  # ended in another context than it began: drop the state
        _state.set(None)


def reset_state() -> None:
    """Forget the current state (a new request begins, or between tests)."""
    _state.set(None)


F = TypeVar("F", bound=Callable[..., Any])


class _UsePrimary:
    """Context manager behind ``use_primary()``: nestable, re-entrant."""

    def __init__(self) -> None:
        self._tokens: list[Token[bool]] = []

    def __enter__(self) -> None:
        self._tokens.append(_forced.set(True))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Restores whatever the enclosing block had, not "off": an inner
        # block must not unpin an outer one.
        _forced.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        return _decorate(func)


def _decorate(func: F) -> F:
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with _UsePrimary():
                return await func(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # A new context manager per call: one shared instance would mix the
        # tokens of calls running in different threads.
        with _UsePrimary():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@overload
def use_primary(func: F) -> F: ...
@overload
def use_primary(func: None = None) -> _UsePrimary: ...
def use_primary(func: F | None = None) -> F | _UsePrimary:
    """Send every read in a block, or in a function, to the primary.

    ``with use_primary(): ...``, ``@use_primary()`` or ``@use_primary``; works
    on sync and async functions. Nested blocks restore the outer setting on exit.
    """
    if func is not None:
        return _decorate(func)
    return _UsePrimary()


def primary_forced() -> bool:
    return _forced.get()
