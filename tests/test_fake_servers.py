"""Fidelity tests for the fake provider servers in ``tests/servers``.

The real OpenAI / Anthropic / google-genai SDKs are pointed at the local fakes
and must produce their typed objects (with the scripted usage) without warnings.
"""

from __future__ import annotations

import time
import warnings

import anthropic
import httpx2
import openai
import pydantic
import pytest
from google.genai import errors as genai_errors

from tests.servers import provider_fixtures
from tests.servers.anthropic_server import AnthropicFakeServer, AnthropicUsage
from tests.servers.base import ErrorStep
from tests.servers.gemini_server import GeminiFakeServer, GeminiUsage
from tests.servers.openai_server import OpenAIFakeServer, OpenAIUsage

# The lead's tests/conftest.py may also import these; binding them here keeps this
# file runnable on its own (same fixture functions either way).
openai_server_session = provider_fixtures.openai_server_session
openai_server = provider_fixtures.openai_server
anthropic_server_session = provider_fixtures.anthropic_server_session
anthropic_server = provider_fixtures.anthropic_server
gemini_server_session = provider_fixtures.gemini_server_session
gemini_server = provider_fixtures.gemini_server

MSGS = [{"role": "user", "content": "hi"}]
CLAUDE = "claude-haiku-4-5"  # not on the SDK's deprecated list (no DeprecationWarning)


class Answer(pydantic.BaseModel):
    city: str
    population: int


ANSWER_JSON = '{"city": "Paris", "population": 2100000}'


@pytest.fixture(autouse=True)
def _no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # ...but a socket left by an earlier test and finalised here is not this test's doing.
        warnings.simplefilter("ignore", ResourceWarning)
        yield


# =============================================================================
# OpenAI
# =============================================================================


def test_openai_chat_non_stream(openai_server: OpenAIFakeServer) -> None:
    usage = OpenAIUsage(
        prompt_tokens=101, completion_tokens=23, cached_tokens=40, reasoning_tokens=5
    )
    openai_server.next(usage=usage, response_id="chatcmpl-abc", content="Hello!")
    client = openai_server.client()
    r = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert isinstance(r, openai.types.chat.ChatCompletion)
    assert r.id == "chatcmpl-abc"
    assert r.model == "gpt-4o-mini-2024-07-18"
    assert r.choices[0].message.content == "Hello!"
    assert r.choices[0].finish_reason == "stop"
    assert r.system_fingerprint == "fp_fake00001"
    assert r.service_tier == "default"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (
        101,
        23,
        124,
    )
    assert r.usage.prompt_tokens_details.cached_tokens == 40
    assert r.usage.completion_tokens_details.reasoning_tokens == 5
    req = openai_server.last_request
    assert req.method == "POST" and req.path == "/v1/chat/completions"
    assert req.json["model"] == "gpt-4o-mini" and req.json["messages"] == MSGS
    assert req.headers["authorization"] == "Bearer sk-test"
    assert req.headers["AUTHORIZATION"] == req.headers["Authorization"]
    assert "baggage" not in req.headers
    assert req.usage is usage


def test_openai_chat_default_usage_and_ids(openai_server: OpenAIFakeServer) -> None:
    client = openai_server.client()
    r1 = client.chat.completions.create(model="unknown-model", messages=MSGS)
    r2 = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert r1.model == "unknown-model"
    assert r1.id == "chatcmpl-fake" + "1".zfill(24)
    assert r2.id == "chatcmpl-fake" + "2".zfill(24)
    assert r1.id.startswith("chatcmpl-") and r1.id != r2.id
    assert r1.choices[0].message.content == "t0 t1 t2 t3 t4 "
    u = openai_server.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (13, 7, 20)
    assert r2.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}) == {
        "prompt_tokens": 13,
        "completion_tokens": 7,
        "total_tokens": 20,
    }


def test_openai_chat_stream_without_include_usage(openai_server: OpenAIFakeServer) -> None:
    openai_server.next(chunks=50)
    client = openai_server.client()
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))
    assert len(chunks) == 1 + 50 + 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(
        f"t{i} " for i in range(50)
    )
    assert "stream_options" not in openai_server.last_request.json
    assert b'"usage"' not in openai_server.last_request.raw_body


def test_openai_chat_stream_include_usage(openai_server: OpenAIFakeServer) -> None:
    openai_server.next(chunks=7, usage=OpenAIUsage(prompt_tokens=9, completion_tokens=7))
    client = openai_server.client()
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=MSGS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len(chunks) == 1 + 7 + 1 + 1
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (
        9,
        7,
        16,
    )
    assert chunks[0].model == "gpt-4o-2024-08-06"
    assert openai_server.last_request.json["stream_options"] == {"include_usage": True}


def test_openai_chat_stream_forced_usage(openai_server: OpenAIFakeServer) -> None:
    openai_server.next(stream_usage=True)
    chunks = list(
        openai_server.client().chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, stream=True
        )
    )
    assert chunks[-1].usage.total_tokens == 20


async def test_openai_async_chat_stream_500_chunks(openai_server: OpenAIFakeServer) -> None:
    openai_server.next(chunks=500)
    client = openai_server.async_client()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert len(chunks) == 503
    assert chunks[-1].usage.completion_tokens == 7
    r = await client.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert r.usage.total_tokens == 20
    await client.close()


def test_openai_chat_parse(openai_server: OpenAIFakeServer) -> None:
    openai_server.next(content=ANSWER_JSON)
    r = openai_server.client().chat.completions.parse(
        model="gpt-4o-mini", messages=MSGS, response_format=Answer
    )
    assert r.choices[0].message.parsed == Answer(city="Paris", population=2100000)
    rf = openai_server.last_request.json["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "Answer"


def test_openai_chat_tool_calls(openai_server: OpenAIFakeServer) -> None:
    openai_server.next(tool_calls=[{"name": "get_weather", "arguments": '{"city": "Oslo"}'}])
    r = openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
    openai_server.next(tool_calls=[{"name": "get_weather", "arguments": '{"city": "Oslo"}'}])
    chunks = list(
        openai_server.client().chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, stream=True
        )
    )
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    args = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert args == '{"city": "Oslo"}'


def test_openai_responses_non_stream_and_parse(openai_server: OpenAIFakeServer) -> None:
    client = openai_server.client()
    openai_server.next(
        usage=OpenAIUsage(
            prompt_tokens=50, completion_tokens=10, cached_tokens=8, reasoning_tokens=3
        ),
        response_id="resp_123",
    )
    r = client.responses.create(model="gpt-4.1", input="hi")
    assert isinstance(r, openai.types.responses.Response)
    assert (r.id, r.object, r.status, r.model) == (
        "resp_123",
        "response",
        "completed",
        "gpt-4.1-2025-04-14",
    )
    assert r.output_text == "t0 t1 t2 t3 t4 "
    assert r.usage.input_tokens == 50 and r.usage.output_tokens == 10 and r.usage.total_tokens == 60
    assert r.usage.input_tokens_details.cached_tokens == 8
    assert r.usage.output_tokens_details.reasoning_tokens == 3
    assert openai_server.last_request.path == "/v1/responses"

    openai_server.next(content=ANSWER_JSON)
    p = client.responses.parse(model="gpt-4.1", input="hi", text_format=Answer)
    assert p.output_parsed == Answer(city="Paris", population=2100000)
    assert openai_server.last_request.json["text"]["format"]["type"] == "json_schema"


def test_openai_responses_stream_events(openai_server: OpenAIFakeServer) -> None:
    openai_server.next(chunks=4)
    events = list(openai_server.client().responses.create(model="gpt-4.1", input="hi", stream=True))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 4,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].response.usage is None
    assert events[-1].response.usage.total_tokens == 20


def test_openai_responses_stream_helper(openai_server: OpenAIFakeServer) -> None:
    openai_server.next(chunks=30, usage=OpenAIUsage(prompt_tokens=40, completion_tokens=30))
    with openai_server.client().responses.stream(model="gpt-4.1", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) == 30
    assert final.output_text == "".join(deltas)
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (
        40,
        30,
        70,
    )

    openai_server.next(content=ANSWER_JSON, chunks=6)
    with openai_server.client().responses.stream(
        model="gpt-4.1", input="hi", text_format=Answer
    ) as stream:
        final = stream.get_final_response()
    assert final.output_parsed == Answer(city="Paris", population=2100000)


async def test_openai_async_responses_stream(openai_server: OpenAIFakeServer) -> None:
    client = openai_server.async_client()
    async with client.responses.stream(model="gpt-4.1-mini", input="hi") as stream:
        final = await stream.get_final_response()
    assert final.usage.total_tokens == 20
    assert final.model == "gpt-4.1-mini-2025-04-14"
    await client.close()


def test_openai_legacy_completions(openai_server: OpenAIFakeServer) -> None:
    client = openai_server.client()
    r = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    assert r.choices[0].text == "t0 t1 t2 t3 t4 "
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (13, 7, 20)

    chunks = list(
        client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", stream=True)
    )
    assert len(chunks) == 5 + 1
    assert all(c.usage is None for c in chunks)

    openai_server.next(chunks=3)
    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="x",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len(chunks) == 3 + 1 + 1
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 20
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_embeddings(openai_server: OpenAIFakeServer) -> None:
    client = openai_server.client()
    openai_server.next(usage=OpenAIUsage(prompt_tokens=4))
    r = client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
    # the SDK asks for base64 by default and decodes it back into floats
    assert openai_server.last_request.json["encoding_format"] == "base64"
    assert len(r.data) == 3 and [d.index for d in r.data] == [0, 1, 2]
    assert r.data[0].embedding == [((j % 64) / 64) - 0.5 for j in range(8)]
    assert (r.usage.prompt_tokens, r.usage.total_tokens) == (4, 4)
    r = client.embeddings.create(
        model="text-embedding-3-small", input="a", encoding_format="float", dimensions=4
    )
    assert len(r.data) == 1 and len(r.data[0].embedding) == 4
    assert isinstance(r.data[0].embedding[0], float)


async def test_openai_async_embeddings(openai_server: OpenAIFakeServer) -> None:
    client = openai_server.async_client()
    r = await client.embeddings.create(model="text-embedding-3-small", input="a")
    assert r.usage.prompt_tokens == 13 and len(r.data[0].embedding) == 8
    await client.close()


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (429, openai.RateLimitError),
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (500, openai.InternalServerError),
    ],
)
def test_openai_errors(openai_server: OpenAIFakeServer, status: int, exc: type) -> None:
    openai_server.next_error(status, message="nope")
    with pytest.raises(exc) as info:
        openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert info.value.status_code == status
    assert info.value.body["message"] == "nope"
    assert set(info.value.body) == {"message", "type", "param", "code"}


def test_openai_rate_limit_body_and_retry(openai_server: OpenAIFakeServer) -> None:
    openai_server.next_error(429)
    with pytest.raises(openai.RateLimitError) as info:
        openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.type == "requests"
    # fail once, then succeed (SDK retry after retry-after-ms: 1)
    openai_server.next_error(429)
    r = openai_server.client(max_retries=1).chat.completions.create(
        model="gpt-4o-mini", messages=MSGS
    )
    assert r.usage.total_tokens == 20
    assert [
        req.step.status if isinstance(req.step, ErrorStep) else 200
        for req in openai_server.requests
    ] == [
        429,
        429,
        200,
    ]
    assert openai_server.requests[-1].headers["x-stainless-retry-count"] == "1"


def test_openai_stream_faults(openai_server: OpenAIFakeServer) -> None:
    client = openai_server.client()
    openai_server.next(drop_after=3)
    got = []
    with pytest.raises(openai.APIConnectionError):
        for c in client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True):
            got.append(c)
    assert len(got) == 3

    openai_server.next(truncate_after=4)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))
    assert len(chunks) == 4 and all(c.choices[0].finish_reason is None for c in chunks)

    openai_server.next(error_after=2)
    with pytest.raises(openai.APIError, match="The server had an error"):
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True))

    openai_server.next(chunk_delay=0.02, chunks=5)
    t0 = time.monotonic()
    assert (
        len(list(client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, stream=True)))
        == 7
    )
    assert time.monotonic() - t0 >= 0.1

    # the server still works on a fresh connection after the faults
    assert (
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS).usage.total_tokens == 20
    )


def test_openai_close_delimited_sse(openai_server: OpenAIFakeServer) -> None:
    openai_server.sse_framing = "close"
    chunks = list(
        openai_server.client().chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, stream=True, stream_options={"include_usage": True}
        )
    )
    assert len(chunks) == 8 and chunks[-1].usage.total_tokens == 20


def test_openai_unknown_path_404(openai_server: OpenAIFakeServer) -> None:
    with pytest.raises(openai.NotFoundError):
        openai_server.client().models.retrieve("gpt-4o")


def test_reset_does_not_leak(openai_server: OpenAIFakeServer) -> None:
    openai_server.configure(usage=OpenAIUsage(prompt_tokens=1, completion_tokens=1))
    openai_server.next_error(500)
    openai_server.client().chat.completions.create  # noqa: B018
    openai_server.reset()
    assert openai_server.pending == 0 and openai_server.requests == []
    assert openai_server.usage == OpenAIUsage()
    r = openai_server.client().chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert r.usage.total_tokens == 20


def test_standalone_context_manager() -> None:
    with OpenAIFakeServer() as srv:
        url = srv.url
        assert srv.client().embeddings.create(model="m", input="x").usage.prompt_tokens == 13
    assert url.startswith("http://127.0.0.1:")


# =============================================================================
# Anthropic
# =============================================================================


def test_anthropic_create_non_stream(anthropic_server: AnthropicFakeServer) -> None:
    usage = AnthropicUsage(
        input_tokens=120,
        output_tokens=33,
        cache_creation_input_tokens=10,
        cache_read_input_tokens=70,
        ephemeral_5m_input_tokens=10,
    )
    anthropic_server.next(usage=usage, response_id="msg_01abc", content="Hello!")
    m = anthropic_server.client().messages.create(model=CLAUDE, max_tokens=64, messages=MSGS)
    assert isinstance(m, anthropic.types.Message)
    assert (m.id, m.model, m.role, m.stop_reason) == (
        "msg_01abc",
        "claude-haiku-4-5-20251001",
        "assistant",
        "end_turn",
    )
    assert m.content[0].type == "text" and m.content[0].text == "Hello!"
    u = m.usage
    assert (u.input_tokens, u.output_tokens) == (120, 33)
    assert (u.cache_creation_input_tokens, u.cache_read_input_tokens) == (10, 70)
    assert u.cache_creation.ephemeral_5m_input_tokens == 10
    assert u.cache_creation.ephemeral_1h_input_tokens == 0
    assert u.service_tier == "standard"
    req = anthropic_server.last_request
    assert req.path == "/v1/messages" and req.json["max_tokens"] == 64
    assert "anthropic-version" in req.headers


def test_anthropic_raw_stream_event_sequence(anthropic_server: AnthropicFakeServer) -> None:
    anthropic_server.next(chunks=3, usage=AnthropicUsage(input_tokens=20, output_tokens=12))
    events = list(
        anthropic_server.client().messages.create(
            model=CLAUDE, max_tokens=64, messages=MSGS, stream=True
        )
    )
    # the SDK drops ``ping``
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0]
    assert start.message.usage.input_tokens == 20 and start.message.usage.output_tokens == 1
    delta = events[-2]
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 12 and delta.usage.input_tokens == 20
    assert anthropic_server.last_request.json["stream"] is True


def test_anthropic_stream_helpers(anthropic_server: AnthropicFakeServer) -> None:
    client = anthropic_server.client()
    anthropic_server.next(chunks=50)
    with client.messages.stream(model=CLAUDE, max_tokens=64, messages=MSGS) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(texts) == 50
    assert final.usage.output_tokens == 9 and final.usage.input_tokens == 17
    assert final.content[0].text == "".join(texts)

    with client.messages.stream(model=CLAUDE, max_tokens=64, messages=MSGS) as stream:
        assert stream.get_final_text() == "t0 t1 t2 t3 t4 "

    anthropic_server.next(delta_usage_input_fields=False)
    with client.messages.stream(model=CLAUDE, max_tokens=64, messages=MSGS) as stream:
        stream.until_done()
        assert stream.get_final_message().usage.input_tokens == 17


async def test_anthropic_async(anthropic_server: AnthropicFakeServer) -> None:
    client = anthropic_server.async_client()
    m = await client.messages.create(model=CLAUDE, max_tokens=64, messages=MSGS)
    assert m.usage.output_tokens == 9
    anthropic_server.next(chunks=500)
    async with client.messages.stream(model=CLAUDE, max_tokens=64, messages=MSGS) as stream:
        texts = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert len(texts) == 500 and final.usage.output_tokens == 9
    await client.close()


def test_anthropic_parse_structured_output(anthropic_server: AnthropicFakeServer) -> None:
    anthropic_server.next(content=ANSWER_JSON)
    m = anthropic_server.client().messages.parse(
        model=CLAUDE, max_tokens=64, messages=MSGS, output_format=Answer
    )
    assert m.parsed_output == Answer(city="Paris", population=2100000)
    assert anthropic_server.last_request.json["output_config"]["format"]["type"] == "json_schema"


def test_anthropic_beta_messages(anthropic_server: AnthropicFakeServer) -> None:
    client = anthropic_server.client()
    m = client.beta.messages.create(
        model=CLAUDE, max_tokens=64, messages=MSGS, betas=["context-management-2025-06-27"]
    )
    assert m.usage.input_tokens == 17
    req = anthropic_server.last_request
    assert req.path == "/v1/messages"
    assert req.headers["anthropic-beta"] == "context-management-2025-06-27"
    with client.beta.messages.stream(model=CLAUDE, max_tokens=64, messages=MSGS) as stream:
        assert stream.get_final_message().usage.output_tokens == 9


def test_anthropic_thinking(anthropic_server: AnthropicFakeServer) -> None:
    anthropic_server.next(thinking="Let me think about it.", chunks=4)
    with anthropic_server.client().messages.stream(
        model=CLAUDE,
        max_tokens=2048,
        messages=MSGS,
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert kinds.count("thinking") == 4 and kinds.count("signature") == 1
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think about it."


@pytest.mark.parametrize(
    ("status", "exc", "etype"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
    ],
)
def test_anthropic_errors(
    anthropic_server: AnthropicFakeServer, status: int, exc: type, etype: str
) -> None:
    anthropic_server.next_error(status)
    with pytest.raises(exc) as info:
        anthropic_server.client().messages.create(model=CLAUDE, max_tokens=64, messages=MSGS)
    assert info.value.status_code == status
    assert info.value.body["type"] == "error"
    assert info.value.body["error"]["type"] == etype


def test_anthropic_stream_faults(anthropic_server: AnthropicFakeServer) -> None:
    client = anthropic_server.client()
    anthropic_server.next(error_after=3)
    with pytest.raises(anthropic.APIStatusError) as info:
        list(client.messages.create(model=CLAUDE, max_tokens=64, messages=MSGS, stream=True))
    assert info.value.body["error"]["type"] == "overloaded_error"

    anthropic_server.next(drop_after=4)
    # anthropic 2.14 lets the transport error escape from stream iteration unwrapped
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
        list(client.messages.create(model=CLAUDE, max_tokens=64, messages=MSGS, stream=True))

    anthropic_server.next(truncate_after=5)
    events = list(client.messages.create(model=CLAUDE, max_tokens=64, messages=MSGS, stream=True))
    assert "message_stop" not in [e.type for e in events]

    anthropic_server.next_error(529)
    m = anthropic_server.client(max_retries=1).messages.create(
        model=CLAUDE, max_tokens=64, messages=MSGS
    )
    assert m.usage.output_tokens == 9


# =============================================================================
# Gemini
# =============================================================================


def test_gemini_generate_content(gemini_server: GeminiFakeServer) -> None:
    usage = GeminiUsage(
        prompt_token_count=100,
        candidates_token_count=40,
        cached_content_token_count=60,
        thoughts_token_count=8,
    )
    gemini_server.next(usage=usage, response_id="resp-xyz", content="Hello!")
    client = gemini_server.client()
    r = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert r.text == "Hello!"
    assert r.response_id == "resp-xyz" and r.model_version == "gemini-2.5-flash"
    assert r.candidates[0].finish_reason.value == "STOP"
    u = r.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count, u.total_token_count) == (100, 40, 148)
    assert (u.cached_content_token_count, u.thoughts_token_count) == (60, 8)
    req = gemini_server.last_request
    assert req.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert req.headers["x-goog-api-key"] == "test-key"
    assert req.json["contents"][0]["parts"][0]["text"] == "hi"


def test_gemini_defaults_omit_absent_counts(gemini_server: GeminiFakeServer) -> None:
    client = gemini_server.client()
    r = client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    u = r.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count, u.total_token_count) == (19, 11, 30)
    assert u.cached_content_token_count is None and u.thoughts_token_count is None


def test_gemini_stream(gemini_server: GeminiFakeServer) -> None:
    gemini_server.next(
        chunks=50, usage=GeminiUsage(prompt_token_count=7, candidates_token_count=100)
    )
    client = gemini_server.client()
    chunks = list(client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"))
    assert len(chunks) == 50
    counts = [c.usage_metadata.candidates_token_count for c in chunks]
    assert counts == sorted(counts) and counts[-1] == 100
    assert all(c.usage_metadata.prompt_token_count == 7 for c in chunks)
    assert chunks[-1].usage_metadata.total_token_count == 107
    assert [c.candidates[0].finish_reason for c in chunks[:-1]] == [None] * 49
    assert chunks[-1].candidates[0].finish_reason.value == "STOP"
    req = gemini_server.last_request
    assert req.path.endswith(":streamGenerateContent") and req.query == {"alt": "sse"}


async def test_gemini_async(gemini_server: GeminiFakeServer) -> None:
    client = gemini_server.client()
    r = await client.aio.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert r.usage_metadata.total_token_count == 30
    stream = await client.aio.models.generate_content_stream(
        model="gemini-2.0-flash", contents="hi"
    )
    chunks = [c async for c in stream]
    assert len(chunks) == 5 and chunks[-1].usage_metadata.candidates_token_count == 11
    e = await client.aio.models.embed_content(model="gemini-embedding-001", contents="a")
    assert len(e.embeddings) == 1


def test_gemini_embed(gemini_server: GeminiFakeServer) -> None:
    client = gemini_server.client()
    e = client.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0].values) == 8
    assert e.usage_metadata.prompt_token_count == 19
    assert gemini_server.last_request.path.endswith(
        "/models/gemini-embedding-001:batchEmbedContents"
    )


@pytest.mark.parametrize(
    ("status", "exc", "state"),
    [
        (429, genai_errors.ClientError, "RESOURCE_EXHAUSTED"),
        (400, genai_errors.ClientError, "INVALID_ARGUMENT"),
        (503, genai_errors.ServerError, "UNAVAILABLE"),
    ],
)
def test_gemini_errors(gemini_server: GeminiFakeServer, status: int, exc: type, state: str) -> None:
    gemini_server.next_error(status)
    client = gemini_server.client()
    with pytest.raises(exc) as info:
        client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert info.value.code == status and info.value.status == state


def test_gemini_stream_faults(gemini_server: GeminiFakeServer) -> None:
    client = gemini_server.client()
    gemini_server.next(error_after=2)
    got = []
    with pytest.raises(genai_errors.ServerError):
        for c in client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"):
            got.append(c)
    assert len(got) == 2
    gemini_server.next(truncate_after=3)
    chunks = list(client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"))
    assert len(chunks) == 3 and chunks[-1].candidates[0].finish_reason is None
    gemini_server.next(drop_after=2)
    with pytest.raises(httpx2.RemoteProtocolError):  # google-genai does not wrap it
        list(client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"))


def test_gemini_vertex_mode(gemini_server: GeminiFakeServer) -> None:
    client = gemini_server.vertex_client()
    r = client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert r.usage_metadata.total_token_count == 30
    req = gemini_server.last_request
    assert req.path == (
        "/v1beta1/projects/fake-project/locations/us-central1/publishers/google/models/"
        "gemini-2.0-flash:generateContent"
    )
    assert req.headers["authorization"] == "Bearer fake-token"
    chunks = list(client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"))
    assert len(chunks) == 5 and chunks[-1].usage_metadata.candidates_token_count == 11
    e = client.models.embed_content(model="gemini-embedding-001", contents="a")
    assert gemini_server.last_request.path.endswith(":embedContent")
    assert e.embeddings[0].statistics.token_count == 19
    e = client.models.embed_content(model="text-embedding-005", contents=["a", "b"])
    assert gemini_server.last_request.path.endswith(":predict") and len(e.embeddings) == 2

    express = gemini_server.vertex_client(express=True)
    r = express.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert r.text == "t0 t1 t2 t3 t4 "
    assert (
        gemini_server.last_request.path
        == "/v1beta1/publishers/google/models/gemini-2.0-flash:generateContent"
    )
