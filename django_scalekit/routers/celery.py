"""Celery integration: tasks read what the request that enqueued them wrote.

The enqueuing side puts the request's write mark (a WAL position, a time
window, or "primary" while its transaction is open) in the task's headers;
the worker starts every task with a fresh routing state built from it.
``CELERY_MODE`` (or a task's ``scalekit_reads`` attribute) picks "sticky"
(the default), "primary" (every read on the primary) or "replica" (ignore
the header).

Imported only when Celery is installed. The router connects these handlers
when it is first used; a worker should call ``connect_signals()`` from its
Celery app module so that the first task is covered too.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from django_scalekit.routers import replicas
from django_scalekit.routers.middleware import carried_mark, decode_mark, write_mark
from django_scalekit.routers.state import State, _state, begin, end

__all__ = ["HEADER", "connect_signals"]

HEADER = "scalekit_read_after"

_tokens: dict[str, Token[State | None]] = {}


def connect_signals() -> None:
    """Connect the publish and run handlers (idempotent)."""
    from celery import signals

    signals.before_task_publish.connect(_before_publish, dispatch_uid="scalekit_router_publish")
    signals.task_prerun.connect(_prerun, dispatch_uid="scalekit_router_prerun")
    signals.task_postrun.connect(_postrun, dispatch_uid="scalekit_router_postrun")


def _before_publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    st = _state.get()
    cfg = replicas.config()
    if headers is None or st is None or not cfg.replicas or not cfg.sticky:
        return
    mark = write_mark(st) if st.wrote else carried_mark(st)
    if mark is not None:
        headers[HEADER] = mark


def _header(task: Any) -> Any:
    request = getattr(task, "request", None)
    if request is None:
        return None
    value = getattr(request, HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(HEADER)
    return value


def _prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    st = State()
    mode = getattr(task, "scalekit_reads", None) or replicas.config().celery_mode
    if mode == "primary":
        st.pinned = True
    elif mode == "sticky":
        caller = _state.get()
        if getattr(getattr(task, "request", None), "is_eager", False) and caller is not None:
            # Run inline (task.apply(), CELERY_TASK_ALWAYS_EAGER): nothing was
            # published, so follow the caller's own state.
            st.pinned = caller.pinned or caller.wrote
            st.min_lsn, st.until = caller.min_lsn, caller.until
        else:
            decode_mark(_header(task), st)
    _tokens[task_id or ""] = begin(st)


def _postrun(task_id: str | None = None, **kwargs: Any) -> None:
    token = _tokens.pop(task_id or "", None)
    if token is not None:
        end(token)
