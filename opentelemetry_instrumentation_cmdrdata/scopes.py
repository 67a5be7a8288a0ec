"""``Strategy.SCOPE``: a public method with no span of its own that hands on its keywords.

Google Gen AI's ``generate_content`` makes one model request per tool round or
continuation hop, each a wrapped method with its own span. The public method
takes our per-call keywords off the call and puts them in a ``Scope`` that every
request it makes takes them from. Its stream is a generator that makes requests
while it is iterated, so each of its steps runs in the scope, and closing it
closes the request streams it opened (their spans end then, not whenever the
garbage collector or the event loop gets to them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import wrapt

from .calls import _SCOPE, Scope, in_scope, take_call_kwargs
from .logs import log_internal_error
from .streams import AsyncLoopIterator, LoopIterator, called_by_loop, end_stream_span

if TYPE_CHECKING:
    from collections.abc import Callable

    from .providers.base import ProviderHooks
    from .targets import MethodTarget


def _scope_for(ours: dict[str, Any], outer: Scope | None) -> Scope:
    # A call made inside another one's scope (in a tool function) gets a scope of its
    # own, so the outer call's keywords do not reach it; one of our spans stays current.
    return Scope(ours, outer.invocation if outer is not None else None, [])


def scope_wrapper(hooks: ProviderHooks, target: MethodTarget) -> Callable[..., Any]:
    """The wrapt wrapper of ``Strategy.SCOPE``."""
    if target.is_async:

        async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            sdk_kwargs, ours = take_call_kwargs(kwargs)
            outer = _SCOPE.get()
            scope = None
            if not ours and outer is None:
                result = await wrapped(*args, **sdk_kwargs)
            else:
                scope = _scope_for(ours, outer)
                token = _SCOPE.set(scope)
                try:
                    result = await wrapped(*args, **sdk_kwargs)
                finally:
                    _SCOPE.reset(token)
            if hooks.is_stream(result):
                # Its requests are made as it is iterated, and aclose() must reach them.
                return _AsyncSteps(result, scope or Scope({}, None, []))
            return result

        return async_wrapper

    def sync_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        sdk_kwargs, ours = take_call_kwargs(kwargs)
        outer = _SCOPE.get()
        if not ours and outer is None:
            result = wrapped(*args, **sdk_kwargs)
            # Nothing to hand on; a stream still gets a scope, which learns the request
            # streams it opens, so leaving the caller's loop ends their spans.
            return _SyncSteps(result, Scope({}, None, [])) if hooks.is_stream(result) else result
        scope = _scope_for(ours, outer)
        result = in_scope(scope, lambda: wrapped(*args, **sdk_kwargs))
        if hooks.is_stream(result):
            return _SyncSteps(result, scope)
        return result

    return sync_wrapper


def _end_request_spans(scope: Scope) -> None:
    """The caller left its loop over the public stream: end the spans of the request
    streams it opened, leaving the streams themselves open (a later loop goes on)."""
    for ref in scope.streams or ():
        stream = ref()
        if stream is not None:
            end_stream_span(stream)


class _SyncSteps(wrapt.ObjectProxy):
    """A generator (still a generator to ``isinstance``) whose every step runs in a scope."""

    def __init__(self, generator: Any, scope: Scope) -> None:
        super().__init__(generator)
        self._self_scope = scope

    def _self_step(self, method: Callable[..., Any], *args: Any) -> Any:
        token = _SCOPE.set(self._self_scope)
        try:
            return method(*args)
        finally:
            _SCOPE.reset(token)

    def __iter__(self) -> Any:
        # The caller's own loop: leaving it ends the spans of the requests it opened.
        if called_by_loop(1):
            return LoopIterator(self.__next__, self._self_end_spans)
        return self

    def _self_end_spans(self) -> None:
        _end_request_spans(self._self_scope)

    def __next__(self) -> Any:
        return self._self_step(self.__wrapped__.__next__)

    def send(self, value: Any) -> Any:
        return self._self_step(self.__wrapped__.send, value)

    def throw(self, *args: Any) -> Any:
        return self._self_step(self.__wrapped__.throw, *args)

    def close(self) -> Any:
        try:
            return self._self_step(self.__wrapped__.close)
        finally:
            for stream in self._self_scope.take_streams():
                try:
                    stream.close()
                except Exception as exc:
                    log_internal_error("closing a request stream", exc)


class _AsyncSteps(wrapt.ObjectProxy):
    """The async counterpart of :class:`_SyncSteps`.

    Its ``aclose()`` matters more: an async generator left inside another one is
    only closed when the event loop gets round to finalizing it.
    """

    def __init__(self, generator: Any, scope: Scope) -> None:
        super().__init__(generator)
        self._self_scope = scope

    async def _self_step(self, method: Callable[..., Any], *args: Any) -> Any:
        token = _SCOPE.set(self._self_scope)
        try:
            return await method(*args)
        finally:
            _SCOPE.reset(token)

    def __aiter__(self) -> Any:
        if called_by_loop(1):
            return AsyncLoopIterator(self.__anext__, self._self_end_spans)
        return self

    def _self_end_spans(self) -> None:
        _end_request_spans(self._self_scope)

    async def __anext__(self) -> Any:
        return await self._self_step(self.__wrapped__.__anext__)

    async def asend(self, value: Any) -> Any:
        return await self._self_step(self.__wrapped__.asend, value)

    async def athrow(self, *args: Any) -> Any:
        return await self._self_step(self.__wrapped__.athrow, *args)

    async def aclose(self) -> Any:
        try:
            return await self._self_step(self.__wrapped__.aclose)
        finally:
            for stream in self._self_scope.take_streams():
                try:
                    await stream.aclose()
                except Exception as exc:
                    log_internal_error("closing a request stream", exc)
