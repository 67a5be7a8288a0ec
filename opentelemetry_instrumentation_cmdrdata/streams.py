"""Stream wrappers: the caller iterates them like the SDK's own stream.

They are transparent proxies (``isinstance`` and every attribute still work)
that feed each chunk to the provider's hook and finish the invocation on
every way a stream can end: exhaustion, an error, ``close()``/``aclose()``,
leaving a ``with`` block, leaving a ``for`` loop over it, closing the
underlying HTTP response (what the SDK stream helpers do), or garbage
collection. The sync and async classes share all logic but the ``await``.
"""

from __future__ import annotations

import dis
import sys
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import wrapt

from .logs import log_internal_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

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


_LOOP_OPCODES = frozenset(dis.opmap[name] for name in ("GET_ITER", "GET_AITER"))


def called_by_loop(depth: int) -> bool:
    """Whether the caller ``depth`` frames up asks for an iterator for a ``for`` (or
    ``async for``) statement, rather than by ``iter()`` (``next(iter(stream))`` takes a
    chunk without entering, or leaving, any loop). Frames of wrapt are skipped.
    """
    try:
        frame: Any = sys._getframe(depth + 1)
        while frame.f_globals.get("__name__", "").startswith("wrapt"):
            frame = frame.f_back
        return frame.f_code.co_code[frame.f_lasti] in _LOOP_OPCODES
    except Exception:  # no frames to read (another interpreter): take it for a loop
        return True


class _Loop:
    """What one ``for`` (or ``async for``) loop over a stream iterates, owned by that loop.

    Leaving the loop early (``break``, ``return``, an exception in its body) drops
    the loop's only reference, and reference counting runs ``__del__`` at once: the
    span ends right there, as leaving a ``for`` over a generator closes it. Only the
    span: the stream stays open, and a later loop over it gets a fresh ``_Loop``
    and the remaining chunks, unchanged. (An async generator would not do: the event
    loop finalizes those later, not when the loop is left.) An iterator asked for by
    ``iter()`` rather than by a loop statement (``next(iter(stream))``) is not one of
    these: taking a chunk that way leaves no loop, so it ends nothing.
    """

    __slots__ = ("_on_leave", "_step")

    def __init__(self, step: Callable[[], Any], on_leave: Callable[[], None]) -> None:
        self._step = step
        self._on_leave = on_leave

    def __del__(self) -> None:
        try:
            self._on_leave()
        except Exception as exc:
            log_internal_error("ending the span of a stream left by its loop", exc)


class LoopIterator(_Loop):
    """A sync loop's iterator: each step is ``step()``; see :class:`_Loop`."""

    __slots__ = ()

    def __iter__(self) -> LoopIterator:
        return self

    def __next__(self) -> Any:
        return self._step()


class AsyncLoopIterator(_Loop):
    """An ``async for`` loop's iterator: each step awaits ``step()``; see :class:`_Loop`."""

    __slots__ = ()

    def __aiter__(self) -> AsyncLoopIterator:
        return self

    def __anext__(self) -> Awaitable[Any]:
        return self._step()


class _Reader:
    """Reads an SDK stream for the caller: each chunk to the provider's hook, and the
    span ended with the stream (exhausted or raising)."""

    __slots__ = ("_invocation", "_on_chunk", "_read", "_stream")
    #: The SDK stream's method that gives the next chunk.
    step: ClassVar[str]

    def __init__(
        self,
        read: Callable[[], Any],
        invocation: Invocation,
        on_chunk: Callable[..., bool],
        stream: _StreamCore | None,
    ) -> None:
        self._read = read  # the SDK stream's bound __next__ / __anext__
        self._invocation = invocation
        self._on_chunk = on_chunk
        # A loop's reader keeps our stream alive (and its span open) while the loop
        # runs; the stream's own reader does not (the stream holds it: no cycle).
        self._stream = stream

    def _accept(self, chunk: Any) -> bool:
        """Record a chunk; False means the caller must not see it."""
        invocation = self._invocation
        if invocation.first_chunk_ns is None:
            invocation.mark_first_chunk()
        try:
            return self._on_chunk(invocation, chunk)
        except Exception as exc:
            log_internal_error("reading a stream chunk", exc)
            return True


_R = TypeVar("_R", bound=_Reader)


class _SyncReader(_Reader):
    __slots__ = ()
    step = "__next__"

    def __iter__(self) -> _SyncReader:
        return self

    def __next__(self) -> Any:
        # _accept inlined: this runs once per chunk.
        invocation = self._invocation
        while True:
            try:
                chunk = self._read()
            except StopIteration:
                invocation.finish()
                raise
            except BaseException as exc:
                invocation.finish(exc)
                raise
            if invocation.first_chunk_ns is None:
                invocation.mark_first_chunk()
            try:
                if self._on_chunk(invocation, chunk):
                    return chunk
            except Exception as exc:
                log_internal_error("reading a stream chunk", exc)
                return chunk


class _AsyncReader(_Reader):
    __slots__ = ()
    step = "__anext__"

    def __aiter__(self) -> _AsyncReader:
        return self

    async def __anext__(self) -> Any:
        invocation = self._invocation
        while True:
            try:
                chunk = await self._read()
            except StopAsyncIteration:
                invocation.finish()
                raise
            except BaseException as exc:
                invocation.finish(exc)
                raise
            if self._accept(chunk):
                return chunk


def _end_span_on_leave(reader: _Reader) -> None:
    """``__del__`` of a loop's reader: see :class:`_Loop`."""
    try:
        reader._invocation.finish()
    except Exception as exc:
        log_internal_error("ending the span of a stream left by its loop", exc)


class _SyncLoopReader(_SyncReader):
    """The reader one ``for`` loop over our stream owns (see :class:`_Loop`); it does the
    chunk work itself, so a loop costs no extra call per chunk."""

    __slots__ = ()
    __del__ = _end_span_on_leave


class _AsyncLoopReader(_AsyncReader):
    """The reader one ``async for`` loop over our stream owns: see :class:`_SyncLoopReader`."""

    __slots__ = ()
    __del__ = _end_span_on_leave


class _StreamCore(wrapt.ObjectProxy):
    """What sync and async stream wrappers share."""

    def __init__(self, stream: Any, invocation: Invocation, hooks: ProviderHooks) -> None:
        super().__init__(stream)
        self._self_invocation = invocation
        self._self_on_chunk = hooks.on_chunk
        self._self_response: ClosingResponse | None = None
        # For next() / anext() called on the stream itself, outside a loop.
        self._self_reader: _Reader | None = None

    def _self_new_reader(self, reader_type: type[_R], stream: _StreamCore | None) -> _R:
        read = getattr(self.__wrapped__, reader_type.step)
        return reader_type(read, self._self_invocation, self._self_on_chunk, stream)

    def _self_own_reader(self, reader_type: type[_R]) -> _R:
        """The stream's own reader, for next() outside a loop."""
        reader = self._self_reader
        if reader is None:
            reader = self._self_reader = self._self_new_reader(reader_type, None)
        return reader

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


def end_stream_span(stream: Any) -> None:
    """End the span of a stream we wrapped, leaving the stream open; others are left alone."""
    if isinstance(stream, _StreamCore):
        stream._self_invocation.finish()


class SyncStreamWrapper(_StreamCore):
    def __iter__(self) -> _SyncReader:
        if called_by_loop(1):
            return self._self_new_reader(_SyncLoopReader, self)
        return self._self_own_reader(_SyncReader)

    def __next__(self) -> Any:
        return self._self_own_reader(_SyncReader).__next__()

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
    def __aiter__(self) -> _AsyncReader:
        if called_by_loop(1):
            return self._self_new_reader(_AsyncLoopReader, self)
        return self._self_own_reader(_AsyncReader)

    def __anext__(self) -> Awaitable[Any]:
        return self._self_own_reader(_AsyncReader).__anext__()

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


def helper_loop_wrapper(is_async: bool) -> Callable[..., Any]:
    """The wrapt wrapper for ``__iter__`` (or ``__aiter__``) of an SDK helper stream.

    The helpers (Anthropic ``messages.stream()``, OpenAI ``.stream()``) read our
    stream as their ``_raw_stream`` inside a generator of their own, which a
    ``break`` in the caller's loop does not close; so the caller's loop over the
    helper gets a loop iterator of ours, whose leaving ends the span.
    """
    if is_async:
        raw_type: type = AsyncStreamWrapper
        loop_type: type[_Loop] = AsyncLoopIterator
        step = "__anext__"
    else:
        raw_type, loop_type, step = SyncStreamWrapper, LoopIterator, "__next__"

    def helper_loop(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        iterator = wrapped(*args, **kwargs)
        try:
            raw = getattr(instance, "_raw_stream", None)
            if isinstance(raw, raw_type) and called_by_loop(1):
                return loop_type(getattr(iterator, step), raw._self_invocation.finish)
        except Exception as exc:
            log_internal_error("wrapping a loop over a stream helper", exc)
        return iterator

    return helper_loop


def wrap_stream(stream: Any, invocation: Invocation, hooks: ProviderHooks, is_async: bool) -> Any:
    """Wrap a sync or async SDK stream so its span ends exactly once.

    Which one is decided by the method that returned it, not by duck typing: another
    instrumentation's proxy may offer both protocols.
    """
    if is_async:
        return AsyncStreamWrapper(stream, invocation, hooks)
    return SyncStreamWrapper(stream, invocation, hooks)
