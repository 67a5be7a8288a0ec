"""Fidelity of the fake Groq server against the real ``groq`` Groq / AsyncGroq clients."""

from __future__ import annotations

import groq
import pytest

from tests.servers import provider_fixtures
from tests.servers.groq_server import GroqFakeServer, GroqUsage

groq_server_session = provider_fixtures.groq_server_session
groq_server = provider_fixtures.groq_server

MSGS = [{"role": "user", "content": "hi"}]
MODEL = "llama-3.3-70b-versatile"
USAGE = GroqUsage(prompt_tokens=44, completion_tokens=12)


def test_chat_non_stream(groq_server: GroqFakeServer) -> None:
    groq_server.next(usage=USAGE, content="Hey")
    r = groq_server.client().chat.completions.create(model=MODEL, messages=MSGS)
    assert (r.model, r.choices[0].message.content, r.choices[0].finish_reason) == (
        MODEL,
        "Hey",
        "stop",
    )
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (44, 12, 56)
    assert r.usage.queue_time == 0.012
    assert r.x_groq.id.startswith("req_fake")
    req = groq_server.last_request
    assert req.path == "/openai/v1/chat/completions"
    assert req.headers["Authorization"] == "Bearer gsk-test"
    assert "baggage" not in req.headers and "traceparent" not in req.headers


def test_stream_usage_in_x_groq_only(groq_server: GroqFakeServer) -> None:
    groq_server.next(usage=USAGE, chunks=3)
    chunks = list(
        groq_server.client().chat.completions.create(model=MODEL, messages=MSGS, stream=True)
    )
    assert len(chunks) == 5
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "t0 t1 t2 "
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage is None
    assert (last.x_groq.usage.prompt_tokens, last.x_groq.usage.completion_tokens) == (44, 12)
    assert all(c.x_groq is None or c.x_groq.usage is None for c in chunks[:-1])


def test_stream_include_usage_adds_top_level_usage(groq_server: GroqFakeServer) -> None:
    """groq 1.x has no ``stream_options`` parameter: it goes through ``extra_body``."""
    groq_server.next(usage=USAGE)
    chunks = list(
        groq_server.client().chat.completions.create(
            model=MODEL,
            messages=MSGS,
            stream=True,
            extra_body={"stream_options": {"include_usage": True}},
        )
    )
    assert chunks[-1].usage.total_tokens == 56
    assert chunks[-1].x_groq.usage.total_tokens == 56
    assert groq_server.last_request.json["stream_options"] == {"include_usage": True}


async def test_async_client(groq_server: GroqFakeServer) -> None:
    groq_server.configure(usage=USAGE, chunks=2)
    client = groq_server.async_client()
    r = await client.chat.completions.create(model=MODEL, messages=MSGS)
    assert r.usage.prompt_tokens == 44
    stream = await client.chat.completions.create(model=MODEL, messages=MSGS, stream=True)
    chunks = [c async for c in stream]
    assert chunks[-1].x_groq.usage.completion_tokens == 12
    groq_server.next_error(429)
    with pytest.raises(groq.RateLimitError):
        await client.chat.completions.create(model=MODEL, messages=MSGS)
    await client.close()


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (400, groq.BadRequestError),
        (401, groq.AuthenticationError),
        (429, groq.RateLimitError),
        (500, groq.InternalServerError),
    ],
)
def test_errors(groq_server: GroqFakeServer, status: int, exc: type) -> None:
    groq_server.next_error(status, message="nope")
    with pytest.raises(exc) as info:
        groq_server.client().chat.completions.create(model=MODEL, messages=MSGS, stream=True)
    assert info.value.status_code == status
    assert info.value.body["error"]["message"] == "nope"  # the whole body, unlike openai


def test_stream_error_and_cuts(groq_server: GroqFakeServer) -> None:
    client = groq_server.client()
    groq_server.next(error_after=2)
    with pytest.raises(groq.APIError, match="Service Unavailable"):
        list(client.chat.completions.create(model=MODEL, messages=MSGS, stream=True))
    groq_server.next(truncate_after=3)
    chunks = list(client.chat.completions.create(model=MODEL, messages=MSGS, stream=True))
    assert len(chunks) == 3 and all(c.x_groq is None or c.x_groq.usage is None for c in chunks)
    groq_server.next(drop_after=3)
    with pytest.raises(Exception):  # noqa: B017 - httpx's RemoteProtocolError
        list(client.chat.completions.create(model=MODEL, messages=MSGS, stream=True))
