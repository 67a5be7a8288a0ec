"""Every OpenAI method of SPEC §3, sync and async, plain / raw / streaming response:
one span each, with the exact attributes and token values the server sent."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from tests.openai_calls import SHAPES, CallShape, run_call
from tests.servers.openai_server import OpenAIUsage

USAGE = OpenAIUsage(
    prompt_tokens=1200,
    completion_tokens=300,
    cached_tokens=1000,
    reasoning_tokens=40,
    cache_write_tokens=25,
)

MATRIX = [
    pytest.param(shape, mode, id=f"{shape.name}-{mode}") for shape in SHAPES for mode in shape.modes
]


def expected_model(shape: CallShape) -> str:
    return {
        "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    }.get(shape.kwargs["model"], shape.kwargs["model"])


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(("shape", "mode"), MATRIX)
async def test_one_span_with_exact_attributes(
    flavour, shape, mode, openai_server, make_openai_client, instrument, spans
):
    openai_server.configure(usage=USAGE, content=shape.content, response_id="id-fixed-1")
    client = make_openai_client(flavour)

    _result, items = await run_call(client, shape, mode)

    [span] = spans()
    attrs = dict(span.attributes)
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is not StatusCode.ERROR
    assert span.name == f"{shape.operation} {shape.kwargs['model']}"
    assert attrs["gen_ai.operation.name"] == shape.operation
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == shape.kwargs["model"]
    assert attrs["gen_ai.response.model"] == expected_model(shape)
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == openai_server.port
    assert attrs["gen_ai.usage.input_tokens"] == 1200
    if shape.embeddings:
        assert "gen_ai.usage.output_tokens" not in attrs
        assert "gen_ai.response.id" not in attrs
        return
    assert attrs["gen_ai.response.id"] == "id-fixed-1"
    assert attrs["gen_ai.usage.output_tokens"] == 300
    if shape.operation == "chat":
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1000
    if shape.operation == "chat" and shape.resource == "responses":
        assert attrs["gen_ai.usage.cache_write.input_tokens"] == 25
        assert attrs["gen_ai.usage.reasoning.output_tokens"] == 40
    elif shape.resource == "chat.completions":
        assert attrs["gen_ai.usage.reasoning.output_tokens"] == 40
    assert attrs["gen_ai.response.finish_reasons"] in (("stop",), ("completed",))
    if shape.streaming:
        assert attrs["gen_ai.request.stream"] is True
        assert attrs["gen_ai.response.time_to_first_chunk"] > 0
        assert items, "the stream yielded nothing"
    else:
        assert "gen_ai.request.stream" not in attrs
        assert "gen_ai.response.time_to_first_chunk" not in attrs


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(("shape", "mode"), MATRIX)
async def test_app_sees_what_it_would_see_uninstrumented(
    flavour, shape, mode, openai_server, make_openai_client, instrument
):
    """Same result type and the same stream items, with and without us."""
    openai_server.configure(usage=USAGE, content=shape.content, response_id="id-fixed-1")
    client = make_openai_client(flavour)
    instrumented_result, instrumented_items = await run_call(client, shape, mode)
    instrumented_body = openai_server.requests[-1].json

    instrument.uninstrument()
    plain_result, plain_items = await run_call(make_openai_client(flavour), shape, mode)
    plain_body = openai_server.requests[-1].json

    assert instrumented_result.__class__ is plain_result.__class__
    assert isinstance(instrumented_result, plain_result.__class__)
    if not shape.streaming:
        assert _comparable(instrumented_result) == _comparable(plain_result)
    assert [_comparable(item) for item in instrumented_items] == [
        _comparable(item) for item in plain_items
    ]
    if not (shape.streaming and shape.resource != "responses"):
        assert instrumented_body == plain_body


def _comparable(value):
    dump = getattr(value, "model_dump", None)
    if dump is None:
        return value
    data = dump(exclude_none=True, warnings=False)
    # Chunks of a stream where usage was requested carry an explicit
    # ``usage: null``; exclude_none makes them equal to chunks without it.
    return data
