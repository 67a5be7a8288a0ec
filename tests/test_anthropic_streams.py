"""Anthropic streams: the span of ``messages.stream()`` starts when the request is made,
and every stream's span ends exactly once however it ends (exhaustion, ``break``,
``close()``, leaving ``with``, closing the response, garbage collection, an error),
with the usage of ``message_start`` and the last ``message_delta`` (never a sum)."""

from __future__ import annotations

import asyncio
import gc
import time
from types import SimpleNamespace

import anthropic
import pytest
from opentelemetry.trace import StatusCode

from opentelemetry_instrumentation_cmdrdata.providers.anthropic import record_usage
from tests import test_anthropic_calls
from tests.servers.anthropic_server import AnthropicUsage
from tests.stream_shapes import rest
from tests.test_anthropic_calls import (
    BASE_KWARGS,
    SHAPES,
    USAGE,
    assert_usage,
    resolve,
    run_call,
)

FLAVOURS = ["sync", "async"]
CREATE_STREAM, MANAGER = SHAPES[1], SHAPES[3]

clients = test_anthropic_calls.clients  # the shared client fixture


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("resource", ["messages", "beta.messages"])
async def test_stream_manager_span_starts_on_enter(
    flavour, resource, anthropic_server, clients, instrument, spans
):
    client = clients(flavour)
    messages = client.messages if resource == "messages" else client.beta.messages
    manager = messages.stream(**BASE_KWARGS)
    time.sleep(0.05)
    assert anthropic_server.requests == []
    before_enter = time.time_ns()

    if flavour == "sync":
        with manager as stream:
            stream.until_done()
    else:
        async with manager as stream:
            await stream.until_done()

    [span] = spans()
    assert span.start_time >= before_enter
    assert len(anthropic_server.requests) == 1


def test_stream_manager_never_entered_makes_no_span(anthropic_server, clients, instrument, spans):
    clients("sync").messages.stream(**BASE_KWARGS)
    assert spans() == []
    assert anthropic_server.requests == []


async def _open(client, shape):
    """Open a stream of ``shape``; return (stream, exit) where exit() leaves its manager."""
    if shape is CREATE_STREAM:
        stream = await resolve(client.messages.create(stream=True, **BASE_KWARGS))
        return stream, None
    manager = client.messages.stream(**BASE_KWARGS)
    if hasattr(manager, "__aenter__"):
        stream = await manager.__aenter__()
        return stream, lambda: manager.__aexit__(None, None, None)
    stream = manager.__enter__()
    return stream, lambda: manager.__exit__(None, None, None)


async def _next_items(stream, n):
    """``n`` items by ``next()``, outside any loop (leaving a loop would end the span)."""
    if hasattr(stream, "__anext__"):
        return [await stream.__anext__() for _ in range(n)]
    return [next(stream) for _ in range(n)]


EARLY_EXITS = ["close", "with_exit", "response_close", "gc"]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("shape", [CREATE_STREAM, MANAGER], ids=lambda s: s.name)
@pytest.mark.parametrize("how", EARLY_EXITS)
async def test_early_exit_ends_the_span_once(
    flavour, shape, how, anthropic_server, clients, instrument, spans
):
    anthropic_server.configure(usage=USAGE, chunks=50)
    stream, leave_manager = await _open(clients(flavour), shape)

    items = await _next_items(stream, 3)
    assert len(items) == 3
    assert spans() == []  # still open until it ends
    if how == "close":
        await resolve(stream.close())
    elif how == "with_exit":
        if leave_manager is not None:
            await resolve(leave_manager())
        elif flavour == "sync":
            stream.__exit__(None, None, None)
        else:
            await stream.__aexit__(None, None, None)
    elif how == "response_close":
        await resolve(stream.response.aclose() if flavour == "async" else stream.response.close())
    else:
        del stream, items, leave_manager
        for _ in range(3):  # async generators are finalized by the event loop
            gc.collect()
            await asyncio.sleep(0)
            if spans():
                break

    [span] = spans()
    attrs = dict(span.attributes)
    assert span.status.status_code is StatusCode.UNSET
    # What message_start said: the whole input, and the first output token.
    assert_usage(attrs, output_tokens=1)
    assert "gen_ai.response.finish_reasons" not in attrs
    if how != "gc":
        await resolve(stream.close())
        assert len(spans()) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("shape", [CREATE_STREAM, MANAGER], ids=lambda s: s.name)
async def test_exhausted_then_closed_ends_once(
    flavour, shape, anthropic_server, clients, instrument, spans
):
    anthropic_server.configure(usage=USAGE)
    stream, leave_manager = await _open(clients(flavour), shape)
    await rest(stream)
    await resolve(stream.close())
    if leave_manager is not None:
        await resolve(leave_manager())

    [span] = spans()
    assert_usage(dict(span.attributes))


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("shape", [CREATE_STREAM, MANAGER], ids=lambda s: s.name)
async def test_error_event_mid_stream(flavour, shape, anthropic_server, clients, instrument, spans):
    anthropic_server.configure(usage=USAGE, error_after=4)

    with pytest.raises(anthropic.APIStatusError) as caught:
        await run_call(clients(flavour), "messages", shape)

    assert caught.value.body["error"]["type"] == "overloaded_error"
    [span] = spans()
    attrs = dict(span.attributes)
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == type(caught.value).__qualname__
    assert_usage(attrs, output_tokens=1)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("shape", [CREATE_STREAM, MANAGER], ids=lambda s: s.name)
async def test_connection_dropped_mid_stream(
    flavour, shape, anthropic_server, clients, instrument, spans
):
    anthropic_server.configure(usage=USAGE, drop_after=4)

    with pytest.raises(Exception) as caught:
        await run_call(clients(flavour), "messages", shape)

    [span] = spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(caught.value).__qualname__


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("shape", [CREATE_STREAM, MANAGER], ids=lambda s: s.name)
@pytest.mark.parametrize("delta_input_fields", [True, False], ids=["new-api", "old-api"])
async def test_stream_usage_last_value_wins(
    flavour, shape, delta_input_fields, anthropic_server, clients, instrument, spans
):
    """message_delta repeats the input fields in newer API versions (and only has the
    output in older ones): either way the input is counted once."""
    anthropic_server.configure(usage=USAGE, delta_usage_input_fields=delta_input_fields)

    await run_call(clients(flavour), "messages", shape)

    [span] = spans()
    assert_usage(dict(span.attributes))
    assert span.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)


async def test_max_tokens_stop_reason(anthropic_server, clients, instrument, spans):
    anthropic_server.configure(stop_reason="max_tokens", usage=AnthropicUsage(output_tokens=256))
    await run_call(clients("sync"), "messages", MANAGER)
    [span] = spans()
    assert span.attributes["gen_ai.response.finish_reasons"] == ("max_tokens",)
    assert span.attributes["gen_ai.usage.output_tokens"] == 256
    # No cache activity reported as zero, not left out.
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 0
    assert span.attributes["gen_ai.usage.input_tokens"] == 17


class _Invocation(SimpleNamespace):
    def __init__(self):
        super().__init__(
            input_tokens=None,
            output_tokens=None,
            cache_read_tokens=None,
            cache_write_tokens=None,
            reasoning_tokens=None,
        )


def test_record_usage_merges_events_without_summing():
    invocation = _Invocation()
    start = SimpleNamespace(
        input_tokens=100, cache_read_input_tokens=1000, cache_creation_input_tokens=50,
        output_tokens=1,
    )  # fmt: skip
    record_usage(invocation, start)
    assert (invocation.input_tokens, invocation.output_tokens) == (1150, 1)

    # An older API's message_delta: output only; the input stays as message_start said.
    record_usage(invocation, SimpleNamespace(output_tokens=30, input_tokens=None))
    assert (invocation.input_tokens, invocation.output_tokens) == (1150, 30)
    assert (invocation.cache_read_tokens, invocation.cache_write_tokens) == (1000, 50)

    # A newer one repeats (or corrects) the input fields: the last value wins.
    delta = SimpleNamespace(
        input_tokens=120, cache_read_input_tokens=1000, cache_creation_input_tokens=None,
        output_tokens=42, output_tokens_details=SimpleNamespace(thinking_tokens=12),
    )  # fmt: skip
    record_usage(invocation, delta)
    assert invocation.input_tokens == 120 + 1000 + 50
    assert invocation.output_tokens == 42
    assert invocation.reasoning_tokens == 12
    assert (invocation.cache_read_tokens, invocation.cache_write_tokens) == (1000, 50)


def test_record_usage_without_cache_fields():
    invocation = _Invocation()
    record_usage(invocation, SimpleNamespace(input_tokens=7, output_tokens=3))
    assert (invocation.input_tokens, invocation.output_tokens) == (7, 3)
    assert invocation.cache_read_tokens is None
    assert invocation.cache_write_tokens is None
