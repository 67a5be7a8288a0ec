"""Google Gen AI (Gemini) streams: cumulative usage read as last-value-wins, the caller's
chunks untouched, and the span ending exactly once however the stream ends."""

import asyncio
import gc
import json

import pytest
from google.genai import errors
from opentelemetry.trace import StatusCode

from opentelemetry_instrumentation_cmdrdata import customer_context
from tests.loop_runner import LoopRunner
from tests.servers.gemini_server import GeminiUsage

MODEL = "gemini-2.5-flash"
USAGE = GeminiUsage(
    prompt_token_count=100,
    candidates_token_count=40,
    thoughts_token_count=25,
    cached_content_token_count=60,
)


_runner = LoopRunner()
run = _runner.run


@pytest.fixture(scope="module", autouse=True)
def _close_loop():
    yield
    _runner.close()


@pytest.fixture(scope="module")
def client(gemini_server_session):
    return gemini_server_session.client()


def stream(client, **kwargs):
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("contents", "Say hi")
    return client.models.generate_content_stream(**kwargs)


async def astream(client, **kwargs):
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("contents", "Say hi")
    return await client.aio.models.generate_content_stream(**kwargs)


async def acollect(client, **kwargs):
    return [chunk async for chunk in await astream(client, **kwargs)]


def collect(client, mode, **kwargs):
    if mode == "async":
        return run(acollect(client, **kwargs))
    return list(stream(client, **kwargs))


def assert_stream_span(span, input_tokens, output_tokens, cache_read=None, reasoning=None):
    attributes = span.attributes
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.usage.input_tokens"] == input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == output_tokens
    assert attributes.get("gen_ai.usage.cache_read.input_tokens") == cache_read
    assert attributes.get("gen_ai.usage.reasoning.output_tokens") == reasoning


# -- usage -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_cumulative_usage_last_value_wins(gemini_server, instrument, spans, client, mode):
    gemini_server.next(usage=USAGE, chunks=3, response_id="stream-1", model="gemini-2.5-flash-001")
    chunks = collect(client, mode)

    # Every chunk carries the running total: summing them would bill 300 input tokens.
    assert [c.usage_metadata.prompt_token_count for c in chunks] == [100, 100, 100]
    assert [c.usage_metadata.candidates_token_count for c in chunks] == [13, 26, 40]
    assert "".join(c.text for c in chunks) == "t0 t1 t2 "
    [span] = spans()
    assert span.name == "generate_content gemini-2.5-flash"
    assert span.attributes["gen_ai.operation.name"] == "generate_content"
    assert span.attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert span.attributes["gen_ai.response.id"] == "stream-1"
    assert span.attributes["gen_ai.response.model"] == "gemini-2.5-flash-001"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("STOP",)
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert_stream_span(span, 100, 65, cache_read=60, reasoning=25)
    assert span.status.status_code is StatusCode.UNSET
    assert gemini_server.requests[-1].query.get("alt") == "sse"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_long_stream_counts_once(gemini_server, instrument, spans, client, mode):
    gemini_server.next(
        usage=GeminiUsage(prompt_token_count=9, candidates_token_count=50), chunks=50
    )
    chunks = collect(client, mode)

    assert len(chunks) == 50
    [span] = spans()
    assert_stream_span(span, 9, 50)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_stream_per_call_keywords(gemini_server, instrument, spans, client, mode):
    collect(client, mode, customer_id="cust-s", cmdrdata_metadata={"plan": "team"})
    collect(client, mode, track_usage=False)

    [span] = spans()
    assert span.attributes["cmdrdata.customer_id"] == "cust-s"
    assert span.attributes["cmdrdata.metadata.plan"] == "team"
    assert len(gemini_server.requests) == 2


def test_stream_request_parameters(gemini_server, instrument, spans, client):
    collect(client, "sync", config={"temperature": 0.3, "max_output_tokens": 99})

    attributes = spans()[0].attributes
    assert attributes["gen_ai.request.temperature"] == 0.3
    assert attributes["gen_ai.request.max_tokens"] == 99


def test_vertex_ai_stream(gemini_server, instrument, spans, gemini_server_session):
    gemini_server.next(usage=USAGE, chunks=3)
    vertex = gemini_server_session.vertex_client()  # a stream does not keep its client open
    chunks = list(stream(vertex))

    assert len(chunks) == 3
    [span] = spans()
    assert span.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert_stream_span(span, 100, 65, cache_read=60, reasoning=25)


# -- the span ends exactly once, however the stream ends -----------------------------------


def test_break_ends_the_span_and_dropping_adds_nothing(gemini_server, instrument, spans, client):
    gemini_server.next(usage=USAGE, chunks=5)
    response = stream(client)
    for _chunk in response:
        break
    assert len(spans()) == 1  # ended when the loop was left
    del response
    gc.collect()

    [span] = spans()
    assert span.attributes["gen_ai.request.stream"] is True
    # The first chunk's running total is what was known when the caller left.
    assert span.attributes["gen_ai.usage.input_tokens"] == 100
    assert span.attributes["gen_ai.usage.output_tokens"] == 40 // 5 + 25


def test_close_ends_the_span_once(gemini_server, instrument, spans, client):
    response = stream(client)
    next(response)
    response.close()
    response.close()
    assert len(spans()) == 1
    with pytest.raises(StopIteration):
        next(response)
    del response
    gc.collect()
    assert len(spans()) == 1


def test_abandoned_stream_is_ended_by_garbage_collection(gemini_server, instrument, spans, client):
    def leave_it():
        response = stream(client)
        next(response)

    leave_it()
    gc.collect()
    [span] = spans()
    assert span.end_time is not None


def test_never_iterated_stream_sends_nothing_and_bills_nothing(
    gemini_server, instrument, spans, client
):
    # The SDK sends the request when iteration starts; the span is the request's.
    response = stream(client)
    del response
    gc.collect()
    assert gemini_server.requests == []
    assert spans() == []


def test_exhausted_stream_ends_once(gemini_server, instrument, spans, client):
    response = stream(client)
    assert len(list(response)) == 5
    assert list(response) == []
    response.close()
    assert len(spans()) == 1


def test_async_break_and_aclose(gemini_server, instrument, spans, client):
    gemini_server.next(usage=USAGE, chunks=4)

    async def main():
        response = await astream(client)
        async for _chunk in response:
            break
        assert len(spans()) == 1  # ended when the loop was left
        await response.aclose()
        await response.aclose()

    run(main())
    [span] = spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 100


def test_async_abandoned_stream_ends(gemini_server, instrument, spans, client):
    async def main():
        response = await astream(client)
        await response.__anext__()

    run(main())
    gc.collect()
    # An abandoned async generator is closed by its event loop, as the loop goes on.
    for _ in range(5):
        run(asyncio.sleep(0))
    assert len(spans()) == 1


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_http_error_on_stream(gemini_server, instrument, spans, client, mode):
    gemini_server.next_error(429, times=5)
    with pytest.raises(errors.ClientError) as caught:
        collect(client, mode)

    assert caught.value.code == 429
    [span] = spans()
    assert span.attributes["error.type"] == "ClientError"
    assert span.status.status_code is StatusCode.ERROR


def _sdk_raises_error_chunks() -> bool:
    import inspect

    from google.genai import _api_client

    return '{"error":' in inspect.getsource(_api_client.BaseApiClient.request_streamed)


@pytest.mark.skipif(
    not _sdk_raises_error_chunks(), reason="this google-genai ignores error chunks in a stream"
)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_error_mid_stream(gemini_server, instrument, spans, client, mode):
    gemini_server.next(usage=USAGE, chunks=5, error_after=2)
    received = []

    async def consume_async():
        async for chunk in await astream(client):
            received.append(chunk)

    with pytest.raises(errors.ServerError) as caught:
        if mode == "async":
            run(consume_async())
        else:
            for chunk in stream(client):
                received.append(chunk)

    assert caught.value.code == 500
    assert len(received) == 2
    [span] = spans()
    assert span.attributes["error.type"] == "ServerError"
    assert span.status.status_code is StatusCode.ERROR
    # Usage as far as the stream got: the second chunk's running total.
    assert span.attributes["gen_ai.usage.input_tokens"] == 100
    assert span.attributes["gen_ai.usage.output_tokens"] == (40 * 2) // 5 + 25


def test_connection_dropped_mid_stream(gemini_server, instrument, spans, client):
    gemini_server.next(chunks=5, drop_after=2)
    received = []
    with pytest.raises(Exception) as caught:  # the HTTP library's own error
        for chunk in stream(client):
            received.append(chunk)

    assert len(received) == 2
    [span] = spans()
    assert span.attributes["error.type"] == type(caught.value).__qualname__
    assert span.status.status_code is StatusCode.ERROR


# -- requests made while the caller iterates ----------------------------------------------


def get_weather(city: str) -> str:
    """Returns the weather in a city."""
    return f"sunny in {city}"


FUNCTION_CALL_CHUNK = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 5, "totalTokenCount": 35},
    "modelVersion": MODEL,
    "responseId": "call-1",
}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_stream_automatic_function_calling_bills_every_request(
    gemini_server, instrument, spans, client, mode
):
    from google.genai import types

    gemini_server.next_raw(
        body="data: " + json.dumps(FUNCTION_CALL_CHUNK) + "\r\n\r\n",
        headers={"Content-Type": "text/event-stream"},
    )
    gemini_server.next(usage=GeminiUsage(prompt_token_count=45, candidates_token_count=9), chunks=3)
    chunks = collect(
        client,
        mode,
        config=types.GenerateContentConfig(tools=[get_weather]),
        customer_id="cust-afc",
    )

    assert len(chunks) in (3, 4)  # the function call chunk is passed on by newer SDKs
    assert len(gemini_server.requests) == 2
    first, second = spans()
    assert_stream_span(first, 30, 5)
    assert_stream_span(second, 45, 9)
    assert {
        first.attributes["cmdrdata.customer_id"],
        second.attributes["cmdrdata.customer_id"],
    } == {"cust-afc"}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_stream_request_nests_under_the_span_without_customer_baggage(
    gemini_server,
    gemini_server_session,
    instrument,
    spans,
    tracer_provider,
    span_exporter,
    monkeypatch,
    mode,
):
    httpx_instrumentation = pytest.importorskip("opentelemetry.instrumentation.httpx")
    # The httpx backend, so that the HTTP client instrumentation sees the requests.
    monkeypatch.setenv("GOOGLE_GENAI_HTTP_CLIENT", "httpx")
    client = gemini_server_session.client()
    instrumentor = httpx_instrumentation.HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        with customer_context("cust-secret"):
            collect(client, mode)
    finally:
        instrumentor.uninstrument()

    assert "cust-secret" not in gemini_server.requests[-1].headers.get("baggage", "")
    assert "traceparent" in gemini_server.requests[-1].headers
    [ours] = spans()
    [http_span] = [
        s for s in span_exporter.get_finished_spans() if s is not ours and s.name == "POST"
    ]
    assert http_span.parent is not None and http_span.parent.span_id == ours.context.span_id


# -- chats -----------------------------------------------------------------------------


def test_chat_send_message_stream(gemini_server, instrument, spans, client):
    gemini_server.next(usage=USAGE, chunks=3)
    chat = client.chats.create(model=MODEL)
    with customer_context("cust-chat"):
        chunks = list(chat.send_message_stream("hi"))

    assert len(chunks) == 3
    [span] = spans()
    assert span.attributes["cmdrdata.customer_id"] == "cust-chat"
    assert_stream_span(span, 100, 65, cache_read=60, reasoning=25)
    assert chat.get_history()[0].parts[0].text == "hi"  # the chat recorded its turn


def test_async_chat_send_message_stream(gemini_server, instrument, spans, client):
    gemini_server.next(usage=USAGE, chunks=3)

    async def main():
        chat = client.aio.chats.create(model=MODEL)
        return [chunk async for chunk in await chat.send_message_stream("hi")]

    assert len(run(main())) == 3
    [span] = spans()
    assert_stream_span(span, 100, 65, cache_read=60, reasoning=25)
