"""Stream managers that send their request later, when entered.

``with client.messages.stream(...) as stream`` sends nothing until ``__enter__``:
the manager keeps its request (a callable, or an awaitable for an async manager)
and sends it then. Two strategies swap that kept request for one of ours:

- ``Strategy.DEFERRED_REQUEST``: the request is the call; our span starts when it
  is sent, around it (Anthropic's ``messages.stream``).
- ``Strategy.STREAM_MANAGER``: the request calls another wrapped method, which has
  the span; it only needs the per-call keywords given to the manager's method
  (OpenAI's ``chat.completions.stream``, which calls ``create``).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from .calls import Scope, call_wrapper, in_scope, take_call_kwargs
from .logs import log_internal_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator

    from .providers.base import ProviderHooks
    from .targets import MethodTarget
    from .telemetry import Telemetry


def _kept_request(manager: Any, suffix: str) -> tuple[str, Any] | None:
    """(attribute, request) of the request a manager keeps; None (logged once) if none."""
    for name, request in vars(manager).items():
        if name.endswith(suffix):
            return name, request
    # An SDK whose manager we do not know: its calls would go unbilled, so say so once.
    log_internal_error(
        "wrapping a stream manager",
        LookupError(f"{type(manager).__name__} has no request to wrap; not instrumented"),
    )
    return None


def deferred_request_wrapper(
    hooks: ProviderHooks, target: MethodTarget, telemetry: Telemetry
) -> Callable[..., Any]:
    """``Strategy.DEFERRED_REQUEST``: the span starts when the manager sends its request."""
    start_call = call_wrapper(hooks, target, telemetry)
    suffix = hooks.deferred_request_suffix

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        # Our per-call kwargs stay in ``kwargs`` for the span started later.
        manager = wrapped(*args, **take_call_kwargs(kwargs)[0])
        try:
            kept = _kept_request(manager, suffix)
            if kept is None:
                return manager
            name, request = kept
            if callable(request):

                def send(*_args: Any, **_kwargs: Any) -> Any:
                    return request()

                setattr(manager, name, lambda: start_call(send, instance, args, kwargs))
            elif inspect.isawaitable(request):
                setattr(manager, name, _DeferredRequest(start_call, request, instance, kwargs))
        except Exception as exc:
            log_internal_error(f"wrapping the stream manager of {target.qualname}", exc)
        return manager

    return wrapper


class _DeferredRequest:
    """An async manager's request: awaited on ``__aenter__``, it starts the span then."""

    __slots__ = ("_instance", "_kwargs", "_request", "_start_call")

    def __init__(
        self,
        start_call: Callable[..., Any],
        request: Awaitable[Any],
        instance: Any,
        kwargs: dict[str, Any],
    ) -> None:
        self._start_call = start_call
        self._request = request
        self._instance = instance
        self._kwargs = kwargs

    def __await__(self) -> Generator[Any, None, Any]:
        request = self._request

        def send(*_args: Any, **_kwargs: Any) -> Awaitable[Any]:
            return request

        return self._start_call(send, self._instance, (), self._kwargs).__await__()


def stream_manager_wrapper(hooks: ProviderHooks, target: MethodTarget) -> Callable[..., Any]:
    """``Strategy.STREAM_MANAGER``: no span; the manager's request takes our per-call kwargs."""
    suffix = hooks.deferred_request_suffix

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        sdk_kwargs, ours = take_call_kwargs(kwargs)
        if not ours:
            return wrapped(*args, **kwargs)
        scope = Scope(ours)
        # An async manager's request (a coroutine) is made here, and takes them now.
        manager = in_scope(scope, lambda: wrapped(*args, **sdk_kwargs))
        try:
            kept = _kept_request(manager, suffix)
            if kept is not None and callable(kept[1]):
                name, request = kept
                setattr(manager, name, lambda: in_scope(scope, request))
        except Exception as exc:
            log_internal_error("passing per-call kwargs to a stream manager", exc)
        return manager

    return wrapper
