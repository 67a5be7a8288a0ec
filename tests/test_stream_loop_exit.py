"""SPEC section 3: a stream left by ``break`` ends its span when the loop is left, while the
caller still holds the stream, and is billed with the usage the provider reported by then,
flagged incomplete; a later loop over the same stream gets the remaining chunks unchanged.

Every kind of stream, sync and async, against the local fake servers."""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry.trace import StatusCode

from cmdrdata_exporter import span_to_event
from cmdrdata_exporter.config import resolve
from tests.stream_shapes import SHAPES, configure, dump, open_stream, rest, take

EVENT_SETTINGS = resolve({}, {})
TAKEN = 3


@pytest.fixture
def servers(openai_server, anthropic_server, gemini_server):
    return {"openai": openai_server, "anthropic": anthropic_server, "gemini": gemini_server}


def assert_partial_usage(provider, attrs, items):
    """The usage the provider had reported when the caller left."""
    if provider == "anthropic":
        # message_start: the whole input (cache included) and the first output token.
        assert attrs["gen_ai.usage.input_tokens"] == 1150
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1000
        assert attrs["gen_ai.usage.output_tokens"] == 1
    elif provider == "gemini":
        # The running total of the last chunk the caller got.
        usage = items[-1].usage_metadata
        assert attrs["gen_ai.usage.input_tokens"] == 100
        assert attrs["gen_ai.usage.output_tokens"] == usage.candidates_token_count + 25
        assert usage.candidates_token_count < 40
    else:
        # OpenAI reports usage only at the end of a stream.
        assert "gen_ai.usage.input_tokens" not in attrs
        assert "gen_ai.usage.output_tokens" not in attrs


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_break_ends_the_span_at_loop_exit(shape, flavour, servers, instrument, spans):
    provider = SHAPES[shape]
    configure(servers, provider)
    reference = await open_stream(shape, servers, flavour, track_usage=False)
    expected = [dump(item) for item in await rest(reference.stream)]
    await reference.close()
    assert spans() == []

    opened = await open_stream(shape, servers, flavour)
    stream = opened.stream  # the caller keeps the stream
    items = await take(stream, TAKEN)
    left_at = time.time_ns()
    assert len(spans()) == 1, "the span did not end when the loop was left"
    if flavour == "async":
        await asyncio.sleep(0.05)
    else:
        time.sleep(0.05)

    [span] = spans()
    assert span.end_time <= left_at
    attrs = dict(span.attributes)
    assert span.status.status_code is StatusCode.UNSET
    assert attrs["cmdrdata.usage.complete"] is False
    assert_partial_usage(provider, attrs, items)
    event = span_to_event(span, EVENT_SETTINGS)
    assert event["metadata"]["usage_complete"] is False
    assert event["input_tokens"] == attrs.get("gen_ai.usage.input_tokens", 0)

    # A later loop over the same stream gets exactly the chunks that were left.
    remaining = await rest(stream)
    assert len(remaining) == len(expected) - TAKEN
    assert [dump(item) for item in items + remaining] == expected
    await opened.close()
    assert len(spans()) == 1


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_a_chunk_taken_by_iter_leaves_no_loop(shape, flavour, servers, instrument, spans):
    """``next(iter(stream))`` enters no loop, so it ends nothing: the stream goes on
    being recorded, and is billed in full."""
    configure(servers, SHAPES[shape])
    opened = await open_stream(shape, servers, flavour)
    stream = opened.stream
    first = await anext(aiter(stream)) if flavour == "async" else next(iter(stream))
    assert first is not None
    assert spans() == []

    await rest(stream)
    await opened.close()
    [span] = spans()
    assert span.attributes["cmdrdata.usage.complete"] is True
