"""SPEC section 3: ``cmdrdata.usage.complete`` is on every span of ours, true exactly when the
provider reported the call's usage in full, and reaches the event as ``metadata.usage_complete``."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google.genai import errors as genai_errors

from cmdrdata_exporter import span_to_event
from cmdrdata_exporter.config import resolve
from tests.stream_shapes import (
    ANTHROPIC_KWARGS,
    FULL_USAGE,
    MESSAGES,
    SHAPES,
    configure,
    open_stream,
    rest,
)

EVENT_SETTINGS = resolve({}, {})


@pytest.fixture
def servers(openai_server, anthropic_server, gemini_server):
    return {"openai": openai_server, "anthropic": anthropic_server, "gemini": gemini_server}


def complete_of(span):
    event = span_to_event(span, EVENT_SETTINGS)
    assert event["metadata"]["usage_complete"] is span.attributes["cmdrdata.usage.complete"]
    return span.attributes["cmdrdata.usage.complete"]


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_exhausted_stream_is_complete(shape, flavour, servers, instrument, spans):
    provider = SHAPES[shape]
    configure(servers, provider)
    opened = await open_stream(shape, servers, flavour)
    await rest(opened.stream)
    await opened.close()

    [span] = spans()
    assert complete_of(span) is True
    attrs = span.attributes
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (
        FULL_USAGE[provider]
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_plain_call_is_complete(provider, servers, instrument, spans):
    configure(servers, provider)
    client = servers[provider].client()
    if provider == "openai":
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        client.embeddings.create(model="text-embedding-3-small", input="hi")
    elif provider == "anthropic":
        client.messages.create(**ANTHROPIC_KWARGS)
    else:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")

    assert [complete_of(span) for span in spans()] == [True] * len(spans())
    assert spans()


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_failed_call_is_not_complete(provider, servers, instrument, spans):
    servers[provider].next(status=500)
    client = servers[provider].client()
    errors = (openai.APIError, anthropic.APIError, genai_errors.APIError)
    with pytest.raises(errors):
        if provider == "openai":
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        elif provider == "anthropic":
            client.messages.create(**ANTHROPIC_KWARGS)
        else:
            client.models.generate_content(model="gemini-2.5-flash", contents="hi")

    [span] = spans()
    assert "error.type" in span.attributes
    assert complete_of(span) is False


@pytest.mark.parametrize("fault", ["drop_after", "truncate_after"])
@pytest.mark.parametrize("shape", ["openai_chat", "anthropic_create", "gemini"])
async def test_stream_cut_short_is_not_complete(shape, fault, servers, instrument, spans):
    """A dropped connection fails the call; one that ends cleanly before the final usage
    does not, and is billed as far as reported: neither is complete."""
    provider = SHAPES[shape]
    configure(servers, provider, **{fault: 4})
    opened = await open_stream(shape, servers, "sync")
    try:
        await rest(opened.stream)
    except Exception:  # each SDK's (or HTTP library's) own error
        assert fault == "drop_after"
    await opened.close()

    [span] = spans()
    assert ("error.type" in span.attributes) is (fault == "drop_after")
    assert complete_of(span) is False


def test_stream_without_usage_is_not_complete(servers, tracer_provider, spans, monkeypatch):
    from opentelemetry_instrumentation_cmdrdata import CmdrDataInstrumentor

    monkeypatch.setenv("CMDRDATA_INJECT_STREAM_USAGE", "false")
    instrumentor = CmdrDataInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        client = servers["openai"].client()
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    finally:
        instrumentor.uninstrument()

    [span] = spans()
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert complete_of(span) is False
