"""One wrapped call: its span from the call to the SDK's result, and what calls inside it see.

``Strategy.CALL`` and ``Strategy.LAZY_STREAM`` are built here, and ``Strategy.TRANSPORT``;
the other strategies are built on ``call_wrapper`` and ``Scope``. Sync and async are
two thin shells over ``_begin`` and ``_Call``: everything but the ``await`` is shared.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_KEY

try:  # the plain-string key ``suppress_instrumentation()`` also sets (newer versions)
    from opentelemetry.instrumentation.utils import (
        _SUPPRESS_INSTRUMENTATION_KEY_PLAIN as _SUPPRESS_PLAIN_KEY,
    )
except ImportError:  # pragma: no cover
    _SUPPRESS_PLAIN_KEY = "suppress_instrumentation"

from . import customer
from .invocation import Invocation
from .logs import log_internal_error
from .raw_response import record_value, wrap_raw_response
from .targets import Strategy

if TYPE_CHECKING:
    from collections.abc import Callable

    from .providers.base import ProviderHooks
    from .targets import MethodTarget
    from .telemetry import Telemetry

_T = TypeVar("_T")
_RAW_HEADER = "X-Stainless-Raw-Response"
_OUR_KWARGS = ("customer_id", "cmdrdata_metadata", "track_usage")


def take_call_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split the caller's kwargs into the SDK's and ours, without touching the caller's dict."""
    if (
        "customer_id" not in kwargs
        and "cmdrdata_metadata" not in kwargs
        and ("track_usage" not in kwargs)
    ):
        return kwargs, {}
    sdk = dict(kwargs)
    ours = {key: sdk.pop(key) for key in _OUR_KWARGS if key in sdk}
    return sdk, ours


class Scope:
    """What the wrapped calls made inside another call see of it (the value of ``_SCOPE``).

    ``handed``: our per-call keywords; a wrapped call made inside takes them as defaults
    of its own (a stream manager's deferred ``create``, each request of a public method).
    ``invocation``: the enclosing call's span; None in a scope without a span of its own.
    ``streams``: the request streams opened inside, to close with the scope's own stream;
    None when not tracked.
    """

    __slots__ = ("handed", "invocation", "streams")

    def __init__(
        self,
        handed: dict[str, Any],
        invocation: Invocation | None = None,
        streams: list[weakref.ref[Any]] | None = None,
    ) -> None:
        self.handed = handed
        self.invocation = invocation
        self.streams = streams

    def opened(self, stream: Any) -> None:
        if self.streams is not None:
            self.streams = [ref for ref in self.streams if ref() is not None]
            self.streams.append(weakref.ref(stream))

    def take_streams(self) -> list[Any]:
        """The request streams still open, forgotten here (each is closed once)."""
        refs, self.streams = self.streams or [], []
        return [stream for stream in (ref() for ref in refs) if stream is not None]


# The innermost call of ours (or scope) running in this context.
_SCOPE: ContextVar[Scope | None] = ContextVar("cmdrdata_scope", default=None)


def current_scope() -> Scope | None:
    return _SCOPE.get()


def in_scope(scope: Scope, call: Callable[[], _T]) -> _T:
    """Run ``call`` with ``scope`` as the enclosing one."""
    token = _SCOPE.set(scope)
    try:
        return call()
    finally:
        _SCOPE.reset(token)


def _suppressed(context: otel_context.Context) -> bool:
    """``not is_instrumentation_enabled()``, for a context already in hand (one lookup less)."""
    return bool(context.get(_SUPPRESS_KEY) or context.get(_SUPPRESS_PLAIN_KEY))


def _is_raw_call(kwargs: dict[str, Any]) -> bool:
    headers = kwargs.get("extra_headers")
    return bool(headers) and _RAW_HEADER in headers


class _Call(Scope):
    """A started call: its span, the context it runs in, and the tokens to restore."""

    __slots__ = ("context", "outer", "raw", "scope_token", "streaming", "token")

    def __init__(
        self,
        handed: dict[str, Any],
        invocation: Invocation,
        context: otel_context.Context,
        outer: Scope | None,
        raw: bool,
        streaming: bool,
    ) -> None:
        # Scope's fields set here: one Python call less on every call.
        self.handed = handed
        self.invocation = invocation
        self.streams = None
        self.context = context
        self.outer = outer
        self.raw = raw
        self.streaming = streaming
        # The SDK's request runs inside our span (so HTTP and SDK-native spans nest
        # under it) and without our baggage (so the customer id never travels to the
        # AI provider); wrapped methods it calls see this call as theirs.
        self.token = otel_context.attach(context)
        self.scope_token = _SCOPE.set(self)

    def leave(self) -> None:
        """Restore the caller's context once the SDK call has returned."""
        try:
            otel_context.detach(self.token)
            _SCOPE.reset(self.scope_token)
        except Exception as exc:
            log_internal_error("restoring the context", exc)

    def fail(self, exc: BaseException) -> None:
        """The SDK raised: end the span with the error (the caller re-raises it)."""
        self.leave()
        self.invocation.finish(exc)  # type: ignore[union-attr]

    def succeed(self, hooks: ProviderHooks, target: MethodTarget, result: Any) -> Any:
        """The SDK returned: hand its result back, wrapped or recorded. Never raises."""
        self.leave()
        invocation: Invocation = self.invocation  # type: ignore[assignment]
        try:
            if self.raw and hooks.is_raw_response(result):
                return wrap_raw_response(result, invocation, hooks, target, self.streaming)
            if target.strategy is Strategy.LAZY_STREAM and hooks.is_stream(result):
                result = _first_step_in(self.context, result, target.is_async)
            value = record_value(result, invocation, hooks, target)
            outer = self.outer
            if outer is not None and outer.streams is not None and value is not result:
                outer.opened(value)  # a stream wrapper: closed with the enclosing scope's
            return value
        except Exception as exc:
            log_internal_error("handling the result", exc)
            invocation.finish()
            return result


def _begin(
    hooks: ProviderHooks,
    target: MethodTarget,
    telemetry: Telemetry,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    outer: Scope | None,
    maker: Scope | None,
) -> tuple[dict[str, Any], _Call | None]:
    """Start the span for a call, or decide not to. Never raises.

    ``outer``: the scope the call runs in; ``maker``: the one it was made in (an
    async call's coroutine may be made in one place and awaited in another), whose
    per-call keywords it takes.
    """
    if maker is not None and maker.handed:
        kwargs = {**maker.handed, **kwargs}
    clean, ours = take_call_kwargs(kwargs)
    if not telemetry.active or (outer is not None and outer.invocation is not None):
        # Inside one of our calls (an SDK helper calling a wrapped method): one span.
        return clean, None
    if ours and ours.get("track_usage", True) is False:
        return clean, None
    current = otel_context.get_current()
    if _suppressed(current):
        return clean, None
    try:
        request = hooks.request(target, instance, clean, args)
        if request is None:
            return clean, None
        info, call_kwargs = request
        customer_id, metadata, provider_context = customer.split_attribution(current)
        if ours:
            customer_id, metadata = _call_attribution(ours, customer_id, metadata)
        invocation = Invocation(
            telemetry, info.operation or target.operation, info, customer_id, metadata
        )
        context = trace.set_span_in_context(invocation.span, provider_context)
        raw = _is_raw_call(call_kwargs)
        return call_kwargs, _Call(ours, invocation, context, outer, raw, info.streaming)
    except Exception as exc:
        log_internal_error(f"starting the span of {target.qualname}", exc)
        return clean, None


def _call_attribution(
    ours: dict[str, Any], customer_id: str | None, metadata: dict[str, str]
) -> tuple[str | None, dict[str, str]]:
    """The per-call ``customer_id=`` / ``cmdrdata_metadata=`` over the baggage's."""
    call_customer = ours.get("customer_id")
    if call_customer is not None:
        call_customer_id = customer.coerce_call_customer_id(call_customer)
        if call_customer_id != customer_id:
            metadata = {}  # baggage metadata belongs to the baggage's customer
        customer_id = call_customer_id
    if "cmdrdata_metadata" in ours:
        metadata = {**metadata, **customer.coerce_call_metadata(ours["cmdrdata_metadata"])}
    return customer_id, metadata


def call_wrapper(
    hooks: ProviderHooks, target: MethodTarget, telemetry: Telemetry
) -> Callable[..., Any]:
    """The wrapt wrapper of ``Strategy.CALL`` and ``LAZY_STREAM``: a span around the call."""
    lazy = target.strategy is Strategy.LAZY_STREAM
    if target.is_async:

        async def run_async(
            wrapped: Any, instance: Any, args: Any, kwargs: Any, maker: Scope | None
        ) -> Any:
            outer = _SCOPE.get()
            call_kwargs, call = _begin(
                hooks, target, telemetry, instance, args, kwargs, outer, maker
            )
            if call is None:
                if lazy:
                    stripped = _context_without_our_baggage()
                    result = await wrapped(*args, **call_kwargs)
                    return _untraced_stream(hooks, stripped, result, True)
                return await _async_without_our_baggage(wrapped, instance, args, call_kwargs)
            try:
                result = await wrapped(*args, **call_kwargs)
            except BaseException as exc:
                call.fail(exc)
                raise
            return call.succeed(hooks, target, result)

        def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            return run_async(wrapped, instance, args, kwargs, _SCOPE.get())

        return async_wrapper

    def sync_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        outer = _SCOPE.get()
        call_kwargs, call = _begin(hooks, target, telemetry, instance, args, kwargs, outer, outer)
        if call is None:
            if lazy:
                stripped = _context_without_our_baggage()
                result = wrapped(*args, **call_kwargs)
                return _untraced_stream(hooks, stripped, result, False)
            return _without_our_baggage(wrapped, instance, args, call_kwargs)
        try:
            result = wrapped(*args, **call_kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        return call.succeed(hooks, target, result)

    return sync_wrapper


# -- Strategy.LAZY_STREAM: the request is sent on the stream's first step ----------------


def _first_step_in(context: otel_context.Context, stream: Any, is_async: bool) -> Any:
    """The stream, its first step (where the SDK sends the request) run in ``context``.

    So the HTTP request nests under the span and carries no customer baggage; later
    steps only read the response and pass straight through.
    """
    if is_async:
        return _async_first_step_in(context, stream)
    return _sync_first_step_in(context, stream)


def _sync_first_step_in(context: otel_context.Context, stream: Iterator[Any]) -> Iterator[Any]:
    token = otel_context.attach(context)
    try:
        first = next(stream)
    except StopIteration:
        return
    finally:
        otel_context.detach(token)
    yield first
    yield from stream


async def _async_first_step_in(
    context: otel_context.Context, stream: AsyncIterator[Any]
) -> AsyncIterator[Any]:
    token = otel_context.attach(context)
    try:
        first = await stream.__anext__()
    except StopAsyncIteration:
        return
    finally:
        otel_context.detach(token)
    try:
        yield first
        async for chunk in stream:
            yield chunk
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


# -- Strategy.TRANSPORT, and calls we do not trace: never our baggage to the provider ----


def _context_without_our_baggage() -> otel_context.Context | None:
    """The current context without our baggage; None when it has none to hide."""
    scope = _SCOPE.get()
    if scope is not None and scope.invocation is not None:
        return None  # inside one of our calls the context is already without it
    current = otel_context.get_current()
    stripped = customer.context_without_attribution(current)
    return None if stripped is current else stripped


def _hide_our_baggage() -> object | None:
    """Returns the token to detach, or None when there was nothing to hide."""
    stripped = _context_without_our_baggage()
    return None if stripped is None else otel_context.attach(stripped)


def _untraced_stream(
    hooks: ProviderHooks, stripped: otel_context.Context | None, result: Any, is_async: bool
) -> Any:
    """A lazy stream we do not trace: its request, sent on the first step, hides our baggage."""
    if stripped is None or not hooks.is_stream(result):
        return result
    return _first_step_in(stripped, result, is_async)


def _without_our_baggage(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    token = _hide_our_baggage()
    if token is None:
        return wrapped(*args, **kwargs)
    try:
        return wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)


async def _async_without_our_baggage(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    token = _hide_our_baggage()
    try:
        return await wrapped(*args, **kwargs)
    finally:
        if token is not None:
            otel_context.detach(token)


def transport_wrapper(is_async: bool) -> Callable[..., Any]:
    """The wrapt wrapper of ``Strategy.TRANSPORT``."""
    return _async_without_our_baggage if is_async else _without_our_baggage
