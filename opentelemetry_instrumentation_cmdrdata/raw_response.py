"""``with_raw_response`` / ``with_streaming_response`` support.

These SDK call styles (OpenAI and Anthropic share the same Stainless design)
return a response wrapper instead of the parsed object; the caller decides
when and how to read it. The proxies below leave every attribute (headers,
``http_response``, ``request_id``) native and hook only the doors through
which the body is turned into objects (``parse``) or given up (``close``), so
usage is recorded without ever reading the body ahead of the caller.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import wrapt

from .logs import log_internal_error
from .streams import wrap_stream

if TYPE_CHECKING:
    from .invocation import Invocation
    from .providers.base import ProviderHooks
    from .targets import MethodTarget


def record_value(
    value: Any, invocation: Invocation, hooks: ProviderHooks, target: MethodTarget
) -> Any:
    """Route what a call produced: wrap a stream, or record a response and finish."""
    if hooks.is_stream(value):
        return wrap_stream(value, invocation, hooks, target.is_async)
    try:
        hooks.on_response(invocation, target, value)
        # A whole response carries the call's whole usage, if it carries any.
        invocation.usage_complete = (
            invocation.input_tokens is not None or invocation.output_tokens is not None
        )
    except Exception as exc:
        log_internal_error("reading the response", exc)
    invocation.finish()
    return value


class _RawCore(wrapt.ObjectProxy):
    def __init__(
        self, raw: Any, invocation: Invocation, hooks: ProviderHooks, target: MethodTarget
    ) -> None:
        super().__init__(raw)
        self._self_invocation = invocation
        self._self_hooks = hooks
        self._self_target = target
        self._self_routed: dict[int, tuple[Any, Any]] = {}

    def _self_route(self, value: Any) -> Any:
        # parse() caches its result, so the same stream object may come back:
        # hand out the same wrapper for it.
        seen = self._self_routed.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        if self._self_invocation.finished and not self._self_hooks.is_stream(value):
            return value
        routed = record_value(value, self._self_invocation, self._self_hooks, self._self_target)
        self._self_routed[id(value)] = (value, routed)
        return routed

    def _self_body_was_read(self) -> bool:
        http_response = getattr(self.__wrapped__, "http_response", None)
        return http_response is not None and getattr(http_response, "_content", None) is not None

    def __del__(self) -> None:
        try:
            self._self_invocation.finish()
        except Exception:
            pass


class RawResponseProxy(_RawCore):
    """A sync raw response (``parse()`` is a plain method)."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_route(self.__wrapped__.parse(*args, **kwargs))

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_settle()

    def _self_settle(self) -> None:
        """On close: if the caller read the body without parse(), read usage from it."""
        invocation = self._self_invocation
        if invocation.finished:
            return
        if self._self_body_was_read():
            try:
                self._self_route(self.__wrapped__.parse())
            except Exception as exc:
                log_internal_error("parsing a raw response body", exc)
        invocation.finish()


class AsyncRawResponseProxy(_RawCore):
    """An async raw response (``await parse()``)."""

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_route(await self.__wrapped__.parse(*args, **kwargs))

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            await self._self_settle()

    async def _self_settle(self) -> None:
        invocation = self._self_invocation
        if invocation.finished:
            return
        if self._self_body_was_read():
            try:
                self._self_route(await self.__wrapped__.parse())
            except Exception as exc:
                log_internal_error("parsing a raw response body", exc)
        invocation.finish()


def wrap_raw_response(
    raw: Any,
    invocation: Invocation,
    hooks: ProviderHooks,
    target: MethodTarget,
    streaming: bool,
) -> Any:
    """Return the raw response, its usage recorded now or when the caller parses it."""
    parse = getattr(type(raw), "parse", None)
    is_async = parse is not None and inspect.iscoroutinefunction(parse)
    if is_async:
        return AsyncRawResponseProxy(raw, invocation, hooks, target)
    proxy = RawResponseProxy(raw, invocation, hooks, target)
    if not streaming and proxy._self_body_was_read():
        # with_raw_response of a plain call: the body is already in memory and
        # parse() caches, so reading usage now costs the caller nothing.
        try:
            proxy._self_route(raw.parse())
        except Exception as exc:
            log_internal_error("parsing a raw response", exc)
            invocation.finish()
        return raw
    return proxy
