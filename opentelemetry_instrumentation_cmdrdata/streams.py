"""Stream wrappers: the caller iterates them like the SDK's own stream.

They are transparent proxies (``isinstance`` and every attribute still work)
that feed each chunk to the provider's hook and finish the invocation on
every way a stream can end: exhaustion, an error, ``close()``/``aclose()``,
leaving a ``with`` block, closing the underlying HTTP response (what the SDK
stream helpers do), or garbage collection. The sync and async classes share
all logic but the ``await``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import wrapt

from .logs import log_internal_error

if TYPE_CHECKING:
    from .invocation import Invocation
    from .providers.base import ProviderHooks


class ClosingResponse(wrapt.ObjectProxy):
    """The stream's HTTP response; closing it also finishes the span.

    SDK stream helpers (``chat.completions.stream``, ``responses.stream``)
    close the response directly rather than the stream, so this is the one
    door every close goes through.
    """

    def __init__(self, response: Any, invocation: Invocation) -> None:
        super().__init__(response)
        self._self_invocation = invocation

    def close(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.__wrapped__.close(*args, **kwargs)
        finally:
            self._self_invocation.finish()

    async def aclose(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self.__wrapped__.aclose(*args, **kwargs)
        finally:
            self._self_invocation.finish()


class _StreamCore(wrapt.ObjectProxy):
    """What sync and async stream wrappers share."""

    def __init__(self, stream: Any, invocation: Invocation, hooks: ProviderHooks) -> None:
        super().__init__(stream)
        self._self_invocation = invocation
        self._self_on_chunk = hooks.on_chunk
        self._self_response: ClosingResponse | None = None

    def _self_accept(self, chunk: Any) -> bool:
        """Record a chunk; False means the caller must not see it."""
        invocation = self._self_invocation
        if invocation.first_chunk_ns is None:
            invocation.mark_first_chunk()
        try:
            return self._self_on_chunk(invocation, chunk)
        except Exception as exc:
            log_internal_error("reading a stream chunk", exc)
            return True

    @property
    def response(self) -> Any:
        cached = self._self_response
        if cached is None:
            cached = ClosingResponse(self.__wrapped__.response, self._self_invocation)
            self._self_response = cached
        return cached

    def __del__(self) -> None:
        # Garbage collection of an abandoned stream still ends its span.
        try:
            self._self_invocation.finish()
        except Exception:
            pass


class SyncStreamWrapper(_StreamCore):
    def __iter__(self) -> SyncStreamWrapper:
        return self

    def __next__(self) -> Any:
        invocation = self._self_invocation
        while True:
            try:
                chunk = self.__wrapped__.__next__()
            except StopIteration:
                invocation.finish()
                raise
            except BaseException as exc:
                invocation.finish(exc)
                raise
            if invocation.first_chunk_ns is None:
                invocation.mark_first_chunk()
            try:
                if self._self_on_chunk(invocation, chunk):
                    return chunk
            except Exception as exc:
                log_internal_error("reading a stream chunk", exc)
                return chunk

    def __enter__(self) -> SyncStreamWrapper:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_invocation.finish()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_invocation.finish()


class AsyncStreamWrapper(_StreamCore):
    def __aiter__(self) -> AsyncStreamWrapper:
        return self

    async def __anext__(self) -> Any:
        invocation = self._self_invocation
        while True:
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                invocation.finish()
                raise
            except BaseException as exc:
                invocation.finish(exc)
                raise
            if self._self_accept(chunk):
                return chunk

    async def __aenter__(self) -> AsyncStreamWrapper:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_invocation.finish()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_invocation.finish()

    async def aclose(self) -> None:
        try:
            closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
            await closer()
        finally:
            self._self_invocation.finish()


def wrap_stream(stream: Any, invocation: Invocation, hooks: ProviderHooks, is_async: bool) -> Any:
    """Wrap a sync or async SDK stream so its span ends exactly once.

    Which one is decided by the method that returned it, not by duck typing: another
    instrumentation's proxy may offer both protocols.
    """
    if is_async:
        return AsyncStreamWrapper(stream, invocation, hooks)
    return SyncStreamWrapper(stream, invocation, hooks)
