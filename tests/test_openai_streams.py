"""OpenAI streams: usage never lost, the injected usage chunk never seen by the
caller, and the span ending exactly once however the stream ends."""

from __future__ import annotations

import gc

import pytest

from tests.servers.openai_server import OpenAIUsage

MESSAGES = [{"role": "user", "content": "Say hi"}]
USAGE = OpenAIUsage(prompt_tokens=41, completion_tokens=73, cached_tokens=16, reasoning_tokens=8)


def chat_stream(client, **extra):
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra
    )


def test_usage_is_requested_and_its_chunk_hidden(
    openai_server, make_openai_client, instrument, spans
):
    openai_server.configure(usage=USAGE, chunks=3)
    chunks = list(chat_stream(make_openai_client()))

    assert openai_server.requests[-1].json["stream_options"] == {"include_usage": True}
    assert all(chunk.choices for chunk in chunks), "the usage-only chunk leaked to the caller"
    assert all(chunk.usage is None for chunk in chunks)
    [span] = spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 41
    assert span.attributes["gen_ai.usage.output_tokens"] == 73
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 16
    assert span.attributes["gen_ai.usage.reasoning.output_tokens"] == 8


def test_caller_who_asked_for_usage_gets_the_usage_chunk(
    openai_server, make_openai_client, instrument, spans
):
    openai_server.configure(usage=USAGE, chunks=3)
    options = {"include_usage": True}
    chunks = list(chat_stream(make_openai_client(), stream_options=options))

    assert options == {"include_usage": True}
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 41
    assert spans()[0].attributes["gen_ai.usage.input_tokens"] == 41


def test_callers_dicts_are_never_mutated(openai_server, make_openai_client, instrument, spans):
    options = {"include_obfuscation": False}
    metadata = {"team": "a"}
    list(chat_stream(make_openai_client(), stream_options=options, metadata=metadata))

    assert options == {"include_obfuscation": False}
    assert metadata == {"team": "a"}
    sent = openai_server.requests[-1].json
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert sent["metadata"] == {"team": "a"}


def test_injection_can_be_switched_off(
    openai_server, make_openai_client, tracer_provider, spans, monkeypatch
):
    from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor

    monkeypatch.setenv("CMDRDATA_INJECT_STREAM_USAGE", "false")
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        list(chat_stream(make_openai_client()))
    finally:
        instrumentor.uninstrument()
    assert "stream_options" not in openai_server.requests[-1].json
    [span] = spans()
    assert "gen_ai.usage.input_tokens" not in span.attributes


@pytest.mark.parametrize("ending", ["break", "close", "with", "gc", "exhaust"])
def test_sync_stream_span_ends_exactly_once(
    ending, openai_server, make_openai_client, instrument, span_exporter, spans
):
    openai_server.configure(chunks=20)
    client = make_openai_client()
    if ending == "with":
        with chat_stream(client) as stream:
            for _ in stream:
                break
    else:
        stream = chat_stream(client)
        for _ in stream:
            if ending != "exhaust":
                break
        if ending == "close":
            stream.close()
        elif ending == "gc" or ending == "break":
            del stream
            gc.collect()
    assert len(spans()) == 1
    # Closing again or collecting later adds nothing.
    gc.collect()
    assert len(span_exporter.get_finished_spans()) == 1


@pytest.mark.parametrize("ending", ["break_aclose", "async_with", "exhaust", "close"])
async def test_async_stream_span_ends_exactly_once(
    ending, openai_server, make_openai_client, instrument, spans
):
    openai_server.configure(chunks=20, usage=USAGE)
    client = make_openai_client("async")
    stream = await chat_stream(client)
    if ending == "async_with":
        async with stream:
            async for _ in stream:
                break
    else:
        async for _ in stream:
            if ending != "exhaust":
                break
        if ending == "break_aclose":
            await stream.response.aclose()
        elif ending == "close":
            await stream.close()
    [span] = spans()
    if ending == "exhaust":
        assert span.attributes["gen_ai.usage.output_tokens"] == 73


def test_stream_helper_closed_early_ends_span(openai_server, make_openai_client, instrument, spans):
    openai_server.configure(chunks=20)
    client = make_openai_client()
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        for _ in stream:
            break
    assert len(spans()) == 1


def test_stream_helper_span_starts_on_enter(openai_server, make_openai_client, instrument, spans):
    client = make_openai_client()
    manager = client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES)
    assert openai_server.requests == []
    with manager as stream:
        stream.until_done()
    [span] = spans()
    assert span.attributes["gen_ai.request.stream"] is True


def test_error_mid_stream_reaches_caller_and_marks_span(
    openai_server, make_openai_client, instrument, spans
):
    openai_server.next(chunks=10, error_after=3)
    caught = None
    try:
        for _ in chat_stream(make_openai_client()):
            pass
    except Exception as exc:  # the SDK's own exception type
        caught = exc
    assert caught is not None
    [span] = spans()
    assert span.attributes["error.type"] == type(caught).__qualname__
    assert span.status.status_code.name == "ERROR"


def test_dropped_connection_mid_stream(openai_server, make_openai_client, instrument, spans):
    openai_server.next(chunks=10, drop_after=3)
    with pytest.raises(Exception) as caught:
        for _ in chat_stream(make_openai_client()):
            pass
    [span] = spans()
    assert span.attributes["error.type"] == type(caught.value).__qualname__


def test_truncated_stream_ends_span_with_what_is_known(
    openai_server, make_openai_client, instrument, spans
):
    openai_server.next(chunks=10, truncate_after=4)
    chunks = list(chat_stream(make_openai_client()))
    assert chunks
    [span] = spans()
    assert "error.type" not in span.attributes
    assert "gen_ai.usage.input_tokens" not in span.attributes


def test_500_chunk_stream_counts(openai_server, make_openai_client, instrument, spans):
    openai_server.configure(chunks=500, usage=USAGE)
    chunks = list(chat_stream(make_openai_client()))
    assert len(chunks) == 502  # role chunk, 500 content chunks, finish chunk
    assert spans()[0].attributes["gen_ai.usage.output_tokens"] == 73
