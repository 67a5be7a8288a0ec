"""Fidelity of the fake Mistral server against the real ``mistralai`` client."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from mistralai.client import errors
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.servers import provider_fixtures
from tests.servers.mistral_server import MistralFakeServer, MistralUsage

mistral_server_session = provider_fixtures.mistral_server_session
mistral_server = provider_fixtures.mistral_server

MSGS = [{"role": "user", "content": "hi"}]
USAGE = MistralUsage(prompt_tokens=101, completion_tokens=23)


class City(pydantic.BaseModel):
    city: str
    population: int


def _last(events: list[Any]) -> Any:
    return events[-1].data


def test_chat_complete(mistral_server: MistralFakeServer) -> None:
    mistral_server.next(usage=USAGE, content="Bonjour", response_id="cmpl-1")
    r = mistral_server.client().chat.complete(model="mistral-small-latest", messages=MSGS)
    assert (r.id, r.model, r.choices[0].message.content) == (
        "cmpl-1",
        "mistral-small-latest",
        "Bonjour",
    )
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (
        101,
        23,
        124,
    )
    req = mistral_server.last_request
    assert (req.path, req.json["stream"]) == ("/v1/chat/completions", False)
    assert req.headers["Authorization"] == "Bearer test-key"
    assert req.headers["user-agent"].startswith("mistral-client-python/")
    assert "traceparent" not in req.headers and "baggage" not in req.headers


def test_chat_stream_usage_in_last_chunk(mistral_server: MistralFakeServer) -> None:
    mistral_server.next(usage=USAGE, chunks=3)
    events = list(mistral_server.client().chat.stream(model="mistral-large-latest", messages=MSGS))
    assert len(events) == 5  # role chunk, 3 content chunks, finish+usage chunk ([DONE] eaten)
    assert "".join(e.data.choices[0].delta.content for e in events) == "t0 t1 t2 "
    assert all(e.data.usage is None for e in events[:-1])
    last = _last(events)
    assert last.choices[0].finish_reason == "stop"
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (101, 23)
    assert mistral_server.last_request.json["stream"] is True


def test_chat_parse(mistral_server: MistralFakeServer) -> None:
    mistral_server.next(content='{"city": "Paris", "population": 2100000}')
    r = mistral_server.client().chat.parse(response_format=City, model="m", messages=MSGS)
    assert r.choices[0].message.parsed == City(city="Paris", population=2100000)
    assert r.usage.total_tokens == 23
    assert mistral_server.last_request.json["response_format"]["type"] == "json_schema"


def test_fim_complete_and_stream(mistral_server: MistralFakeServer) -> None:
    client = mistral_server.client()
    mistral_server.next(usage=USAGE)
    r = client.fim.complete(model="codestral-latest", prompt="def f(", suffix="return 1")
    assert r.usage.prompt_tokens == 101
    assert mistral_server.last_request.path == "/v1/fim/completions"
    assert mistral_server.last_request.json["suffix"] == "return 1"
    events = list(client.fim.stream(model="codestral-latest", prompt="def f("))
    assert _last(events).usage.completion_tokens == 8
    assert mistral_server.last_request.json["stream"] is True


def test_embeddings(mistral_server: MistralFakeServer) -> None:
    mistral_server.next(usage=MistralUsage(prompt_tokens=6))
    r = mistral_server.client().embeddings.create(model="mistral-embed", inputs=["a", "b"])
    assert [d.index for d in r.data] == [0, 1]
    assert len(r.data[0].embedding) == 8
    assert (r.usage.prompt_tokens, r.usage.total_tokens) == (6, 6)
    assert mistral_server.last_request.json == {"model": "mistral-embed", "input": ["a", "b"]}


async def test_every_async_method(mistral_server: MistralFakeServer) -> None:
    mistral_server.configure(usage=USAGE, chunks=2)
    client = mistral_server.async_client()
    r = await client.chat.complete_async(model="m", messages=MSGS)
    assert r.usage.total_tokens == 124
    stream = await client.chat.stream_async(model="m", messages=MSGS)
    assert _last([e async for e in stream]).usage.prompt_tokens == 101
    mistral_server.next(content='{"city": "Oslo", "population": 1}')
    parsed = await client.chat.parse_async(response_format=City, model="m", messages=MSGS)
    assert parsed.choices[0].message.parsed.city == "Oslo"
    r = await client.fim.complete_async(model="codestral-latest", prompt="x")
    assert r.usage.completion_tokens == 23
    stream = await client.fim.stream_async(model="codestral-latest", prompt="x")
    assert _last([e async for e in stream]).usage.completion_tokens == 23
    r = await client.embeddings.create_async(model="mistral-embed", inputs="a")
    assert r.usage.prompt_tokens == 101
    assert [(q.path, q.json.get("stream")) for q in mistral_server.requests] == [
        ("/v1/chat/completions", False),
        ("/v1/chat/completions", True),
        ("/v1/chat/completions", False),
        ("/v1/fim/completions", False),
        ("/v1/fim/completions", True),
        ("/v1/embeddings", None),
    ]


@pytest.mark.parametrize("status", [400, 401, 429, 500])
def test_errors_are_sdk_errors_with_the_body(
    mistral_server: MistralFakeServer, status: int
) -> None:
    mistral_server.next_error(status, message="nope")
    with pytest.raises(errors.SDKError) as info:
        mistral_server.client().chat.complete(model="m", messages=MSGS)
    assert info.value.status_code == status
    assert '"message":"nope"' in info.value.body
    assert isinstance(info.value, errors.MistralError)


def test_422_is_http_validation_error(mistral_server: MistralFakeServer) -> None:
    mistral_server.next_error(422)
    with pytest.raises(errors.HTTPValidationError) as info:
        mistral_server.client().embeddings.create(model="mistral-embed", inputs="a")
    assert info.value.data.detail[0].loc == ["body", "model"]


async def test_stream_errors_and_cuts(mistral_server: MistralFakeServer) -> None:
    client = mistral_server.client()
    mistral_server.next_error(429)
    with pytest.raises(errors.SDKError):
        client.chat.stream(model="m", messages=MSGS)
    mistral_server.next(truncate_after=3)
    events = list(client.chat.stream(model="m", messages=MSGS))
    assert len(events) == 3 and all(e.data.usage is None for e in events)
    mistral_server.next(drop_after=3)
    stream = await client.chat.stream_async(model="m", messages=MSGS)
    with pytest.raises(Exception):  # noqa: B017 - httpx2's RemoteProtocolError
        async for _ in stream:
            pass


def test_sdk_tracing_hook_sends_traceparent_and_baggage_when_enabled(
    mistral_server: MistralFakeServer,
) -> None:
    """mistralai's own TracingHook is off unless telemetry is asked for; then it makes a span
    per call and injects it with the global propagator: ``traceparent`` *and* ``baggage``."""
    from mistralai.extra.observability.telemetry import configure_telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = mistral_server.client()
    assert configure_telemetry(client, provider=provider, redaction=False)
    token = context.attach(baggage.set_baggage("cmdrdata.customer_id", "cust-1"))
    try:
        client.chat.complete(model="m", messages=MSGS)
    finally:
        context.detach(token)
    headers = mistral_server.last_request.headers
    assert headers["traceparent"].startswith("00-")
    assert headers["baggage"] == "cmdrdata.customer_id=cust-1"
    [span] = exporter.get_finished_spans()
    # A GenAI span of its own, with usage: the instrumentation must not bill it twice.
    assert span.name == "chat m"  # "{operation} {model}"
    assert span.instrumentation_scope.name == "mistralai_sdk_tracer"
    assert span.attributes["gen_ai.provider.name"] == "mistral_ai"
    assert span.attributes["gen_ai.usage.input_tokens"] == 15
    assert span.attributes["gen_ai.usage.output_tokens"] == 8
    assert "gen_ai.input.messages" in span.attributes  # prompts too, unredacted in this mode


def test_mistral_binding_facts(mistral_server: MistralFakeServer, monkeypatch) -> None:
    """Sub-SDKs are made lazily by ``Mistral.__getattr__`` and cached on the instance, their
    methods live on the classes (so a class patch reaches clients made before it), and
    ``chat.parse`` goes through ``chat.complete``: wrapping both would count one call twice."""
    from mistralai.client.chat import Chat

    client = mistral_server.client()
    assert "chat" not in vars(client)
    chat = client.chat
    assert vars(client)["chat"] is chat and type(chat) is Chat
    assert "complete" not in vars(chat)

    calls: list[str] = []
    original = Chat.complete

    def counting(self: Chat, **kwargs: Any) -> Any:
        calls.append(kwargs["model"])
        return original(self, **kwargs)

    monkeypatch.setattr(Chat, "complete", counting)
    mistral_server.next(content='{"city": "Rome", "population": 3}')
    client.chat.parse(response_format=City, model="m", messages=MSGS)
    assert calls == ["m"]
